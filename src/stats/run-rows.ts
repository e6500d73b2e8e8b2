/**
 * A speed flush's deltas as the run it appends: summed per key and sorted by key, column by
 * column (typed arrays for numbers), the same for both dialects. Sorted runs go into the run
 * table in its key order, and the compactor folds them in that order.
 */
import { checkMinuteRows } from './input.ts';
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
 * The run of `deltas`: one row per key, each the sum of the deltas of its key, in ascending
 * (bucketStart, offerId, placement) order (strings by UTF-16 code unit: the order only makes
 * inserts local, the tables order keys themselves); keys whose sums are all zero are left out.
 */
export function runOf(deltas: MinuteStatsColumns): RunColumns {
  const n = deltas.length;
  const { bucketStart: b, offerId: o, placement: p } = deltas;
  const order = new Array<number>(n);
  for (let i = 0; i < n; i++) order[i] = i;
  // Sorting, then summing neighbours, costs a fraction of finding keys in maps (measured: 0.1 s
  // against 0.4 s for 300,000 rows).
  order.sort((x, y) => {
    const d = (b[x] as number) - (b[y] as number);
    if (d !== 0) return d;
    const ox = o[x] as string;
    const oy = o[y] as string;
    if (ox !== oy) return ox < oy ? -1 : 1;
    const px = p[x] as string;
    const py = p[y] as string;
    return px === py ? 0 : px < py ? -1 : 1;
  });
  const out = runColumns(n);
  let k = -1;
  for (const i of order) {
    const same = k >= 0 && out.bucketStart[k] === b[i] && out.offerId[k] === o[i] && out.placement[k] === p[i];
    if (!same) {
      // The previous key stays only if something of it is not zero.
      if (k < 0 || !allZero(out, k)) k++;
      out.bucketStart[k] = b[i] as number;
      out.offerId[k] = o[i] as string;
      out.placement[k] = p[i] as string;
      out.emissions[k] = deltas.emissions[i] as number;
      out.clicks[k] = deltas.clicks[i] as number;
      out.clickCost[k] = deltas.clickCost[i] as bigint;
      out.duplicateClicks[k] = deltas.duplicateClicks[i] as number;
      out.fraudClicks[k] = deltas.fraudClicks[i] as number;
      out.fraudCost[k] = deltas.fraudCost[i] as bigint;
      out.invalidClicks[k] = deltas.invalidClicks[i] as number;
      continue;
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

/** Minute rows appended one by one into growing typed arrays: no object per row. */
export class RunColumnsBuilder {
  private c: RunColumns = runColumns(1024);
  private n = 0;

  /** Rows appended so far. */
  get length(): number {
    return this.n;
  }

  /** Appends one row. */
  push(
    bucketStart: number,
    offerId: string,
    placement: string,
    emissions: number,
    clicks: number,
    clickCost: bigint,
    duplicateClicks: number,
    fraudClicks: number,
    fraudCost: bigint,
    invalidClicks: number,
  ): void {
    if (this.n === this.c.length) this.grow();
    const c = this.c;
    const i = this.n++;
    c.bucketStart[i] = bucketStart;
    c.offerId[i] = offerId;
    c.placement[i] = placement;
    c.emissions[i] = emissions;
    c.clicks[i] = clicks;
    c.clickCost[i] = clickCost;
    c.duplicateClicks[i] = duplicateClicks;
    c.fraudClicks[i] = fraudClicks;
    c.fraudCost[i] = fraudCost;
    c.invalidClicks[i] = invalidClicks;
  }

  /** Appends every row of `other`. */
  append(other: MinuteStatsColumns): void {
    for (let i = 0; i < other.length; i++) {
      this.push(
        other.bucketStart[i] as number,
        other.offerId[i] as string,
        other.placement[i] as string,
        other.emissions[i] as number,
        other.clicks[i] as number,
        other.clickCost[i] as bigint,
        other.duplicateClicks[i] as number,
        other.fraudClicks[i] as number,
        other.fraudCost[i] as bigint,
        other.invalidClicks[i] as number,
      );
    }
  }

  /** The rows appended, as columns of their own (the builder starts empty again, as large). */
  take(): RunColumns {
    const c = this.c;
    const n = this.n;
    this.c = runColumns(Math.max(1024, c.length));
    this.n = 0;
    return { ...c, length: n };
  }

  private grow(): void {
    const old = this.c;
    const c = runColumns(old.length * 2);
    c.bucketStart.set(old.bucketStart);
    c.emissions.set(old.emissions);
    c.clicks.set(old.clicks);
    c.clickCost.set(old.clickCost);
    c.duplicateClicks.set(old.duplicateClicks);
    c.fraudClicks.set(old.fraudClicks);
    c.fraudCost.set(old.fraudCost);
    c.invalidClicks.set(old.invalidClicks);
    for (let i = 0; i < old.length; i++) {
      c.offerId[i] = old.offerId[i] as string;
      c.placement[i] = old.placement[i] as string;
    }
    this.c = c;
  }
}
