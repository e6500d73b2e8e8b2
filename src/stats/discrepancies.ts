/** Speed-versus-batch totals per interval and column: one conversion for both dialects. */
import { ReckonError } from '../events/index.ts';
import { type Discrepancy, STATS_COLUMNS, type StatsColumn, type StatsColumns } from './types.ts';

/** A discrepancy row as stored (column names of the tables). */
export interface DiscrepancyRecord {
  from_ms: number;
  to_ms: number;
  column_name: StatsColumn;
  speed: bigint;
  batch: bigint;
  run_id: string;
  computed_at: number;
}

/** Checks an interval and turns two sets of totals into one stored row per column. */
export function discrepancyRecords(
  from: number,
  to: number,
  runId: string,
  speed: StatsColumns,
  batch: StatsColumns,
  now: number,
): DiscrepancyRecord[] {
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from < 0 || from >= to) {
    throw new ReckonError('RECKON_STORE_BAD_INTERVAL', `discrepancy interval [${from}, ${to}) is not a valid interval`);
  }
  if (runId.length === 0)
    throw new ReckonError('RECKON_STORE_BAD_RUN', 'a discrepancy needs the run id of its batch run');
  return STATS_COLUMNS.map((column) => ({
    from_ms: from,
    to_ms: to,
    column_name: column,
    speed: BigInt(speed[column]),
    batch: BigInt(batch[column]),
    run_id: runId,
    computed_at: now,
  }));
}

/** A stored row (numbers may come back as strings or bigints, depending on the driver) as a {@link Discrepancy}. */
export function toDiscrepancy(r: {
  from_ms: number | string | bigint;
  to_ms: number | string | bigint;
  column_name: string;
  speed: number | string | bigint;
  batch: number | string | bigint;
  run_id: string;
  computed_at: number | string | bigint;
}): Discrepancy {
  return {
    from: Number(r.from_ms),
    to: Number(r.to_ms),
    column: r.column_name as StatsColumn,
    speed: BigInt(r.speed),
    batch: BigInt(r.batch),
    runId: r.run_id,
    computedAt: Number(r.computed_at),
  };
}

/** Orders discrepancies by interval, then by the contract's column order. */
export function compareDiscrepancies(a: Discrepancy, b: Discrepancy): number {
  return a.from - b.from || a.to - b.to || STATS_COLUMNS.indexOf(a.column) - STATS_COLUMNS.indexOf(b.column);
}

/** Totals as stored by SQL sums (null for no rows) into {@link StatsColumns}. */
export function totalsOf(r: Record<string, number | string | bigint | null> | undefined): StatsColumns {
  const n = (v: number | string | bigint | null | undefined) => Number(v ?? 0);
  const b = (v: number | string | bigint | null | undefined) => BigInt(v ?? 0);
  return {
    emissions: n(r?.emissions),
    clicks: n(r?.clicks),
    clickCost: b(r?.click_cost),
    duplicateClicks: n(r?.duplicate_clicks),
    fraudClicks: n(r?.fraud_clicks),
    fraudCost: b(r?.fraud_cost),
    invalidClicks: n(r?.invalid_clicks),
  };
}
