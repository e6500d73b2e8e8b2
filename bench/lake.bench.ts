/**
 * Lake benchmark: `archiver`, events from the log to durable Parquet files committed in the
 * manifests (stage columns from the Avro bytes, write Parquet on a thread, fsync, rename, manifest
 * line), against `log.read` of the same records.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { clickType, decodeClick, decodeEmission, emissionType } from '../src/events/index.ts';
import { Archiver, type ArchiverOptions, lakeOffsets } from '../src/lake/index.ts';
import type { Log } from '../src/log/index.ts';
import { type BenchResult, simulatedEventLog } from './harness.ts';

const PARTITIONS = 4;
/** A simulated day of 1M emissions (1.17M events): long enough to measure the archiver flushing while it consumes. */
const EMISSIONS = 1_000_000;
const TOPICS = ['emissions', 'clicks'];

interface ArchiverRun {
  rate: number;
  flushes: number;
  files: number;
  /** Peak resident set of the process while archiving, and before it started (bytes). */
  peakRss: number;
  rssBefore: number;
  /** CPU time of all the process's threads while archiving. */
  cpuSeconds: number;
}

/** Archives the whole log into a fresh lake and times it until every partition is committed. */
async function archiveAll(
  log: Log,
  lakeDir: string,
  total: number,
  options: Partial<ArchiverOptions>,
): Promise<ArchiverRun> {
  const archiver = new Archiver({
    log,
    lakeDir,
    group: `bench-${lakeDir.length}-${Date.now()}`,
    // Schema ids 1 and 2 are reckon's own emission and click schemas (see `simulatedEventLog`).
    decoder: {
      emission: (v) => decodeEmission(v),
      click: (v) => decodeClick(v),
      writerOf: (id) => (id === 1 ? emissionType : id === 2 ? clickType : undefined),
    },
    ...options,
  });
  const parts = Array.from({ length: PARTITIONS }, (_, p) => p);
  const ends = new Map<string, number[]>();
  for (const topic of TOPICS) ends.set(topic, await Promise.all(parts.map((p) => log.latestOffset(topic, p))));
  const rssBefore = process.memoryUsage.rss();
  let peakRss = rssBefore;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 20);
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
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
  const cpu = process.cpuUsage(cpuBefore);
  clearInterval(sampler);
  const { flushes, files } = archiver.figures;
  await archiver.stop();
  return { rate, flushes, files, peakRss, rssBefore, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

/** Runs the lake benchmarks. */
export async function lakeBenchmarks(): Promise<BenchResult[]> {
  const { log, dir, total, readRate } = await simulatedEventLog(13, EMISSIONS, PARTITIONS, 'reckon-bench-lake-');
  // Two Parquet threads measured no faster than one (the main thread needs the other core).
  const variants: [string, Partial<ArchiverOptions>][] = [['archiver', {}]];
  const out: BenchResult[] = [];
  for (const [name, options] of variants) {
    const lakeDir = join(dir, `lake-${out.length}`);
    const run = await archiveAll(log, lakeDir, total, options);
    rmSync(lakeDir, { recursive: true, force: true });
    out.push({
      name,
      description:
        `archiver${Object.keys(options).length > 0 ? ` (${JSON.stringify(options)})` : ''}: ${total} events of a simulated day from the log to durable Parquet, ` +
        `${PARTITIONS} partitions, ${run.flushes} flushes, ${run.files} files, peak RSS ${Math.round(run.peakRss / 2 ** 20)} MiB ` +
        `(${Math.round(run.rssBefore / 2 ** 20)} MiB before it started: the generated log), ` +
        `${((run.cpuSeconds / total) * 1e6).toFixed(2)} CPU-µs per event; ` +
        'baseline: log.read of the same records',
      unit: 'events/s',
      value: Math.round(run.rate),
      baseline: Math.round(readRate),
      ratio: Number((run.rate / readRate).toFixed(3)),
    });
  }
  await log.close();
  rmSync(dir, { recursive: true, force: true });
  return out;
}
