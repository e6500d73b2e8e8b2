/**
 * A speed flush's deltas as the run it appends: summed per key and sorted by key, column by
 * column (typed arrays for numbers), the same for both dialects. Sorted runs go into the run
 * table in its key order, and the compactor folds them in that order.
 */
import { checkMinuteRows, compareCodePoints } from './input.ts';
import type { MinuteStats, MinuteStatsColumns } from './types.ts';

/** Minute rows column by column, numbers in typed arrays. */
export interface RunColumns extends MinuteStatsColumns {
  readonly bucketStart: Float64Array;
  readonly offerId: string[];
  readonly placement: string[];
  readonly emissions: Float64Array;
  readonly clicks: Float64Array;
  readonly clickCost: BigInt64Array;
  readonly duplicateClicks: Float64Array;
  readonly fraudClicks: Float64Array;
  readonly fraudCost: BigInt64Array;
  readonly invalidClicks: Float64Array;
}

/** Empty columns for `n` rows. */
export function runColumns(n: number): RunColumns {
  return {
    length: n,
    bucketStart: new Float64Array(n),
    offerId: new Array<string>(n),
    placement: new Array<string>(n),
    emissions: new Float64Array(n),
    clicks: new Float64Array(n),
    clickCost: new BigInt64Array(n),
    duplicateClicks: new Float64Array(n),
    fraudClicks: new Float64Array(n),
    fraudCost: new BigInt64Array(n),
    invalidClicks: new Float64Array(n),
  };
}

/** Rows as columns (the caller's objects are only read). */
export function columnsOfRows(rows: readonly MinuteStats[]): RunColumns {
  const c = runColumns(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i] as MinuteStats;
    c.bucketStart[i] = r.bucketStart;
    c.offerId[i] = r.offerId;
    c.placement[i] = r.placement;
    c.emissions[i] = r.emissions;
    c.clicks[i] = r.clicks;
    c.clickCost[i] = r.clickCost;
    c.duplicateClicks[i] = r.duplicateClicks;
    c.fraudClicks[i] = r.fraudClicks;
    c.fraudCost[i] = r.fraudCost;
    c.invalidClicks[i] = r.invalidClicks;
  }
  return c;
}

/** Row `i` of columns as an object. */
export function rowAt(c: MinuteStatsColumns, i: number): MinuteStats {
  return {
    bucketStart: c.bucketStart[i] as number,
    offerId: c.offerId[i] as string,
    placement: c.placement[i] as string,
    emissions: c.emissions[i] as number,
    clicks: c.clicks[i] as number,
    clickCost: c.clickCost[i] as bigint,
    duplicateClicks: c.duplicateClicks[i] as number,
    fraudClicks: c.fraudClicks[i] as number,
    fraudCost: c.fraudCost[i] as bigint,
    invalidClicks: c.invalidClicks[i] as number,
  };
}

/**
 * The run of `deltas`: one row per key, in ascending (bucketStart, offerId, placement) order by
 * code point, each the sum of the deltas of its key; keys whose sums are all zero are left out.
 */
export function runOf(deltas: MinuteStatsColumns): RunColumns {
  const n = deltas.length;
  const { bucketStart, offerId, placement } = deltas;
  const order = new Array<number>(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort(
    (a, b) =>
      (bucketStart[a] as number) - (bucketStart[b] as number) ||
      compareCodePoints(offerId[a] as string, offerId[b] as string) ||
      compareCodePoints(placement[a] as string, placement[b] as string),
  );
  const out = runColumns(n);
  let k = -1;
  for (const i of order) {
    const same =
      k >= 0 &&
      out.bucketStart[k] === bucketStart[i] &&
      out.offerId[k] === offerId[i] &&
      out.placement[k] === placement[i];
    if (!same) {
      // The previous key stays only if something of it is not zero.
      if (k >= 0 && !allZero(out, k)) k++;
      else if (k < 0) k = 0;
      out.bucketStart[k] = bucketStart[i] as number;
      out.offerId[k] = offerId[i] as string;
      out.placement[k] = placement[i] as string;
      out.emissions[k] = 0;
      out.clicks[k] = 0;
      out.clickCost[k] = 0n;
      out.duplicateClicks[k] = 0;
      out.fraudClicks[k] = 0;
      out.fraudCost[k] = 0n;
      out.invalidClicks[k] = 0;
    }
    out.emissions[k] = (out.emissions[k] as number) + (deltas.emissions[i] as number);
    out.clicks[k] = (out.clicks[k] as number) + (deltas.clicks[i] as number);
    const cost = deltas.clickCost[i] as bigint;
    if (cost !== 0n) out.clickCost[k] = (out.clickCost[k] as bigint) + cost;
    out.duplicateClicks[k] = (out.duplicateClicks[k] as number) + (deltas.duplicateClicks[i] as number);
    out.fraudClicks[k] = (out.fraudClicks[k] as number) + (deltas.fraudClicks[i] as number);
    const refund = deltas.fraudCost[i] as bigint;
    if (refund !== 0n) out.fraudCost[k] = (out.fraudCost[k] as bigint) + refund;
    out.invalidClicks[k] = (out.invalidClicks[k] as number) + (deltas.invalidClicks[i] as number);
  }
  const length = k < 0 ? 0 : allZero(out, k) ? k : k + 1;
  return { ...out, length };
}

function allZero(c: RunColumns, k: number): boolean {
  return (
    c.emissions[k] === 0 &&
    c.clicks[k] === 0 &&
    c.clickCost[k] === 0n &&
    c.duplicateClicks[k] === 0 &&
    c.fraudClicks[k] === 0 &&
    c.fraudCost[k] === 0n &&
    c.invalidClicks[k] === 0
  );
}

/** Speed deltas as columns, rows checked first. */
export function speedColumns(deltas: readonly MinuteStats[] | MinuteStatsColumns): MinuteStatsColumns {
  if (Array.isArray(deltas)) {
    checkMinuteRows(deltas, 'deltas');
    return columnsOfRows(deltas);
  }
  return deltas as MinuteStatsColumns;
}
