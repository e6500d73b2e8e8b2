/**
 * Catch-up benchmark: after an outage of the speed layer and the archiver, while the collector
 * kept appending, both drain the backlog at once on the same cores. `catchup` is how many times
 * real time the backlog is drained (its seconds of arrival at 50,000 events/s over the seconds
 * until both have committed its last offset); `catchup.speed` and `catchup.archiver` are each
 * part's own drain time in that same run. Baseline: `log.read` of the whole backlog, expressed
 * the same way. RECKON_BENCH_CATCHUP_ALONE=1 also drains the same backlog with each part alone;
 * RECKON_BENCH_CATCHUP_SECONDS sets the outage's length (default 10 s).
 *
 * The parts run as `reckon start` runs them: `reckon speed` and `reckon archiver` as processes
 * of their own (the archiver at a lower priority), reading the log as readers over a data
 * directory whose registry holds the event schemas; this process holds the log as its writer,
 * the collector's role.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { setPriority } from 'node:os';
import { join } from 'node:path';
import { ARCHIVER_NICENESS, SPEED_NICENESS } from '../src/cli/start.ts';
import { CLICKS_TOPIC, EMISSIONS_TOPIC, ensureCollectorTopics } from '../src/collector/index.ts';
import { CLICK_SCHEMA, EMISSION_SCHEMA, SchemaRegistry } from '../src/events/index.ts';
import { lakeOffsets, readManifest } from '../src/lake/index.ts';
import type { Log } from '../src/log/index.ts';
import { openSqliteStatsStore } from '../src/stats/index.ts';
import { openSqliteSchemaStore } from '../src/store/index.ts';
import { type BenchResult, benchEnv, reckonArgs, simulatedEventLog } from './harness.ts';

const ROOT = new URL('../', import.meta.url).pathname;
/** reckon's default `topicPartitions`. */
const PARTITIONS = 4;
const TOPICS = [EMISSIONS_TOPIC, CLICKS_TOPIC];
/** Arrival rate of the backlog (events/s): what speed.freshness sends. */
const RATE = 50_000;
/** Seconds of outage: the backlog is RATE x SECONDS events (10 s: about 500k; simulating them is most of the run). */
const SECONDS = Number(process.env.RECKON_BENCH_CATCHUP_SECONDS ?? 10);
/**
 * Events per simulated emission that fall inside a window of about 10 s: the emission, and the
 * few clicks (median delay 20 s) whose event time comes before the window's end.
 */
const EVENTS_PER_EMISSION = 1.03;
/** A part that has not drained the backlog by then has failed. */
const DRAIN_TIMEOUT_MS = 600_000;
/** Linux's USER_HZ: /proc reports CPU time in these ticks. */
const TICKS_PER_SECOND = 100;

type PartName = 'speed' | 'archiver';

/** Peak resident set (VmHWM) and CPU time of all threads of a live process, from /proc. */
function processFigures(pid: number): { peakRss: number; cpuSeconds: number } {
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command's closing parenthesis start at field 3 (state); utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return {
    peakRss: Number(hwm?.[1] ?? Number.NaN) * 1024,
    cpuSeconds: (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND,
  };
}

/** `reckon <verb>` over `dataDir`, spawned as `reckon start`'s supervisor spawns it; its output goes to stderr. */
function spawnPart(verb: PartName, dataDir: string): ChildProcess {
  const child = spawn(process.execPath, reckonArgs([verb, '--supervised', String(process.pid), '--data', dataDir]), {
    cwd: ROOT,
    env: benchEnv(),
    stdio: ['ignore', 2, 'inherit'],
  });
  const niceness = verb === 'archiver' ? ARCHIVER_NICENESS : SPEED_NICENESS;
  if (child.pid !== undefined) {
    try {
      setPriority(child.pid, niceness);
    } catch {
      // Not permitted here: it runs at the default priority, as under reckon start.
    }
  }
  return child;
}

/** Stops a part (SIGTERM, SIGKILL after 30 s) and resolves once it has exited. */
async function stopPart(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(timer);
}

/** One part's catch-up: seconds from its spawn to the backlog's last offset committed, and its process's figures. */
interface PartRun {
  seconds: number;
  /** Seconds until its first commit (process start, module loading, the first flush). */
  firstCommitSeconds: number;
  /** Records committed by then. */
  firstCommitRecords: number;
  /** CPU time of the process (all threads) by then. */
  firstCommitCpuSeconds: number;
  /** CPU time of the process (all threads) until drained. */
  cpuSeconds: number;
  /** Peak RSS of the process over the whole run (bytes). */
  peakRss: number;
}

/** The outage's backlog in a fresh embedded log, held open as its writer. */
interface Backlog {
  log: Log;
  dir: string;
  total: number;
  /** Seconds `log.read` took for the whole backlog. */
  readSeconds: number;
  /** Each topic's partition ends. */
  ends: Map<string, number[]>;
}

const PARTS = Array.from({ length: PARTITIONS }, (_, p) => p);

/** Appends RATE x SECONDS simulated events, with event times over the SECONDS before now, to a fresh log. */
async function fillBacklog(): Promise<Backlog> {
  const until = Date.now();
  const filling = performance.now();
  const emissions = Math.round((RATE * SECONDS) / EVENTS_PER_EMISSION);
  const { log, dir, total, readRate } = await simulatedEventLog(
    21,
    emissions,
    PARTITIONS,
    'reckon-bench-catchup-',
    SECONDS * 1000,
    { start: until - SECONDS * 1000, until },
  );
  // The collector's topics, as `reckon start` ensures them.
  await ensureCollectorTopics(log, PARTITIONS);
  const ends = new Map<string, number[]>();
  for (const topic of TOPICS) ends.set(topic, await Promise.all(PARTS.map((p) => log.latestOffset(topic, p))));
  const records = [...ends.values()].flat().reduce((a, b) => a + b, 0);
  if (records !== total) throw new Error(`the log holds ${records} records, ${total} were appended`);
  process.stderr.write(
    `catchup: ${total} events in the log in ${((performance.now() - filling) / 1000).toFixed(1)} s\n`,
  );
  return { log, dir, total, readSeconds: total / readRate, ends };
}

/**
 * Starts `names` at once over the backlog's data directory (a fresh registry, serving store and
 * lake), times each until it has committed the log's ends, and checks that nothing was skipped:
 * the lake holds every record once, the speed layer's offsets are the ends.
 */
async function drain(backlog: Backlog, names: readonly PartName[]): Promise<Partial<Record<PartName, PartRun>>> {
  const { dir, ends, total } = backlog;
  for (const leftover of ['reckon.sqlite', 'reckon.sqlite-wal', 'reckon.sqlite-shm', 'lake', 'status']) {
    rmSync(join(dir, leftover), { recursive: true, force: true });
  }
  // The registry as `reckon start` fills it: the records are framed with schema ids 1 and 2.
  const dbPath = join(dir, 'reckon.sqlite');
  const schemas = await openSqliteSchemaStore(dbPath);
  const registry = new SchemaRegistry(schemas);
  const ids = [
    (await registry.register(`${EMISSIONS_TOPIC}-value`, EMISSION_SCHEMA)).id,
    (await registry.register(`${CLICKS_TOPIC}-value`, CLICK_SCHEMA)).id,
  ];
  if (ids[0] !== 1 || ids[1] !== 2) throw new Error(`registry gave schema ids ${ids.join(', ')}, expected 1, 2`);
  const stats = await openSqliteStatsStore(dbPath);
  const lakeDir = join(dir, 'lake');
  const committed: Record<PartName, (topic: string) => Promise<Map<number, number>>> = {
    speed: (topic) => stats.speedOffsets('speed', topic),
    archiver: (topic) => lakeOffsets(lakeDir, topic, PARTS),
  };
  const drained = async (name: PartName): Promise<{ done: boolean; records: number }> => {
    let done = true;
    let records = 0;
    for (const topic of TOPICS) {
      const at = await committed[name](topic);
      for (const o of at.values()) records += o;
      if (!(ends.get(topic) as number[]).every((o, p) => at.get(p) === o)) done = false;
    }
    return { done, records };
  };

  const children = new Map(names.map((name) => [name, spawnPart(name, dir)] as const));
  const started = performance.now();
  const runs: Partial<Record<PartName, PartRun>> = {};
  const firstCommit: Partial<Record<PartName, { seconds: number; records: number; cpuSeconds: number }>> = {};
  try {
    while (names.some((name) => runs[name] === undefined)) {
      const seconds = (performance.now() - started) / 1000;
      if (seconds * 1000 > DRAIN_TIMEOUT_MS) throw new Error(`not drained within ${DRAIN_TIMEOUT_MS} ms`);
      for (const [name, child] of children) {
        if (runs[name] !== undefined) continue;
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`reckon ${name} exited (${child.signalCode ?? child.exitCode}) before it drained the log`);
        }
        const { done, records } = await drained(name);
        if (records > 0 && firstCommit[name] === undefined) {
          firstCommit[name] = { seconds, records, cpuSeconds: processFigures(child.pid as number).cpuSeconds };
        }
        if (done) {
          const { cpuSeconds } = processFigures(child.pid as number);
          const first = firstCommit[name] ?? { seconds, records, cpuSeconds };
          runs[name] = {
            seconds,
            firstCommitSeconds: first.seconds,
            firstCommitRecords: first.records,
            firstCommitCpuSeconds: first.cpuSeconds,
            cpuSeconds,
            peakRss: 0,
          };
        }
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const [name, child] of children) (runs[name] as PartRun).peakRss = processFigures(child.pid as number).peakRss;
  } finally {
    await Promise.all([...children.values()].map(stopPart));
  }

  if (names.includes('archiver')) {
    let lakeRows = 0;
    for (const topic of TOPICS) {
      for (const p of PARTS) for (const e of await readManifest(lakeDir, topic, p)) lakeRows += e.rows;
    }
    if (lakeRows !== total) throw new Error(`the lake holds ${lakeRows} rows, the log ${total} records`);
  }
  if (names.includes('speed') && !(await drained('speed')).done) {
    throw new Error("the speed layer's committed offsets are not the log's ends");
  }
  await stats.close();
  await schemas.close();
  return runs;
}

/**
 * Runs the catch-up benchmark: both parts together; with RECKON_BENCH_CATCHUP_ALONE=1 also each
 * part alone on the same backlog (`catchup.speed.alone`, `catchup.archiver.alone`).
 */
export async function catchupBenchmarks(): Promise<BenchResult[]> {
  const backlog = await fillBacklog();
  const together = (await drain(backlog, ['speed', 'archiver'])) as Record<PartName, PartRun>;
  const alone =
    process.env.RECKON_BENCH_CATCHUP_ALONE === '1'
      ? { speed: (await drain(backlog, ['speed'])).speed, archiver: (await drain(backlog, ['archiver'])).archiver }
      : undefined;
  await backlog.log.close();
  rmSync(backlog.dir, { recursive: true, force: true });

  const { total, readSeconds } = backlog;
  const baseline = SECONDS / readSeconds;
  const mib = (b: number): number => Math.round(b / 2 ** 20);
  const part = (name: string, p: PartRun): string => {
    const after = p.seconds - p.firstCommitSeconds;
    const rate = after > 0 ? Math.round((total - p.firstCommitRecords) / after).toLocaleString('en-US') : '-';
    return (
      `${name} ${p.seconds.toFixed(1)} s (first commit at ${p.firstCommitSeconds.toFixed(1)} s after ` +
      `${p.firstCommitCpuSeconds.toFixed(1)} CPU-s, then ${rate} events/s; ${p.cpuSeconds.toFixed(1)} CPU-s in all, ` +
      `${((p.cpuSeconds / total) * 1e6).toFixed(1)} µs per event; peak RSS ${mib(p.peakRss)} MiB)`
    );
  };
  const backlogText =
    `a backlog of ${total} events (${SECONDS} s at ${Math.round(total / SECONDS)} events/s, event times over those ` +
    `${SECONDS} s up to the fill, no faults, ${PARTITIONS} partitions)`;
  const base = `baseline: log.read of the whole backlog (${readSeconds.toFixed(2)} s) expressed the same way`;
  const figure = (name: string, description: string, seconds: number): BenchResult => {
    const value = SECONDS / seconds;
    return {
      name,
      description: `${description}; ${base}`,
      unit: 'x real time',
      value: Number(value.toFixed(2)),
      baseline: Number(baseline.toFixed(1)),
      ratio: Number((value / baseline).toFixed(4)),
    };
  };
  const cpu = together.speed.cpuSeconds + together.archiver.cpuSeconds;
  const out = [
    figure(
      'catchup',
      `seconds of outage over seconds until both parts drained its backlog: ${backlogText}, drained by reckon speed ` +
        `and reckon archiver as reckon start runs them (own processes, the speed layer at nice ${SPEED_NICENESS}, the archiver at nice ${ARCHIVER_NICENESS}), ` +
        `spawned together on the same cores: ${part('speed', together.speed)}, ${part('archiver', together.archiver)}, ` +
        `peak RSS together ${mib(together.speed.peakRss + together.archiver.peakRss)} MiB, CPU together ${cpu.toFixed(1)} s ` +
        `(${(cpu / SECONDS).toFixed(2)} CPU-s per second of outage, startup included); checked: the lake holds every ` +
        "record once and the speed layer's committed offsets are the log's ends",
      Math.max(together.speed.seconds, together.archiver.seconds),
    ),
    figure(
      'catchup.speed',
      `the speed layer's own drain time in the catchup run (both parts together): ${part('speed', together.speed)}`,
      together.speed.seconds,
    ),
    figure(
      'catchup.archiver',
      `the archiver's own drain time in the catchup run (both parts together): ${part('archiver', together.archiver)}`,
      together.archiver.seconds,
    ),
  ];
  if (alone !== undefined) {
    const { speed, archiver } = alone as Record<PartName, PartRun>;
    out.push(
      figure(
        'catchup.speed.alone',
        `the speed layer alone on the same backlog: ${part('speed', speed)}`,
        speed.seconds,
      ),
      figure(
        'catchup.archiver.alone',
        `the archiver alone on the same backlog: ${part('archiver', archiver)}`,
        archiver.seconds,
      ),
    );
  }
  return out;
}
