/**
 * Speed layer benchmark: `speed.e2e`, events from the log to committed serving rows (SQLite),
 * against `log.read` of the same records.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeClick, decodeEmission, encodeClick, encodeEmission, parseEventLine } from '../src/events/index.ts';
import { openEmbeddedLog, type RecordInput } from '../src/log/index.ts';
import { DEFAULT_SIMULATION, NO_FAULTS, simulate } from '../src/sim/index.ts';
import { SpeedLayer } from '../src/speed/index.ts';
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

  return [
    {
      name: `speed.e2e (${total} events from the log to committed serving rows, SQLite, ${PARTITIONS} partitions)`,
      unit: 'events/s',
      value: Math.round(e2eRate),
      baseline: Math.round(readRate),
      ratio: Number((e2eRate / readRate).toFixed(3)),
    },
  ];
}
