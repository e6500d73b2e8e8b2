/**
 * The engine's minute deltas between two drains, held column by column: one row per (minute,
 * offer, placement), found through small integer keys (offers and placements are numbered per
 * drain), counts and money in typed arrays. Day traffic makes a new row for nearly every event;
 * an object per row was most of the engine's garbage.
 */
import type { RunColumnsBuilder } from '../stats/index.ts';

/** The count columns, in the order of {@link DeltaColumns.add}'s `column`. */
export const DELTA_COLUMNS = ['emissions', 'clicks', 'duplicateClicks', 'fraudClicks', 'invalidClicks'] as const;

/** A count column of the statistics contract. */
export type DeltaColumn = (typeof DELTA_COLUMNS)[number];

const COLUMN_INDEX: Readonly<Record<DeltaColumn, number>> = {
  emissions: 0,
  clicks: 1,
  duplicateClicks: 2,
  fraudClicks: 3,
  invalidClicks: 4,
};

/** Placements per offer in a row key: an offer's rows are keyed offer * PLACEMENTS + placement. */
const PLACEMENTS = 2 ** 20;

/** Money in micros: a number while it is a safe integer, a bigint beyond. */
export type Money = number | bigint;

const isZero = (m: Money): boolean => (typeof m === 'bigint' ? m === 0n : m === 0);

/** Deltas of minute rows since the last drain. */
export class DeltaColumns {
  private offers = new Map<string, number>();
  private offerNames: string[] = [];
  private placements = new Map<string, number>();
  private placementNames: string[] = [];
  /** Row of each (minute, offer * PLACEMENTS + placement). */
  private rows = new Map<number, Map<number, number>>();
  private n = 0;
  private bucket = new Float64Array(1024);
  private offer = new Int32Array(1024);
  private placement = new Int32Array(1024);
  private counts = DELTA_COLUMNS.map(() => new Float64Array(1024));
  private clickCost = new Float64Array(1024);
  private fraudCost = new Float64Array(1024);
  /** Money sums that left the safe integers, by row. */
  private bigMoney = new Map<number, { clickCost: bigint; fraudCost: bigint }>();

  /** Adds `n` to `column` of the row of (bucketStart, offerId, placement), and `cost` to its money where the column has some. */
  add(bucketStart: number, offerId: string, placementName: string, column: DeltaColumn, cost: Money, n: number): void {
    let o = this.offers.get(offerId);
    if (o === undefined) {
      o = this.offerNames.length;
      this.offers.set(offerId, o);
      this.offerNames.push(offerId);
    }
    let p = this.placements.get(placementName);
    if (p === undefined) {
      p = this.placementNames.length;
      if (p >= PLACEMENTS) throw new Error(`more than ${PLACEMENTS} placements between two drains`);
      this.placements.set(placementName, p);
      this.placementNames.push(placementName);
    }
    let byKey = this.rows.get(bucketStart);
    if (byKey === undefined) this.rows.set(bucketStart, (byKey = new Map()));
    const key = o * PLACEMENTS + p;
    let row = byKey.get(key);
    if (row === undefined) {
      row = this.newRow(bucketStart, o, p);
      byKey.set(key, row);
    }
    const counts = this.counts[COLUMN_INDEX[column]] as Float64Array;
    counts[row] = (counts[row] as number) + n;
    if (column === 'clicks') this.addMoney(row, 'clickCost', cost);
    else if (column === 'fraudClicks') this.addMoney(row, 'fraudCost', cost);
  }

  /** Appends the rows whose columns are not all zero to `into` and starts empty. */
  drainInto(into: RunColumnsBuilder): void {
    const [emissions, clicks, duplicates, fraud, invalid] = this.counts as [
      Float64Array,
      Float64Array,
      Float64Array,
      Float64Array,
      Float64Array,
    ];
    for (let i = 0; i < this.n; i++) {
      const big = this.bigMoney.get(i);
      const clickCost = big?.clickCost ?? (this.clickCost[i] as number);
      const fraudCost = big?.fraudCost ?? (this.fraudCost[i] as number);
      if (
        emissions[i] === 0 &&
        clicks[i] === 0 &&
        duplicates[i] === 0 &&
        fraud[i] === 0 &&
        invalid[i] === 0 &&
        isZero(clickCost) &&
        isZero(fraudCost)
      )
        continue;
      into.push(
        this.bucket[i] as number,
        this.offerNames[this.offer[i] as number] as string,
        this.placementNames[this.placement[i] as number] as string,
        emissions[i] as number,
        clicks[i] as number,
        BigInt(clickCost),
        duplicates[i] as number,
        fraud[i] as number,
        BigInt(fraudCost),
        invalid[i] as number,
      );
    }
    this.offers = new Map();
    this.offerNames = [];
    this.placements = new Map();
    this.placementNames = [];
    this.rows = new Map();
    this.bigMoney.clear();
    this.n = 0;
  }

  private newRow(bucketStart: number, offer: number, placement: number): number {
    if (this.n === this.bucket.length) this.grow();
    const row = this.n++;
    this.bucket[row] = bucketStart;
    this.offer[row] = offer;
    this.placement[row] = placement;
    for (const c of this.counts) c[row] = 0;
    this.clickCost[row] = 0;
    this.fraudCost[row] = 0;
    return row;
  }

  private addMoney(row: number, column: 'clickCost' | 'fraudCost', cost: Money): void {
    const big = this.bigMoney.get(row);
    if (big === undefined) {
      const sum = (this[column][row] as number) + (typeof cost === 'number' ? cost : Number.NaN);
      if (Number.isSafeInteger(sum)) {
        this[column][row] = sum;
        return;
      }
      // Past 2^53 micros: this row's money continues exactly as bigints.
      const moved = {
        clickCost: BigInt(this.clickCost[row] as number),
        fraudCost: BigInt(this.fraudCost[row] as number),
      };
      this.bigMoney.set(row, moved);
      moved[column] += BigInt(cost);
      return;
    }
    big[column] += BigInt(cost);
  }

  private grow(): void {
    const size = this.bucket.length * 2;
    const bigger = <T extends Float64Array | Int32Array>(a: T): T => {
      const b = new (a.constructor as new (n: number) => T)(size);
      b.set(a);
      return b;
    };
    this.bucket = bigger(this.bucket);
    this.offer = bigger(this.offer);
    this.placement = bigger(this.placement);
    this.counts = this.counts.map(bigger);
    this.clickCost = bigger(this.clickCost);
    this.fraudCost = bigger(this.fraudCost);
  }
}
