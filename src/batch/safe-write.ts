/**
 * The safe write: an interval's batch rows replace the previous ones in the serving store in ONE
 * transaction (`replaceBatchInterval`), and the same rows are written to the lake as Parquet,
 * one file per hour (`<lake>/stats/date=YYYY-MM-DD/hour=HH/stats.parquet`), each written to a
 * temporary name, fsynced and renamed over the old one. A crash at any moment leaves the store
 * with the old rows or the new ones, never a mix; a Parquet hour is likewise old or new, and a
 * retry of the job rewrites every hour identically (the rows are deterministic).
 *
 * Both writes read the result table in DuckDB (`result-table.ts`): the hours with `COPY ... TO`,
 * the store through column batches copied from the result chunks.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { MinuteStats, StatsStore } from '../stats/index.ts';
import { checkInterval, openBatchDatabase, sqlString } from './recalculate.ts';
import { loadResultRows, RESULT_TABLE, resultColumns } from './result-table.ts';

const HOUR = 3_600_000;
const MINUTE = 60_000;

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

/**
 * Writes the result table's rows of [from, to) as one Parquet file per hour, each replaced
 * atomically. Columns: bucket (TIMESTAMP), offer_id, placement, the five counts (BIGINT) and
 * click_cost_micros, fraud_cost_micros (BIGINT), in key order.
 */
export async function writeStatsHours(
  c: DuckDBConnection,
  lakeDir: string,
  from: number,
  to: number,
  runId: string,
): Promise<string[]> {
  checkInterval(from, to);
  const written: string[] = [];
  for (let hour = from; hour < to; hour += HOUR) {
    const file = statsFileOf(lakeDir, hour);
    const dir = dirname(file);
    mkdirSync(dir, { recursive: true });
    // Leftovers of runs killed mid-write go first (runs of one interval never overlap).
    for (const name of readdirSync(dir)) if (name.startsWith('.tmp-stats-')) rmSync(join(dir, name), { force: true });
    const tmp = join(dir, `.tmp-stats-${process.pid}-${runId.replace(/[^A-Za-z0-9_-]/g, '_')}.parquet`);
    // An hour with no rows still gets its (empty) file: it replaces what an earlier run wrote.
    // The table is in key order and insertion order is preserved, so the scan needs no sort.
    await c.run(`COPY (
        SELECT make_timestamp(minute * ${MINUTE * 1000}::BIGINT) AS bucket, offer_id::VARCHAR AS offer_id,
               placement::VARCHAR AS placement, emissions::BIGINT AS emissions, clicks::BIGINT AS clicks,
               click_cost AS click_cost_micros, duplicate_clicks::BIGINT AS duplicate_clicks,
               fraud_clicks::BIGINT AS fraud_clicks, fraud_cost AS fraud_cost_micros,
               invalid_clicks::BIGINT AS invalid_clicks
        FROM ${RESULT_TABLE} WHERE minute >= ${hour / MINUTE} AND minute < ${(hour + HOUR) / MINUTE}
      ) TO ${sqlString(tmp)} (FORMAT parquet)`);
    fsyncPath(tmp);
    renameSync(tmp, file);
    fsyncPath(dir);
    written.push(file);
  }
  return written;
}

/** Replaces the batch rows of [from, to) with the result table's: the lake's Parquet first, then the store in one transaction. */
export async function safeWriteResult(o: {
  connection: DuckDBConnection;
  store: StatsStore;
  lakeDir: string;
  from: number;
  to: number;
  runId: string;
  /** Computed from complete input (default true); otherwise served but never final. */
  complete?: boolean;
  /** Called after each of the two writes with its wall time, ms. */
  onStepTimed?: (part: string, ms: number) => void;
}): Promise<void> {
  const t0 = performance.now();
  await writeStatsHours(o.connection, o.lakeDir, o.from, o.to, o.runId);
  const t1 = performance.now();
  o.onStepTimed?.('parquet hours', t1 - t0);
  await o.store.replaceBatchInterval(o.from, o.to, { columns: await resultColumns(o.connection) }, o.runId, {
    complete: o.complete ?? true,
  });
  o.onStepTimed?.('store transaction', performance.now() - t1);
}

/** Replaces the batch rows of [from, to) with `rows`, as {@link safeWriteResult} does. */
export async function safeWriteInterval(o: {
  store: StatsStore;
  lakeDir: string;
  from: number;
  to: number;
  rows: readonly MinuteStats[];
  runId: string;
}): Promise<void> {
  const db = await openBatchDatabase(1);
  try {
    await loadResultRows(db.connection, o.rows);
    await safeWriteResult({ ...o, connection: db.connection });
  } finally {
    db.close();
  }
}
