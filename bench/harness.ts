/**
 * Benchmark harness: every figure is measured against a baseline in the same run, rounds
 * alternate between the two so that machine noise hits both, and the median round is kept.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import type { Log, LogRecord, RecordInput } from '../src/log/index.ts';

const ROOT = new URL('../', import.meta.url).pathname;

/** Reads every partition of a topic from offset 0 in 1 MiB reads, touching each value; returns the bytes seen. */
export async function readWholeTopic(log: Log, topic: string, partitions: number): Promise<number> {
  let bytes = 0;
  for (let p = 0; p < partitions; p++) {
    let offset = 0;
    for (;;) {
      const records = await log.read(topic, p, offset, { maxBytes: 1 << 20 });
      if (records.length === 0) break;
      for (const r of records) bytes += r.value.length;
      offset = (records[records.length - 1] as LogRecord).offset + 1;
    }
  }
  return bytes;
}

/** One line of `npm run bench` output. */
export interface BenchResult {
  /** Stable short id (e.g. `speed.e2e.day`): the same figure keeps its name across runs. */
  name: string;
  /** What was measured and against which baseline. */
  description?: string;
  unit: string;
  value: number;
  baseline: number;
  ratio: number;
}

/** Runs `work` (which processes `units` items) repeatedly for at least `minMs`; returns items per second. */
export function throughput(work: () => void, units: number, minMs = 300): number {
  let runs = 0;
  const start = performance.now();
  let elapsed = 0;
  do {
    work();
    runs++;
    elapsed = performance.now() - start;
  } while (elapsed < minMs);
  return (units * runs) / (elapsed / 1000);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

/** Measures a subject against its baseline over alternating rounds and returns the result line. */
export function compare(
  name: string,
  unit: string,
  subject: () => void,
  baseline: () => void,
  units: number,
  rounds = 5,
): BenchResult {
  subject();
  baseline();
  const values: number[] = [];
  const baselines: number[] = [];
  for (let i = 0; i < rounds; i++) {
    values.push(throughput(subject, units));
    baselines.push(throughput(baseline, units));
  }
  const value = median(values);
  const base = median(baselines);
  return {
    name,
    unit,
    value: Math.round(value),
    baseline: Math.round(base),
    ratio: Number((value / base).toFixed(3)),
  };
}

/** Stable ids of the figures whose code names them by their description, by how the description starts. */
const STABLE_IDS: readonly [prefix: string, id: string][] = [
  ['event JSON parse+validate', 'events.parse-validate'],
  ['Avro encode', 'events.avro.encode'],
  ['Avro decode', 'events.avro.decode'],
  ['JSON line to Avro, single-pass transcoder, vs the general path', 'events.transcode.vs-general'],
  ['JSON line to Avro', 'events.transcode'],
  ['log.append (100-byte records, batches of 1000, group commit', 'log.append.inflight'],
  ['log.append (100-byte records, batches of 1000, one append', 'log.append.serial'],
  ['log.append forwarded', 'log.append.forwarded'],
  ['log.read', 'log.read'],
  ['workers.noop (no-op task, process per record)', 'workers.noop'],
  ['workers.noop (no-op task, processBatch)', 'workers.noop.batch'],
  ['workers.noop vs', 'workers.noop.vs-hand-loop'],
  ['collector.ingest under reckon start', 'collector.ingest.start'],
  ['collector.ingest p99', 'collector.ingest.p99'],
  ['collector.ingest', 'collector.ingest'],
  ['archiver', 'archiver'],
  ['query.p99', 'query.p99'],
  ['speed.freshness', 'speed.freshness'],
];

/** The result with a stable short `name` and its text in `description`. */
export function withStableName(result: BenchResult): BenchResult {
  if (result.description !== undefined) return result;
  const id = STABLE_IDS.find(([prefix]) => result.name.startsWith(prefix))?.[1];
  if (id === undefined || id === result.name) return result;
  const { name, ...rest } = result;
  return { name: id, description: name, ...rest };
}

/** Prints one result as a JSON line: name, description, unit, value, baseline, ratio. */
export function report(result: BenchResult): void {
  const r = withStableName(result);
  process.stdout.write(
    `${JSON.stringify({ name: r.name, description: r.description ?? '', unit: r.unit, value: r.value, baseline: r.baseline, ratio: r.ratio })}\n`,
  );
}

/** Runs async `work` (processing `units` items) repeatedly for at least `minMs`; returns items per second. */
export async function throughputAsync(work: () => Promise<void>, units: number, minMs = 300): Promise<number> {
  let runs = 0;
  let elapsed = 0;
  const start = performance.now();
  do {
    await work();
    runs++;
    elapsed = performance.now() - start;
  } while (elapsed < minMs);
  return (units * runs) / (elapsed / 1000);
}

/** {@link compare} for asynchronous work. */
export async function compareAsync(
  name: string,
  unit: string,
  subject: () => Promise<void>,
  baseline: () => Promise<void>,
  units: number,
  rounds = 5,
): Promise<BenchResult> {
  await subject();
  await baseline();
  const values: number[] = [];
  const baselines: number[] = [];
  for (let i = 0; i < rounds; i++) {
    values.push(await throughputAsync(subject, units));
    baselines.push(await throughputAsync(baseline, units));
  }
  const value = median(values);
  const base = median(baselines);
  return { name, unit, value: Math.round(value), baseline: Math.round(base), ratio: Number((value / base).toFixed(3)) };
}

/** The `p`-th percentile (0..100) of `xs`, nearest rank; NaN when empty. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

/** The environment of a reckon process a benchmark starts: without RECKON_* settings (loopback, defaults). */
export function benchEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('RECKON_')));
}

/**
 * Node's arguments to run `reckon <args>` from the sources as the benchmarks do;
 * `RECKON_BENCH_PROFILE` set: the process writes a CPU profile to /tmp/prof.
 */
export function reckonArgs(args: readonly string[]): string[] {
  return [
    ...(process.env.RECKON_BENCH_PROFILE ? ['--cpu-prof', '--cpu-prof-dir=/tmp/prof'] : []),
    '--max-semi-space-size=64',
    '--initial-old-space-size=128',
    '--import',
    'tsx',
    join(ROOT, 'src/cli/main.ts'),
    ...args,
  ];
}

/** A `reckon start` child process (its speed layer a child of its own). */
export interface ReckonProcess {
  child: ChildProcess;
  /** Base URL of its HTTP server on loopback. */
  url: string;
  /** Stops it (SIGTERM, then SIGKILL after `graceMs`) and resolves once it has exited; safe to call twice. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts `reckon start` on a free loopback port over `dataDir`, without tokens (the RECKON_*
 * environment is left out, so it binds to loopback only), and resolves once it listens.
 * `RECKON_BENCH_PROFILE` set: the server writes a CPU profile to /tmp/prof. `verb` 'collector'
 * runs the HTTP server alone (no speed layer or archiver).
 */
export function startReckon(
  dataDir: string,
  startupMs = 60_000,
  verb: 'start' | 'collector' = 'start',
): Promise<ReckonProcess> {
  const child = spawn(process.execPath, reckonArgs([verb, '--port', '0', '--data', dataDir]), {
    cwd: ROOT,
    env: benchEnv(),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // If this process exits without stopping it (an uncaught error), it goes too.
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      process.off('exit', killOnExit);
      resolve();
    }),
  );
  const stop = async (graceMs = 30_000): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    // A server that does not stop in time is killed; its speed process notices being orphaned and exits.
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve();
      }, graceMs);
    });
    await Promise.race([exited, killed]);
    clearTimeout(timer);
    await exited;
  };
  let seen = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop(1000).then(() => reject(new Error(`reckon did not start listening within ${startupMs} ms: ${seen}`)));
    }, startupMs);
    child.stdout?.on('data', (c: Buffer) => {
      seen += c.toString();
      const m = /listening on (http:\/\/\S+)/.exec(seen);
      if (m !== null) {
        clearTimeout(timer);
        resolve({ child, url: m[1] as string, stop });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`reckon exited with ${code}: ${seen}`));
    });
  });
}

/**
 * A simulated day (no faults) appended to a fresh embedded log as reckon's collector would
 * (Avro, keyed by emission id), with `log.read` of all of it timed as the same-run baseline.
 * `window`: the event time of the first emission instead of the simulator's day, and with
 * `until` only the events whose event time is before it (what had arrived by then: without
 * faults an event arrives about 0.3 s after its event time), so that no event is in the future.
 */
export async function simulatedEventLog(
  seed: number,
  emissions: number,
  partitions: number,
  prefix: string,
  durationMs?: number,
  window?: { start: number; until?: number },
): Promise<{ log: Log; dir: string; total: number; readRate: number }> {
  const { DEFAULT_SIMULATION, NO_FAULTS, simulate } = await import('../src/sim/index.ts');
  const { encodeClick, encodeEmission, parseEventLine } = await import('../src/events/index.ts');
  const { openEmbeddedLog } = await import('../src/log/index.ts');
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const sim = simulate({
    ...DEFAULT_SIMULATION,
    seed,
    emissions,
    faults: NO_FAULTS,
    durationMs: durationMs ?? DEFAULT_SIMULATION.durationMs,
    ...(window === undefined ? {} : { start: window.start }),
  });
  const until = window?.until ?? Number.POSITIVE_INFINITY;
  const byTopic: Record<'emissions' | 'clicks', RecordInput[]> = { emissions: [], clicks: [] };
  for (const line of sim.lines) {
    const r = parseEventLine(line);
    if (!r.ok) continue;
    const e = r.event;
    if (e.ts >= until) continue;
    if (e.type === 'emission') byTopic.emissions.push({ key: e.id, value: encodeEmission(1, e), timestamp: e.ts });
    else byTopic.clicks.push({ key: e.emissionId, value: encodeClick(2, e), timestamp: e.ts });
  }
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const log = await openEmbeddedLog({ dir: join(dir, 'log'), retentionIntervalMs: 0 });
  for (const [topic, records] of Object.entries(byTopic)) {
    await log.createTopic({ name: topic, partitions });
    for (let i = 0; i < records.length; i += 5000) await log.append(topic, records.slice(i, i + 5000));
  }
  const started = performance.now();
  for (const topic of Object.keys(byTopic)) await readWholeTopic(log, topic, partitions);
  const total = byTopic.emissions.length + byTopic.clicks.length;
  return { log, dir, total, readRate: total / ((performance.now() - started) / 1000) };
}
