/**
 * Statistics rows on their way into and out of the databases, the same for both dialects.
 *
 * Summing speed deltas that share a key before they reach the database. A batch from the speed
 * layer often touches one (minute, offer, placement) many times: one upsert per key instead of
 * one per delta is the largest saving on both dialects, and PostgreSQL requires it (one
 * `INSERT ... ON CONFLICT DO UPDATE` may not update a row twice).
 */
import type { MinuteStats, StatsColumns } from './types.ts';

/** The deltas summed per key, in first-seen order; the caller's objects are never modified. */
export function sumDeltasByKey(deltas: readonly MinuteStats[]): MinuteStats[] {
  // Nested maps avoid building a string key per delta (about ten times faster).
  const byMinute = new Map<number, Map<string, Map<string, number>>>();
  const sums: MinuteStats[] = [];
  let copied: boolean[] | undefined;
  for (const d of deltas) {
    let byOffer = byMinute.get(d.bucketStart);
    if (byOffer === undefined) byMinute.set(d.bucketStart, (byOffer = new Map()));
    let byPlacement = byOffer.get(d.offerId);
    if (byPlacement === undefined) byOffer.set(d.offerId, (byPlacement = new Map()));
    const at = byPlacement.get(d.placement);
    if (at === undefined) {
      byPlacement.set(d.placement, sums.length);
      sums.push(d);
      continue;
    }
    copied ??= [];
    let sum = sums[at] as MinuteStats;
    if (copied[at] !== true) {
      // The first delta of the key is the caller's object: sum into a copy instead.
      sum = { ...sum };
      sums[at] = sum;
      copied[at] = true;
    }
    addColumns(sum, d);
  }
  return sums;
}

const DAY_MS = 86_400_000;

/** Minute rows summed per (day, offer, placement): the deltas of the day rollups. */
export function sumByDay(rows: readonly MinuteStats[]): MinuteStats[] {
  return sumDeltasByKey(rows.map((r) => ({ ...r, bucketStart: r.bucketStart - (r.bucketStart % DAY_MS) })));
}

/** All-zero columns. */
export function zeroColumns(): StatsColumns {
  return {
    emissions: 0,
    clicks: 0,
    clickCost: 0n,
    duplicateClicks: 0,
    fraudClicks: 0,
    fraudCost: 0n,
    invalidClicks: 0,
  };
}

/** Adds the columns of `d` into `into`. */
export function addColumns(into: StatsColumns, d: StatsColumns): void {
  into.emissions += d.emissions;
  into.clicks += d.clicks;
  into.clickCost += d.clickCost;
  into.duplicateClicks += d.duplicateClicks;
  into.fraudClicks += d.fraudClicks;
  into.fraudCost += d.fraudCost;
  into.invalidClicks += d.invalidClicks;
}

/** A statistics row as a database returns it: integers as bigints (SQLite) or strings (PostgreSQL BIGINT). */
export interface RawStatsRow {
  bucket_start: bigint | string | number;
  offer_id: string;
  placement: string;
  emissions: bigint | string | number;
  clicks: bigint | string | number;
  click_cost: bigint | string | number;
  duplicate_clicks: bigint | string | number;
  fraud_clicks: bigint | string | number;
  fraud_cost: bigint | string | number;
  invalid_clicks: bigint | string | number;
}

/** A row as the API hands it out: counts as numbers, money as exact bigints. */
export function toMinuteStats(r: RawStatsRow): MinuteStats {
  return {
    bucketStart: Number(r.bucket_start),
    offerId: r.offer_id,
    placement: r.placement,
    emissions: Number(r.emissions),
    clicks: Number(r.clicks),
    clickCost: BigInt(r.click_cost),
    duplicateClicks: Number(r.duplicate_clicks),
    fraudClicks: Number(r.fraud_clicks),
    fraudCost: BigInt(r.fraud_cost),
    invalidClicks: Number(r.invalid_clicks),
  };
}
