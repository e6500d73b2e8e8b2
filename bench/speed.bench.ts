/**
 * Speed layer benchmarks: `speed.e2e`, events from the log to committed serving rows (SQLite),
 * against `log.read` of the same records; and the joiner's memory per retained emission,
 * against the size of the emission's Avro record.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  decodeClick,
  decodeEmission,
  type Emission,
  encodeClick,
  encodeEmission,
  parseEventLine,
} from '../src/events/index.ts';
import { openEmbeddedLog, type RecordInput } from '../src/log/index.ts';
import { DEFAULT_SIMULATION, NO_FAULTS, simulate } from '../src/sim/index.ts';
import { SpeedEngine, SpeedLayer } from '../src/speed/index.ts';
import { openSqliteStatsStore } from '../src/store/index.ts';
import { type BenchResult, readWholeTopic } from './harness.ts';

const PARTITIONS = 4;

/** Runs the speed benchmarks. */
export async function speedBenchmarks(): Promise<BenchResult[]> {
  const options = { ...DEFAULT_SIMULATION, seed: 12, emissions: 200_000, faults: NO_FAULTS };
  const sim = simulate(options);
  const emissions: RecordInput[] = [];
  const clicks: RecordInput[] = [];
  for (const line of sim.lines) {
    const r = parseEventLine(line);
    if (!r.ok) continue;
    const e = r.event;
    if (e.type === 'emission') emissions.push({ key: e.id, value: encodeEmission(1, e), timestamp: e.ts });
    else clicks.push({ key: e.emissionId, value: encodeClick(2, e), timestamp: e.ts });
  }
  const total = emissions.length + clicks.length;
  const dir = mkdtempSync(join(tmpdir(), 'reckon-bench-speed-'));
  const log = await openEmbeddedLog({ dir: join(dir, 'log'), retentionIntervalMs: 0 });
  await log.createTopic({ name: 'emissions', partitions: PARTITIONS });
  await log.createTopic({ name: 'clicks', partitions: PARTITIONS });
  for (let i = 0; i < emissions.length; i += 5000) await log.append('emissions', emissions.slice(i, i + 5000));
  for (let i = 0; i < clicks.length; i += 5000) await log.append('clicks', clicks.slice(i, i + 5000));

  const readStarted = performance.now();
  await readWholeTopic(log, 'emissions', PARTITIONS);
  await readWholeTopic(log, 'clicks', PARTITIONS);
  const readRate = total / ((performance.now() - readStarted) / 1000);

  const store = await openSqliteStatsStore(join(dir, 'reckon.sqlite'));
  const speed = new SpeedLayer({
    log,
    sink: store,
    decoder: { emission: (v) => decodeEmission(v), click: (v) => decodeClick(v) },
    rules: options.rules,
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

  // Memory per retained emission: the engine's heap growth for N emissions, after full GCs.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const sample = sim.lines
    .map((l) => parseEventLine(l))
    .flatMap((r) => (r.ok && r.event.type === 'emission' ? [r.event] : []))
    .slice(0, 100_000) as Emission[];
  const avroBytes = sample.reduce((n, e) => n + encodeEmission(1, e).length, 0) / sample.length;
  gc();
  const before = process.memoryUsage().heapUsed;
  const engine = new SpeedEngine(options.rules);
  for (const e of sample) engine.emission(e);
  engine.drain();
  gc();
  const perEmission = (process.memoryUsage().heapUsed - before) / engine.state().emissions;

  return [
    {
      name: `speed.e2e (${total} events from the log to committed serving rows, SQLite, ${PARTITIONS} partitions)`,
      unit: 'events/s',
      value: Math.round(e2eRate),
      baseline: Math.round(readRate),
      ratio: Number((e2eRate / readRate).toFixed(3)),
    },
    {
      name: 'joiner bytes per retained emission (baseline: its Avro record)',
      unit: 'bytes',
      value: Math.round(perEmission),
      baseline: Math.round(avroBytes),
      ratio: Number((perEmission / avroBytes).toFixed(3)),
    },
  ];
}
