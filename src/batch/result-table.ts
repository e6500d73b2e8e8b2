/**
 * The result table: a recalculation leaves its minute rows in DuckDB, in table `stats` of the
 * job's database, in key order, and everything downstream reads them from there: the Parquet
 * hours (`COPY`), the store (column batches copied from result chunks, no object per row), and
 * the totals for reconciliation (SQL sums).
 *
 * Columns: `minute` (INTEGER, epoch minutes: the bucket start is minute * 60000 ms), `offer_id`
 * and `placement` (ENUMs `offer_key` and `placement_key`, whose values are in code-point order,
 * so the keys sort and group as small integers), the five counts as INTEGER and the two money
 * columns as BIGINT micros. Rows are unique by (minute, offer_id,
 * placement) and were inserted in ascending key order, so a plain scan returns them in that
 * order while `preserve_insertion_order` is on (DuckDB's default).
 */
import type { DuckDBConnection, DuckDBListValue, DuckDBValue, DuckDBVector } from '@duckdb/node-api';
import { type MinuteStats, type MinuteStatsColumns, type StatsColumns, zeroColumns } from '../stats/index.ts';

/** Name of the result table. */
export const RESULT_TABLE = 'stats';

/** The ENUM types of its key columns. */
export const OFFER_KEY = 'offer_key';
export const PLACEMENT_KEY = 'placement_key';

const MINUTE = 60_000;

/**
 * Creates the key ENUMs from a relation of (offer_id, placement) values, each in code-point
 * order. '' keeps an ENUM from being empty (no rows at all).
 */
export async function createKeyTypes(c: DuckDBConnection, offers: string, placements: string): Promise<void> {
  await c.run(`CREATE TYPE ${OFFER_KEY} AS ENUM (
    SELECT offer_id FROM (${offers} UNION SELECT '') WHERE offer_id IS NOT NULL ORDER BY offer_id)`);
  await c.run(`CREATE TYPE ${PLACEMENT_KEY} AS ENUM (
    SELECT placement FROM (${placements} UNION SELECT '') WHERE placement IS NOT NULL ORDER BY placement)`);
}

/** Fills a fresh database's result table with `rows` (any order; they are stored in key order). */
export async function loadResultRows(c: DuckDBConnection, rows: readonly MinuteStats[]): Promise<void> {
  await c.run(`CREATE TABLE loaded (minute INTEGER, offer_id VARCHAR, placement VARCHAR, emissions INTEGER,
    clicks INTEGER, click_cost BIGINT, duplicate_clicks INTEGER, fraud_clicks INTEGER, fraud_cost BIGINT,
    invalid_clicks INTEGER)`);
  const appender = await c.createAppender('loaded');
  for (const r of rows) {
    appender.appendInteger(r.bucketStart / MINUTE);
    appender.appendVarchar(r.offerId);
    appender.appendVarchar(r.placement);
    appender.appendInteger(r.emissions);
    appender.appendInteger(r.clicks);
    appender.appendBigInt(r.clickCost);
    appender.appendInteger(r.duplicateClicks);
    appender.appendInteger(r.fraudClicks);
    appender.appendBigInt(r.fraudCost);
    appender.appendInteger(r.invalidClicks);
    appender.endRow();
  }
  appender.closeSync();
  await createKeyTypes(c, 'SELECT offer_id FROM loaded', 'SELECT placement FROM loaded');
  await c.run(`CREATE TABLE ${RESULT_TABLE} AS
    SELECT minute, offer_id::${OFFER_KEY} AS offer_id, placement::${PLACEMENT_KEY} AS placement, emissions, clicks,
           click_cost, duplicate_clicks, fraud_clicks, fraud_cost, invalid_clicks
    FROM loaded ORDER BY minute, offer_id, placement`);
  await c.run('DROP TABLE loaded');
}

/** Reads a non-null item (every result column is NOT NULL). */
const item = <T extends DuckDBValue>(vector: DuckDBVector<T>, i: number): T => vector.getItem(i) as T;

/** The values of an ENUM type, by code. */
async function enumValues(c: DuckDBConnection, type: string): Promise<string[]> {
  const got = await c.runAndReadAll(`SELECT enum_range(NULL::${type})`);
  return (got.getRows()[0]?.[0] as DuckDBListValue).items as string[];
}

/**
 * The result rows as column batches, one per DuckDB result chunk, in key order: what the store's
 * `replaceBatchInterval` takes. The query runs (and its result is held) before the first batch,
 * so the batches can be read synchronously inside a store transaction. Keys are read as ENUM
 * codes and looked up in the ENUMs' values, so each key string exists once.
 */
export async function resultColumns(c: DuckDBConnection): Promise<Iterable<MinuteStatsColumns>> {
  const offers = await enumValues(c, OFFER_KEY);
  const placements = await enumValues(c, PLACEMENT_KEY);
  const result = await c.run(`SELECT minute, enum_code(offer_id)::INTEGER, enum_code(placement)::INTEGER, emissions,
    clicks, click_cost, duplicate_clicks, fraud_clicks, fraud_cost, invalid_clicks FROM ${RESULT_TABLE}`);
  return {
    *[Symbol.iterator]() {
      for (let k = 0; k < result.chunkCount; k++) {
        const chunk = result.getChunk(k);
        const n = chunk.rowCount;
        const ints = (index: number) => chunk.getColumnVector(index) as DuckDBVector<number>;
        const bigints = (index: number) => chunk.getColumnVector(index) as DuckDBVector<bigint>;
        const [minute, offer, placement, emissions, clicks, duplicates, fraud, invalid] = [0, 1, 2, 3, 4, 6, 7, 9].map(
          ints,
        ) as [
          DuckDBVector<number>,
          DuckDBVector<number>,
          DuckDBVector<number>,
          DuckDBVector<number>,
          DuckDBVector<number>,
          DuckDBVector<number>,
          DuckDBVector<number>,
          DuckDBVector<number>,
        ];
        const clickCost = bigints(5);
        const fraudCost = bigints(8);
        const b = {
          length: n,
          bucketStart: new Float64Array(n),
          offerId: new Array<string>(n),
          placement: new Array<string>(n),
          emissions: new Int32Array(n),
          clicks: new Int32Array(n),
          clickCost: new BigInt64Array(n),
          duplicateClicks: new Int32Array(n),
          fraudClicks: new Int32Array(n),
          fraudCost: new BigInt64Array(n),
          invalidClicks: new Int32Array(n),
        };
        for (let i = 0; i < n; i++) {
          b.bucketStart[i] = item(minute, i) * MINUTE;
          b.offerId[i] = offers[item(offer, i)] as string;
          b.placement[i] = placements[item(placement, i)] as string;
          b.emissions[i] = item(emissions, i);
          b.clicks[i] = item(clicks, i);
          b.clickCost[i] = item(clickCost, i);
          b.duplicateClicks[i] = item(duplicates, i);
          b.fraudClicks[i] = item(fraud, i);
          b.fraudCost[i] = item(fraudCost, i);
          b.invalidClicks[i] = item(invalid, i);
        }
        yield b;
      }
    },
  };
}

/** The result rows as objects, in key order (for small intervals and tests). */
export async function resultRows(c: DuckDBConnection): Promise<MinuteStats[]> {
  const rows: MinuteStats[] = [];
  for (const b of await resultColumns(c)) {
    for (let i = 0; i < b.length; i++) {
      rows.push({
        bucketStart: b.bucketStart[i] as number,
        offerId: b.offerId[i] as string,
        placement: b.placement[i] as string,
        emissions: b.emissions[i] as number,
        clicks: b.clicks[i] as number,
        clickCost: b.clickCost[i] as bigint,
        duplicateClicks: b.duplicateClicks[i] as number,
        fraudClicks: b.fraudClicks[i] as number,
        fraudCost: b.fraudCost[i] as bigint,
        invalidClicks: b.invalidClicks[i] as number,
      });
    }
  }
  return rows;
}

/** Column totals of the result rows (money in micros). */
export async function resultTotals(c: DuckDBConnection): Promise<StatsColumns> {
  const got = await c.runAndReadAll(`SELECT coalesce(sum(emissions), 0)::BIGINT, coalesce(sum(clicks), 0)::BIGINT,
    coalesce(sum(click_cost), 0)::HUGEINT::VARCHAR, coalesce(sum(duplicate_clicks), 0)::BIGINT,
    coalesce(sum(fraud_clicks), 0)::BIGINT, coalesce(sum(fraud_cost), 0)::HUGEINT::VARCHAR,
    coalesce(sum(invalid_clicks), 0)::BIGINT FROM ${RESULT_TABLE}`);
  const [emissions, clicks, clickCost, duplicates, fraud, fraudCost, invalid] = (got.getRows()[0] ?? []) as [
    bigint,
    bigint,
    string,
    bigint,
    bigint,
    string,
    bigint,
  ];
  const totals = zeroColumns();
  totals.emissions = Number(emissions);
  totals.clicks = Number(clicks);
  totals.clickCost = BigInt(clickCost);
  totals.duplicateClicks = Number(duplicates);
  totals.fraudClicks = Number(fraud);
  totals.fraudCost = BigInt(fraudCost);
  totals.invalidClicks = Number(invalid);
  return totals;
}
