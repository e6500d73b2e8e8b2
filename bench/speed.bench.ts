/**
 * Speed layer benchmarks: `speed.e2e`, events from the log to committed serving rows (SQLite),
 * against `log.read` of the same records, for a simulated day (nearly every event a new minute
 * row) and for the same traffic over 5 s of event time (most events add to existing rows); and `speed.joiner.bytesPerEmission`, the heap the
 * engine retains per emission, against the heap of the same emissions as plain parsed objects
 * (measured in a child process with `--expose-gc`: see joiner-memory.ts).
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { decodeClick, decodeEmission } from '../src/events/index.ts';
import { DEFAULT_SIMULATION } from '../src/sim/index.ts';
import { SpeedLayer } from '../src/speed/index.ts';
import { COMPACT_AT_RUNS, openSqliteStatsStore, openStatsWriterThread } from '../src/stats/index.ts';
import { type BenchResult, simulatedEventLog } from './harness.ts';

const PARTITIONS = 4;
/** Emissions the joiner's memory is measured with. */
const JOINER_EMISSIONS = Number(process.env.RECKON_BENCH_JOINER_EMISSIONS ?? 500_000);

/** Runs joiner-memory.ts in a child process with `--expose-gc`; its figures, bytes per emission. */
function joinerMemory(emissions: number): Promise<{ engineBytes: number; parsedBytes: number }> {
  const child = spawn(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', new URL('./joiner-memory.ts', import.meta.url).pathname, String(emissions)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  const kill = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', kill);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(kill, 600_000);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      process.off('exit', kill);
      if (code !== 0) return reject(new Error(`joiner-memory.ts exited with ${signal ?? code}: ${out}`));
      resolve(JSON.parse(out.trim().split('\n').at(-1) as string) as { engineBytes: number; parsedBytes: number });
    });
  });
}

/** How the speed layer reaches the store in a run of {@link endToEnd}. */
type StoreMode = 'writer-thread' | 'same-thread' | 'two-processes';

/**
 * Events from the log to committed serving rows: a simulated stream of `emissions` over
 * `durationMs` of event time through a SpeedLayer into SQLite, the store on a writer thread of
 * its own or on the speed layer's thread; also the minute rows written, the most runs waiting
 * for compaction and the process's peak RSS.
 */
export async function endToEnd(emissions: number, durationMs: number | undefined, mode: StoreMode = 'writer-thread') {
  const { log, dir, total, readRate } = await simulatedEventLog(
    12,
    emissions,
    PARTITIONS,
    'reckon-bench-speed-',
    durationMs,
  );
  const path = join(dir, 'reckon.sqlite');
  const store =
    mode === 'same-thread' ? await openSqliteStatsStore(path) : await openStatsWriterThread({ kind: 'sqlite', path });
  // Two processes: this one takes the even partitions, a child the odd ones, into the same file.
  const member =
    mode === 'two-processes'
      ? spawn(
          process.execPath,
          [
            '--max-semi-space-size=64',
            '--initial-old-space-size=128',
            '--import',
            'tsx',
            new URL('./speed-member.ts', import.meta.url).pathname,
            join(dir, 'log'),
            path,
            '1',
            '2',
          ],
          { stdio: ['pipe', 'pipe', 'inherit'] },
        )
      : undefined;
  if (member !== undefined) {
    await new Promise<void>((resolve, reject) => {
      member.stdout?.on('data', (c: Buffer) => (c.toString().includes('ready') ? resolve() : undefined));
      member.once('exit', (code) => reject(new Error(`speed-member.ts exited with ${code}`)));
    });
  }
  const speed = new SpeedLayer({
    log,
    sink: store,
    ...(member === undefined ? {} : { share: { index: 0, of: 2 } }),
    decoder: { emission: (v) => decodeEmission(v), click: (v) => decodeClick(v) },
    rules: DEFAULT_SIMULATION.rules,
    allowedLatenessMs: 3_600_000,
    // A store on a thread of its own writes while this one counts: flushes need no spacing.
    flushSpacing: mode === 'same-thread' ? 1 : 0,
  });
  let peakRss = process.memoryUsage().rss;
  let maxRuns = 0;
  const started = performance.now();
  await speed.start();
  const ends = new Map<string, number[]>();
  for (const topic of ['emissions', 'clicks'])
    ends.set(topic, await Promise.all([0, 1, 2, 3].map((p) => log.latestOffset(topic, p))));
  for (;;) {
    let done = true;
    for (const topic of ['emissions', 'clicks']) {
      const recorded = await store.speedOffsets('speed', topic);
      if (!(ends.get(topic) as number[]).every((o, p) => recorded.get(p) === o)) done = false;
    }
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    maxRuns = Math.max(maxRuns, (await store.pendingRuns()).runs);
    if (done) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const rate = total / ((performance.now() - started) / 1000);
  await speed.stop();
  if (member !== undefined) {
    const exited = new Promise((r) => member.once('exit', r));
    member.stdin?.end();
    await exited;
  }
  await store.compact();
  await store.close();
  await log.close();
  const db = new Database(path, { readonly: true });
  const rows = (db.prepare('SELECT count(*) AS n FROM stats_speed_minute').get() as { n: number }).n;
  db.close();
  rmSync(dir, { recursive: true, force: true });
  return { total, rate, readRate, rows, maxRuns, peakRss };
}

/** Runs the speed benchmarks. */
export async function speedBenchmarks(): Promise<BenchResult[]> {
  const day = await endToEnd(200_000, undefined);
  // The same kind of traffic at 50,000 events/s of event time (what speed.freshness sends): most
  // events add to rows already written.
  const dense = await endToEnd(200_000, 5_000);
  // The losing candidates of the both-cores choice: the store on the speed layer's thread, and
  // two speed processes splitting the partitions (each with its store on its own thread).
  const sameThread = await endToEnd(200_000, undefined, 'same-thread');
  const twoProcesses = await endToEnd(200_000, undefined, 'two-processes');
  const memory = await joinerMemory(JOINER_EMISSIONS);

  const e2e = (name: string, what: string, r: typeof day): BenchResult => ({
    name,
    description: `${r.total} events ${what} from the log to committed serving rows (SQLite, ${PARTITIONS} partitions; ${r.rows} minute rows, ${(r.rows / r.total).toFixed(2)} per event); baseline: log.read of the same records`,
    unit: 'events/s',
    value: Math.round(r.rate),
    baseline: Math.round(r.readRate),
    ratio: Number((r.rate / r.readRate).toFixed(3)),
  });
  return [
    e2e('speed.e2e.day', 'of a simulated day, the store on a writer thread of its own', day),
    e2e('speed.e2e.dense', 'of the same traffic over 5 s of event time, the store on a writer thread', dense),
    e2e(
      'speed.e2e.day.same-thread',
      "of a simulated day, the store on the speed layer's thread (a candidate speed.e2e.day was chosen over)",
      sameThread,
    ),
    e2e(
      'speed.e2e.day.two-processes',
      'of a simulated day, two speed processes each taking half the partitions (a candidate speed.e2e.day was chosen over)',
      twoProcesses,
    ),
    {
      name: 'store.runs.max',
      description: `most runs waiting for compaction during speed.e2e.day (a flush that leaves ${COMPACT_AT_RUNS} compacts first); baseline: that bound`,
      unit: 'runs',
      value: day.maxRuns,
      baseline: COMPACT_AT_RUNS,
      ratio: Number((day.maxRuns / COMPACT_AT_RUNS).toFixed(3)),
    },
    {
      name: 'speed.rss.peak',
      description:
        'peak RSS of the process running speed.e2e.day (the speed layer, its store thread and the benchmark with its simulated log); baseline: the same for the same-thread candidate',
      unit: 'MiB',
      value: Math.round(day.peakRss / 2 ** 20),
      baseline: Math.round(sameThread.peakRss / 2 ** 20),
      ratio: Number((day.peakRss / sameThread.peakRss).toFixed(3)),
    },
    {
      name: 'speed.joiner.bytesPerEmission',
      description: `heap the engine retains per emission, ${JOINER_EMISSIONS} emissions of 2-3 offers; baseline: a Map of id -> the parsed JSON emission`,
      unit: 'bytes',
      value: Math.round(memory.engineBytes),
      baseline: Math.round(memory.parsedBytes),
      ratio: Number((memory.engineBytes / memory.parsedBytes).toFixed(3)),
    },
  ];
}
