/**
 * Statistics rows on their way out of the databases and their columns' arithmetic, the same for
 * both dialects.
 */
import type { MinuteStats, StatsColumns } from './types.ts';

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
