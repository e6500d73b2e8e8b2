/**
 * Compaction benchmark: a lake archived with frequent flushes (many small files per partition
 * and hour, as a 1 s flush makes them), its sealed hours then compacted.
 *
 * - `lake.files-per-hour`: files a reader opens per topic-hour after compaction (value) and
 *   before (baseline).
 * - `lake.compaction`: rows compacted per second (read, sorted by time, written with zstd, fsynced,
 *   swapped in through the journal), against a plain DuckDB scan of the same files (`count(*)` and
 *   sums over three columns) with the same thread count.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { clickType, decodeClick, decodeEmission, emissionType } from '../src/events/index.ts';
import { Archiver, compactSealedHours, HOUR_MS, isHourSealed, lakeHourFiles, lakeOffsets } from '../src/lake/index.ts';
import { DEFAULT_SIMULATION } from '../src/sim/index.ts';
import { type BenchResult, simulatedEventLog } from './harness.ts';

const PARTITIONS = 4;
const TOPICS = ['emissions', 'clicks'];
/** Six simulated hours of 200k emissions (about 234k events). */
const HOURS = 6;
const EMISSIONS = 200_000;
/** Flushes of at most 500 rows (or every 50 ms): many small files, as a 1 s flush makes them over a real hour. */
const FLUSH_MS = 50;
const FLUSH_ROWS = 500;
/** DuckDB threads of the compaction (its default) and of the scan baseline. */
const THREADS = 1;

/** Runs the compaction benchmarks. */
export async function compactionBenchmarks(): Promise<BenchResult[]> {
  const { log, dir } = await simulatedEventLog(17, EMISSIONS, PARTITIONS, 'reckon-bench-compaction-', HOURS * HOUR_MS);
  const lakeDir = join(dir, 'lake');
  const start = DEFAULT_SIMULATION.start;
  // A clock past every hour's end plus the allowed lateness, standing still: every hour is sealed,
  // and none is quiet, so the archiver's own passes leave them for the benchmark to compact.
  const now = start + (HOURS + 2) * HOUR_MS;
  const archiver = new Archiver({
    log,
    lakeDir,
    decoder: {
      emission: (v) => decodeEmission(v),
      click: (v) => decodeClick(v),
      writerOf: (id) => (id === 1 ? emissionType : id === 2 ? clickType : undefined),
    },
    flushIntervalMs: FLUSH_MS,
    flushRows: FLUSH_ROWS,
    maxBufferedRows: 2 * FLUSH_ROWS,
    now: () => now,
  });
  const parts = Array.from({ length: PARTITIONS }, (_, p) => p);
  const ends = new Map<string, number[]>();
  for (const topic of TOPICS) ends.set(topic, await Promise.all(parts.map((p) => log.latestOffset(topic, p))));
  const archiveStarted = performance.now();
  await archiver.start();
  for (;;) {
    let done = await isHourSealed(lakeDir, start + (HOURS - 1) * HOUR_MS);
    for (const topic of TOPICS) {
      const committed = await lakeOffsets(lakeDir, topic, parts);
      if (!(ends.get(topic) as number[]).every((o, p) => committed.get(p) === o)) done = false;
    }
    if (done) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  await archiver.stop();
  await log.close();
  const archivedMs = performance.now() - archiveStarted;

  const hours = Array.from({ length: HOURS }, (_, i) => start + i * HOUR_MS);
  const listing = () => TOPICS.flatMap((topic) => hours.map((h) => lakeHourFiles(lakeDir, topic, h)));
  const before = listing().filter((files) => files.length > 0);
  const filesBefore = before.reduce((n, files) => n + files.length, 0);

  // Baseline: a plain scan of the same files, as many threads as the compaction.
  const instance = await DuckDBInstance.create(':memory:', { threads: String(THREADS) });
  const connection = await instance.connect();
  let scanned = 0;
  const scanStarted = performance.now();
  for (const files of before) {
    const list = files.map((f) => `'${f}'`).join(', ');
    const r = await connection.runAndReadAll(
      `SELECT count(*), sum(log_offset), sum(epoch_ms(ts)), sum(length(id)) FROM read_parquet([${list}], hive_partitioning = false)`,
    );
    scanned += Number(r.getRows()[0]?.[0] ?? 0);
  }
  const scanRate = scanned / ((performance.now() - scanStarted) / 1000);
  connection.closeSync();
  instance.closeSync();

  const compactStarted = performance.now();
  let rows = 0;
  for (;;) {
    const r = await compactSealedHours(lakeDir, TOPICS, {
      now: () => now,
      quietMs: 0,
      inputGraceMs: 0,
      threads: THREADS,
    });
    rows += r.rows;
    if (r.hours.length === 0 && r.waiting === 0) break;
  }
  const compactMs = performance.now() - compactStarted;
  const compactRate = rows / (compactMs / 1000);
  process.stderr.write(
    `compaction bench: archived in ${Math.round(archivedMs)} ms, compacted in ${Math.round(compactMs)} ms\n`,
  );
  const after = listing().filter((files) => files.length > 0);
  const filesAfter = after.reduce((n, files) => n + files.length, 0);
  rmSync(dir, { recursive: true, force: true });

  const perHourBefore = filesBefore / before.length;
  const perHourAfter = filesAfter / after.length;
  return [
    {
      name: 'lake.files-per-hour',
      description:
        `files per topic-hour a reader opens after compaction (value) and before (baseline): ${rows} rows in ` +
        `${before.length} topic-hours, archived by ${PARTITIONS} partitions flushing every ${FLUSH_ROWS} rows or ${FLUSH_MS} ms ` +
        `(${filesBefore} files, at most ${Math.max(...before.map((f) => f.length))} per topic-hour), compacted into ${filesAfter}`,
      unit: 'files',
      value: Number(perHourAfter.toFixed(2)),
      baseline: Number(perHourBefore.toFixed(2)),
      ratio: Number((perHourAfter / perHourBefore).toFixed(4)),
    },
    {
      name: 'lake.compaction',
      description:
        `rows/s compacting sealed hours (read, sorted by ts, written with zstd, fsynced, swapped in through the journal, ` +
        `inputs removed), ${THREADS} DuckDB thread, against a DuckDB scan of the same ${filesBefore} files ` +
        `(count(*), sums of log_offset, ts and length(id)) with as many threads`,
      unit: 'rows/s',
      value: Math.round(compactRate),
      baseline: Math.round(scanRate),
      ratio: Number((compactRate / scanRate).toFixed(3)),
    },
  ];
}
