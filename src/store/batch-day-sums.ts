/**
 * Day rows of a batch replacement added up while its minute rows are written: when the
 * replaced interval is whole UTC days, its batch day rollup is exactly the sum of the rows
 * given, so the store need not read and sort every minute row of those days again.
 */
import { GRANULARITY_MS } from './stats-input.ts';
import type { MinuteStats, MinuteStatsColumns } from './stats-types.ts';

const DAY_MS = GRANULARITY_MS.day;

/** Sums per (day, offer, placement) of the rows added, as day rows. */
export interface BatchDaySums {
  /** Adds the rows of a batch of columns. */
  add(b: MinuteStatsColumns): void;
  /** The day rows: one per (day, offer, placement) added, even if its sums are zero. */
  rows(): MinuteStats[];
}

/** Empty day sums. */
export function batchDaySums(): BatchDaySums {
  const days = new Map<number, Map<string, Map<string, MinuteStats>>>();
  // Rows come minute by minute: the day's map is looked up again only when the day changes.
  let lastDay = -1;
  let offers = new Map<string, Map<string, MinuteStats>>();
  return {
    add(b) {
      const { bucketStart, offerId, placement, emissions, clicks, clickCost, duplicateClicks } = b;
      const { fraudClicks, fraudCost, invalidClicks } = b;
      for (let i = 0; i < b.length; i++) {
        const bucket = bucketStart[i] as number;
        const day = bucket - (bucket % DAY_MS);
        if (day !== lastDay) {
          const known = days.get(day);
          if (known === undefined) days.set(day, (offers = new Map()));
          else offers = known;
          lastDay = day;
        }
        const offer = offerId[i] as string;
        let placements = offers.get(offer);
        if (placements === undefined) offers.set(offer, (placements = new Map()));
        const where = placement[i] as string;
        const cost = clickCost[i] as bigint;
        const refund = fraudCost[i] as bigint;
        const sum = placements.get(where);
        if (sum === undefined) {
          placements.set(where, {
            bucketStart: day,
            offerId: offer,
            placement: where,
            emissions: emissions[i] as number,
            clicks: clicks[i] as number,
            clickCost: cost,
            duplicateClicks: duplicateClicks[i] as number,
            fraudClicks: fraudClicks[i] as number,
            fraudCost: refund,
            invalidClicks: invalidClicks[i] as number,
          });
          continue;
        }
        sum.emissions += emissions[i] as number;
        sum.clicks += clicks[i] as number;
        // Most rows carry no money, and a bigint addition allocates.
        if (cost !== 0n) sum.clickCost += cost;
        sum.duplicateClicks += duplicateClicks[i] as number;
        sum.fraudClicks += fraudClicks[i] as number;
        if (refund !== 0n) sum.fraudCost += refund;
        sum.invalidClicks += invalidClicks[i] as number;
      }
    },
    rows() {
      const out: MinuteStats[] = [];
      for (const offersOfDay of days.values()) {
        for (const placements of offersOfDay.values()) for (const sum of placements.values()) out.push(sum);
      }
      return out;
    },
  };
}
