/**
 * The safe write: an interval's batch rows replace the previous ones in the serving store in ONE
 * transaction (`replaceBatchInterval`), and the same rows are written to the lake as Parquet,
 * one file per hour (`<lake>/stats/date=YYYY-MM-DD/hour=HH/stats.parquet`), each written to a
 * temporary name, fsynced and renamed over the old one. A crash at any moment leaves the store
 * with the old rows or the new ones, never a mix; a Parquet hour is likewise old or new, and a
 * retry of the job rewrites every hour identically (the rows are deterministic).
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { MinuteStats, StatsStore } from '../store/index.ts';
import { checkInterval, openBatchDatabase } from './recalculate.ts';

const HOUR = 3_600_000;

/** The Parquet file of one hour of batch statistics. */
export function statsFileOf(lakeDir: string, hourStart: number): string {
  const iso = new Date(hourStart).toISOString();
  return join(lakeDir, 'stats', `date=${iso.slice(0, 10)}`, `hour=${iso.slice(11, 13)}`, 'stats.parquet');
}

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes the rows of [from, to) as one Parquet file per hour, each replaced atomically. */
export async function writeStatsParquet(
  lakeDir: string,
  from: number,
  to: number,
  rows: readonly MinuteStats[],
  runId: string,
): Promise<string[]> {
  checkInterval(from, to);
  const db = await openBatchDatabase(1);
  const c = db.connection;
  const written: string[] = [];
  try {
    await c.run(`CREATE TABLE stats (bucket_start BIGINT, offer_id VARCHAR, placement VARCHAR, emissions BIGINT,
      clicks BIGINT, click_cost_micros BIGINT, duplicate_clicks BIGINT, fraud_clicks BIGINT, fraud_cost_micros BIGINT,
      invalid_clicks BIGINT)`);
    const appender = await c.createAppender('stats');
    for (const r of rows) {
      appender.appendBigInt(BigInt(r.bucketStart));
      appender.appendVarchar(r.offerId);
      appender.appendVarchar(r.placement);
      appender.appendBigInt(BigInt(r.emissions));
      appender.appendBigInt(BigInt(r.clicks));
      appender.appendBigInt(r.clickCost);
      appender.appendBigInt(BigInt(r.duplicateClicks));
      appender.appendBigInt(BigInt(r.fraudClicks));
      appender.appendBigInt(r.fraudCost);
      appender.appendBigInt(BigInt(r.invalidClicks));
      appender.endRow();
    }
    appender.closeSync();
    for (let hour = from; hour < to; hour += HOUR) {
      const file = statsFileOf(lakeDir, hour);
      const dir = dirname(file);
      mkdirSync(dir, { recursive: true });
      // Leftovers of runs killed mid-write go first (runs of one interval never overlap).
      for (const name of readdirSync(dir)) if (name.startsWith('.tmp-stats-')) rmSync(join(dir, name), { force: true });
      const tmp = join(dir, `.tmp-stats-${process.pid}-${runId.replace(/[^A-Za-z0-9_-]/g, '_')}.parquet`);
      // An hour with no rows still gets its (empty) file: it replaces what an earlier run wrote.
      await c.run(`COPY (
          SELECT make_timestamp(bucket_start * 1000) AS bucket, offer_id, placement, emissions, clicks,
                 click_cost_micros, duplicate_clicks, fraud_clicks, fraud_cost_micros, invalid_clicks
          FROM stats WHERE bucket_start >= ${hour} AND bucket_start < ${hour + HOUR}
          ORDER BY bucket_start, offer_id, placement
        ) TO '${tmp.replaceAll("'", "''")}' (FORMAT parquet)`);
      fsyncPath(tmp);
      renameSync(tmp, file);
      fsyncPath(dir);
      written.push(file);
    }
    return written;
  } finally {
    db.close();
  }
}

/** Replaces the batch rows of [from, to): the lake's Parquet first, then the store in one transaction. */
export async function safeWriteInterval(o: {
  store: StatsStore;
  lakeDir: string;
  from: number;
  to: number;
  rows: readonly MinuteStats[];
  runId: string;
}): Promise<void> {
  await writeStatsParquet(o.lakeDir, o.from, o.to, o.rows, o.runId);
  await o.store.replaceBatchInterval(o.from, o.to, o.rows, o.runId);
}
