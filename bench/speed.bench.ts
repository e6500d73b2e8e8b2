/**
 * Speed layer benchmarks: `speed.e2e`, events from the log to committed serving rows (SQLite),
 * against `log.read` of the same records; and `speed.joiner.bytesPerEmission`, the heap the
 * engine retains per emission, against the heap of the same emissions as plain parsed objects
 * (measured in a child process with `--expose-gc`: see joiner-memory.ts).
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { decodeClick, decodeEmission } from '../src/events/index.ts';
import { DEFAULT_SIMULATION } from '../src/sim/index.ts';
import { SpeedLayer } from '../src/speed/index.ts';
import { openSqliteStatsStore } from '../src/store/index.ts';
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

/** Runs the speed benchmarks. */
export async function speedBenchmarks(): Promise<BenchResult[]> {
  const { log, dir, total, readRate } = await simulatedEventLog(12, 200_000, PARTITIONS, 'reckon-bench-speed-');

  const store = await openSqliteStatsStore(join(dir, 'reckon.sqlite'));
  const speed = new SpeedLayer({
    log,
    sink: store,
    decoder: { emission: (v) => decodeEmission(v), click: (v) => decodeClick(v) },
    rules: DEFAULT_SIMULATION.rules,
    allowedLatenessMs: 3_600_000,
  });
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
    if (done) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const e2eRate = total / ((performance.now() - started) / 1000);
  await speed.stop();
  await store.close();
  await log.close();
  rmSync(dir, { recursive: true, force: true });

  const memory = await joinerMemory(JOINER_EMISSIONS);

  return [
    {
      name: `speed.e2e (${total} events from the log to committed serving rows, SQLite, ${PARTITIONS} partitions)`,
      unit: 'events/s',
      value: Math.round(e2eRate),
      baseline: Math.round(readRate),
      ratio: Number((e2eRate / readRate).toFixed(3)),
    },
    {
      name: `speed.joiner.bytesPerEmission (heap the engine retains per emission, ${JOINER_EMISSIONS} emissions of 2-3 offers; baseline: a Map of id -> the parsed JSON emission)`,
      unit: 'bytes',
      value: Math.round(memory.engineBytes),
      baseline: Math.round(memory.parsedBytes),
      ratio: Number((memory.engineBytes / memory.parsedBytes).toFixed(3)),
    },
  ];
}
