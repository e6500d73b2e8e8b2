/**
 * Hour and day rows of a batch generation added up while its minute rows are written: a
 * generation holds the rollup of every hour and day that lies wholly inside its interval, so
 * the store never reads and sorts the minute rows again to build them.
 */
import { compareCodePoints } from './input.ts';
import type { MinuteStats, MinuteStatsColumns } from './types.ts';

/** Sums per (bucket, offer, placement) of the rows added, for one bucket size. */
export interface RollupSums {
  /** Adds the rows of a batch of columns. */
  add(b: MinuteStatsColumns): void;
  /** The rollup rows in key order: one per (bucket, offer, placement) added, even if its sums are zero. */
  rows(): MinuteStats[];
}

/**
 * Empty sums of buckets of `size` ms; rows of buckets that do not lie wholly inside
 * [from, to) are left out (a query reads those buckets from minute rows).
 */
export function rollupSums(size: number, from: number, to: number): RollupSums {
  const buckets = new Map<number, Map<string, Map<string, MinuteStats>>>();
  // Rows come minute by minute: the bucket's map is looked up again only when the bucket changes.
  let lastBucket = -1;
  let offers: Map<string, Map<string, MinuteStats>> | undefined;
  return {
    add(b) {
      const { bucketStart, offerId, placement, emissions, clicks, clickCost, duplicateClicks } = b;
      const { fraudClicks, fraudCost, invalidClicks } = b;
      for (let i = 0; i < b.length; i++) {
        const minute = bucketStart[i] as number;
        const bucket = minute - (minute % size);
        if (bucket !== lastBucket) {
          lastBucket = bucket;
          if (bucket < from || bucket + size > to) offers = undefined;
          else {
            offers = buckets.get(bucket);
            if (offers === undefined) buckets.set(bucket, (offers = new Map()));
          }
        }
        if (offers === undefined) continue;
        const offer = offerId[i] as string;
        let placements = offers.get(offer);
        if (placements === undefined) offers.set(offer, (placements = new Map()));
        const where = placement[i] as string;
        const cost = clickCost[i] as bigint;
        const refund = fraudCost[i] as bigint;
        const sum = placements.get(where);
        if (sum === undefined) {
          placements.set(where, {
            bucketStart: bucket,
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
      for (const bucket of [...buckets.keys()].sort((a, b) => a - b)) {
        const byOffer = buckets.get(bucket) as Map<string, Map<string, MinuteStats>>;
        for (const offer of [...byOffer.keys()].sort(compareCodePoints)) {
          const byPlacement = byOffer.get(offer) as Map<string, MinuteStats>;
          for (const where of [...byPlacement.keys()].sort(compareCodePoints))
            out.push(byPlacement.get(where) as MinuteStats);
        }
      }
      return out;
    },
  };
}
