/**
 * Lake benchmark: `archiver`, events from the log to durable Parquet files committed in the
 * manifests (decode, buffer, DuckDB COPY per hour, fsync, rename, manifest line), against
 * `log.read` of the same records.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { clickType, decodeClick, decodeEmission, emissionType } from '../src/events/index.ts';
import { Archiver, lakeOffsets } from '../src/lake/index.ts';
import { type BenchResult, simulatedEventLog } from './harness.ts';

const PARTITIONS = 4;
/** A simulated day of 1M emissions (1.17M events): long enough to measure the archiver flushing while it consumes. */
const EMISSIONS = 1_000_000;
const TOPICS = ['emissions', 'clicks'];

/** Runs the lake benchmarks. */
export async function lakeBenchmarks(): Promise<BenchResult[]> {
  const { log, dir, total, readRate } = await simulatedEventLog(13, EMISSIONS, PARTITIONS, 'reckon-bench-lake-');

  const lakeDir = join(dir, 'lake');
  const archiver = new Archiver({
    log,
    lakeDir,
    // Schema ids 1 and 2 are reckon's own emission and click schemas (see `simulatedEventLog`).
    decoder: {
      emission: (v) => decodeEmission(v),
      click: (v) => decodeClick(v),
      writerOf: (id) => (id === 1 ? emissionType : id === 2 ? clickType : undefined),
    },
  });
  const parts = Array.from({ length: PARTITIONS }, (_, p) => p);
  const ends = new Map<string, number[]>();
  for (const topic of TOPICS) ends.set(topic, await Promise.all(parts.map((p) => log.latestOffset(topic, p))));
  const started = performance.now();
  await archiver.start();
  for (;;) {
    let done = true;
    for (const topic of TOPICS) {
      const committed = await lakeOffsets(lakeDir, topic, parts);
      if (!(ends.get(topic) as number[]).every((o, p) => committed.get(p) === o)) done = false;
    }
    if (done) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const rate = total / ((performance.now() - started) / 1000);
  const { flushes, files } = archiver.figures;
  await archiver.stop();
  await log.close();
  rmSync(dir, { recursive: true, force: true });

  return [
    {
      name: `archiver (${total} events from the log to durable Parquet, ${PARTITIONS} partitions, ${flushes} flushes, ${files} files)`,
      unit: 'events/s',
      value: Math.round(rate),
      baseline: Math.round(readRate),
      ratio: Number((rate / readRate).toFixed(3)),
    },
  ];
}
