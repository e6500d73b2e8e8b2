/**
 * Where everything lives in the lake. Data files are Hive-partitioned by the event's UTC date and
 * hour; the archiver's own bookkeeping lives under directories starting with `_`, which Hive,
 * Spark, Trino and DuckDB globs over a topic directory never see.
 *
 * ```
 * <lake>/<topic>/date=YYYY-MM-DD/hour=HH/part-<partition>-<from>-<to>.parquet
 * <lake>/<topic>/date=YYYY-MM-DD/hour=HH/compacted-<generation>-<k>.parquet   a sealed hour compacted (k < 4)
 * <lake>/_manifests/<topic>/<partition>.jsonl          commit log of one log partition's flushes
 * <lake>/_manifests/<topic>/<partition>.pending.json   files of the flush being committed
 * <lake>/_state/sealed.jsonl, late.jsonl               sealed hours, late arrivals
 * <lake>/_state/compaction/state.json                  compaction's manifest scan, hours to compact, unfinished ones
 * <lake>/_state/compaction/<topic>/<date>-<HH>.json    the journal of an hour's last compaction
 * <lake>/_tmp/<topic>/<partition>/.tmp-...             files being written
 * <lake>/_tmp/compaction/<topic>/.tmp-...              compacted files being written
 * ```
 *
 * Readers of an hour list its files with `lakeHourFiles` (compaction.ts), which follows the
 * journal of a compaction in progress; a plain glob may see an hour's compacted files next to the
 * files they replace while a compaction is in progress.
 */
import { join } from 'node:path';

/** One hour in milliseconds. */
export const HOUR_MS = 3_600_000;

/** The start of the UTC hour a timestamp (epoch ms) lies in. */
export function hourStartOf(ms: number): number {
  return ms - (((ms % HOUR_MS) + HOUR_MS) % HOUR_MS);
}

/** The Hive partition values of an hour: `date` as YYYY-MM-DD and `hour` as HH (UTC). */
export function hourPartition(hourStartMs: number): { date: string; hour: string } {
  const iso = new Date(hourStartMs).toISOString();
  return { date: iso.slice(0, 10), hour: iso.slice(11, 13) };
}

/** The start (epoch ms) of the hour named by Hive partition values (`hourPartition`'s inverse); NaN if malformed. */
export function hourStartOfPartition(date: string, hour: string): number {
  return /^\d{4}-\d{2}-\d{2}$/.test(date) && /^\d{2}$/.test(hour) ? Date.parse(`${date}T${hour}:00:00.000Z`) : NaN;
}

/** The directory of one topic's hour, relative to the lake: `<topic>/date=YYYY-MM-DD/hour=HH`. */
export function hourDirectory(topic: string, hourStartMs: number): string {
  const { date, hour } = hourPartition(hourStartMs);
  return join(topic, `date=${date}`, `hour=${hour}`);
}

/** A glob of one topic's Parquet files of one hour (absolute), for `read_parquet`; during a compaction it overlaps (use `lakeHourFiles`). */
export function hourGlob(lakeDir: string, topic: string, hourStartMs: number): string {
  return join(lakeDir, hourDirectory(topic, hourStartMs), '*.parquet');
}

/** A glob of every Parquet file of a topic (absolute), for `read_parquet(..., hive_partitioning = true)`; see `hourGlob`. */
export function topicGlob(lakeDir: string, topic: string): string {
  return join(lakeDir, topic, '**', '*.parquet');
}

/** The data file of one flush of one log partition: named by the flush's offset range, so a redelivery never adds a file. */
export function partFileName(partition: number, from: number, to: number): string {
  return `part-${partition}-${from}-${to}.parquet`;
}

/** The directory of a topic's manifests. */
export function manifestDirectory(lakeDir: string, topic: string): string {
  return join(lakeDir, '_manifests', topic);
}

/** The manifest of one log partition: one JSON line per committed flush. */
export function manifestPath(lakeDir: string, topic: string, partition: number): string {
  return join(manifestDirectory(lakeDir, topic), `${partition}.jsonl`);
}

/** The files of the flush being committed, written before they are renamed into place. */
export function pendingPath(lakeDir: string, topic: string, partition: number): string {
  return join(manifestDirectory(lakeDir, topic), `${partition}.pending.json`);
}

/** The owner file of a partition's manifest (see `lease.ts`). */
export function leasePath(lakeDir: string, topic: string, partition: number): string {
  return join(manifestDirectory(lakeDir, topic), `${partition}.owner`);
}

/** How far a partition is dealt with beyond its manifest (its last records dead-lettered or skipped), for the sealer. */
export function consumedPath(lakeDir: string, topic: string, partition: number): string {
  return join(manifestDirectory(lakeDir, topic), `${partition}.consumed`);
}

/** Where the sealer's scan for late arrivals stopped in each manifest. */
export function lateScanPath(lakeDir: string): string {
  return join(stateDirectory(lakeDir), 'late-scan.json');
}

/** Where files are written before being renamed into place (same file system as the lake). */
export function tmpDirectory(lakeDir: string, topic: string, partition: number): string {
  return join(lakeDir, '_tmp', topic, String(partition));
}

/** The directory of the lake's sealed-hour and late-arrival records. */
export function stateDirectory(lakeDir: string): string {
  return join(lakeDir, '_state');
}

/** Sealed hours, one JSON line per hour, in hour order. */
export function sealedPath(lakeDir: string): string {
  return join(stateDirectory(lakeDir), 'sealed.jsonl');
}

/** Late arrivals, one JSON line per (flush, topic, hour). */
export function latePath(lakeDir: string): string {
  return join(stateDirectory(lakeDir), 'late.jsonl');
}

/** A compacted file of a sealed hour: never mistaken for a flush's `part-` file, never removed by a manifest's recovery. */
export function compactedFileName(generation: number, index: number): string {
  return `compacted-${generation}-${index}.parquet`;
}

/** The generation of a compacted file's name, or undefined when the name is not one. */
export function compactedGeneration(name: string): number | undefined {
  const m = /^compacted-(\d+)-\d+\.parquet$/.exec(name);
  return m === null ? undefined : Number(m[1]);
}

/** The directory of compaction's state and journals. */
export function compactionDirectory(lakeDir: string): string {
  return join(stateDirectory(lakeDir), 'compaction');
}

/** Compaction's scan of the manifests, the hours waiting to be compacted and the unfinished compactions. */
export function compactionStatePath(lakeDir: string): string {
  return join(compactionDirectory(lakeDir), 'state.json');
}

/** The journal of the last compaction of one topic's hour. */
export function compactionJournalPath(lakeDir: string, topic: string, hourStartMs: number): string {
  const { date, hour } = hourPartition(hourStartMs);
  return join(compactionDirectory(lakeDir), topic, `${date}-${hour}.json`);
}

/** Where compacted files are written before being renamed into their hour directory. */
export function compactionTmpDirectory(lakeDir: string, topic: string): string {
  return join(lakeDir, '_tmp', 'compaction', topic);
}
