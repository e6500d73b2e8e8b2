/**
 * The joiner's retained emissions, packed into typed arrays: about 70 bytes per emission of 2-3
 * offers instead of the ~190 a Map of arrays costs (the Map entry, the id string, the array and
 * a boxed timestamp).
 *
 * - Emissions sit in a ring in insertion order (about event-time order), so trimming the oldest
 *   costs what it removes. Each keeps its time, placement (interned to a number), a 64-bit hash
 *   of its id and the position of its offers in a second ring (offer interned, cost in micros).
 * - An open-addressing index (linear probing, at most half full) maps the id's hash to the
 *   emission. The id itself is not kept: two ids whose two independent 32-bit hashes both agree
 *   would be taken for one. With a million emissions retained that is about one chance in 10^13
 *   per lookup, far below what the batch layer corrects anyway.
 */

/** Offers one emission may list (the contract's limit is lower). */
const MAX_OFFERS_PER_EMISSION = 0xffff;
const MIN_CAPACITY = 1024;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** FNV-1a over UTF-16 code units. */
function hashA(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** A multiplicative hash with a murmur3 finaliser, independent of {@link hashA}. */
function hashB(s: string): number {
  let h = 0x9747b28c ^ s.length;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x5bd1e995) ^ (h >>> 15);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Strings as small numbers, one per distinct value. */
class Interner {
  private readonly ids = new Map<string, number>();
  readonly values: string[] = [];
  id(value: string): number {
    let id = this.ids.get(value);
    if (id === undefined) {
      id = this.values.length;
      this.values.push(value);
      this.ids.set(value, id);
    }
    return id;
  }
  /** The number of `value`, or -1 when it was never interned. */
  find(value: string): number {
    return this.ids.get(value) ?? -1;
  }
}

/** An emission as the joiner needs it; offers are read through {@link EmissionTable.offerCost}. */
export interface EmissionOffer {
  offerId: string;
  clickCost: bigint;
}

/** The retained emissions of one engine. */
export class EmissionTable {
  private readonly placements = new Interner();
  private readonly offers = new Interner();
  // The emission ring: emission n (counting from 0, forever) sits at n & mask.
  private capacity = MIN_CAPACITY;
  private head = 0;
  private tail = 0;
  private ts = new Float64Array(MIN_CAPACITY);
  private placement = new Uint32Array(MIN_CAPACITY);
  private hashHi = new Uint32Array(MIN_CAPACITY);
  private hashLo = new Uint32Array(MIN_CAPACITY);
  /** Number of the emission's first offer in the offer ring (modulo 2^32). */
  private offerStart = new Uint32Array(MIN_CAPACITY);
  private offerCount = new Uint16Array(MIN_CAPACITY);
  // The offer ring: offer k sits at k & offerMask.
  private offerCapacity = MIN_CAPACITY;
  private offerHead = 0;
  private offerTail = 0;
  private offerId = new Uint32Array(MIN_CAPACITY);
  private offerCostMicros = new Float64Array(MIN_CAPACITY);
  /** Costs beyond 2^53 micros, by offer number (their slot in offerCostMicros holds NaN). */
  private readonly bigCosts = new Map<number, bigint>();
  // The index: slot -> emission ring position + 1 (0: empty).
  private slots = new Uint32Array(4 * MIN_CAPACITY);

  /** Emissions retained. */
  get size(): number {
    return this.tail - this.head;
  }

  /** The ring position of emission `id`, or -1. */
  find(id: string): number {
    const hi = hashA(id);
    const lo = hashB(id);
    const mask = this.slots.length - 1;
    for (let i = (hi ^ Math.imul(lo, 0x9e3779b1)) & mask; ; i = (i + 1) & mask) {
      const at = this.slots[i] as number;
      if (at === 0) return -1;
      if (this.hashHi[at - 1] === hi && this.hashLo[at - 1] === lo) return at - 1;
    }
  }

  /**
   * Adds an emission (the caller has checked it is not retained yet) and returns its ring
   * position, valid until the next `add`.
   */
  add(id: string, ts: number, placement: string, offers: readonly EmissionOffer[]): number {
    if (offers.length > MAX_OFFERS_PER_EMISSION) throw new RangeError(`an emission lists ${offers.length} offers`);
    if (this.size === this.capacity) this.growRing();
    while (this.offerTail - this.offerHead + offers.length > this.offerCapacity) this.growOffers();
    const at = this.tail & (this.capacity - 1);
    this.ts[at] = ts;
    this.placement[at] = this.placements.id(placement);
    this.hashHi[at] = hashA(id);
    this.hashLo[at] = hashB(id);
    this.offerStart[at] = this.offerTail >>> 0;
    this.offerCount[at] = offers.length;
    const offerMask = this.offerCapacity - 1;
    for (const o of offers) {
      const k = this.offerTail++;
      this.offerId[k & offerMask] = this.offers.id(o.offerId);
      if (o.clickCost <= MAX_SAFE && o.clickCost >= -MAX_SAFE)
        this.offerCostMicros[k & offerMask] = Number(o.clickCost);
      else {
        this.offerCostMicros[k & offerMask] = Number.NaN;
        this.bigCosts.set(k, o.clickCost);
      }
    }
    this.tail++;
    if (2 * this.size > this.slots.length) this.rebuildIndex(2 * this.slots.length);
    else this.insertSlot(at);
    return at;
  }

  /** Event time of the emission at ring position `at`. */
  tsAt(at: number): number {
    return this.ts[at] as number;
  }

  /** Placement of the emission at ring position `at`. */
  placementAt(at: number): string {
    return this.placements.values[this.placement[at] as number] as string;
  }

  /** The click cost of `offerId` in the emission at `at` (micros), or undefined when it does not list the offer. */
  offerCost(at: number, offerId: string): number | bigint | undefined {
    const wanted = this.offers.find(offerId);
    if (wanted < 0) return undefined;
    const offerMask = this.offerCapacity - 1;
    const start = this.offerStart[at] as number;
    const count = this.offerCount[at] as number;
    for (let j = 0; j < count; j++) {
      const k = (start + j) >>> 0;
      if (this.offerId[k & offerMask] !== wanted) continue;
      const cost = this.offerCostMicros[k & offerMask] as number;
      return Number.isNaN(cost) ? (this.bigCosts.get(this.offerNumber(k)) as bigint) : cost;
    }
    return undefined;
  }

  /** Drops emissions from the oldest on while their time is before `horizon`. */
  trimBefore(horizon: number): void {
    const mask = this.capacity - 1;
    while (this.head < this.tail) {
      const at = this.head & mask;
      if ((this.ts[at] as number) >= horizon) return;
      this.deleteSlot(at);
      const count = this.offerCount[at] as number;
      if (this.bigCosts.size > 0) {
        for (let j = 0; j < count; j++) this.bigCosts.delete(this.offerHead + j);
      }
      this.offerHead += count;
      this.head++;
    }
  }

  /** The full offer number of an offer ring number kept modulo 2^32. */
  private offerNumber(k32: number): number {
    return this.offerHead + ((k32 - this.offerHead) >>> 0);
  }

  private slotOf(at: number): number {
    const mask = this.slots.length - 1;
    return ((this.hashHi[at] as number) ^ Math.imul(this.hashLo[at] as number, 0x9e3779b1)) & mask;
  }

  private insertSlot(at: number): void {
    const mask = this.slots.length - 1;
    let i = this.slotOf(at);
    while (this.slots[i] !== 0) i = (i + 1) & mask;
    this.slots[i] = at + 1;
  }

  /** Removes ring position `at` from the index, shifting later entries of its probe run back. */
  private deleteSlot(at: number): void {
    const mask = this.slots.length - 1;
    let i = this.slotOf(at);
    while (this.slots[i] !== at + 1) {
      if (this.slots[i] === 0) throw new Error('emission index out of step with the ring');
      i = (i + 1) & mask;
    }
    // Backward-shift deletion: move up each later entry whose home slot lies at or before the hole.
    let hole = i;
    for (let j = (i + 1) & mask; this.slots[j] !== 0; j = (j + 1) & mask) {
      const home = this.slotOf((this.slots[j] as number) - 1);
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        this.slots[hole] = this.slots[j] as number;
        hole = j;
      }
    }
    this.slots[hole] = 0;
  }

  private rebuildIndex(slots: number): void {
    this.slots = new Uint32Array(slots);
    const mask = this.capacity - 1;
    for (let n = this.head; n < this.tail; n++) this.insertSlot(n & mask);
  }

  private growRing(): void {
    const old = {
      ts: this.ts,
      placement: this.placement,
      hashHi: this.hashHi,
      hashLo: this.hashLo,
      offerStart: this.offerStart,
      offerCount: this.offerCount,
    };
    const oldMask = this.capacity - 1;
    this.capacity *= 2;
    const mask = this.capacity - 1;
    this.ts = new Float64Array(this.capacity);
    this.placement = new Uint32Array(this.capacity);
    this.hashHi = new Uint32Array(this.capacity);
    this.hashLo = new Uint32Array(this.capacity);
    this.offerStart = new Uint32Array(this.capacity);
    this.offerCount = new Uint16Array(this.capacity);
    for (let n = this.head; n < this.tail; n++) {
      const from = n & oldMask;
      const to = n & mask;
      this.ts[to] = old.ts[from] as number;
      this.placement[to] = old.placement[from] as number;
      this.hashHi[to] = old.hashHi[from] as number;
      this.hashLo[to] = old.hashLo[from] as number;
      this.offerStart[to] = old.offerStart[from] as number;
      this.offerCount[to] = old.offerCount[from] as number;
    }
    this.rebuildIndex(Math.max(this.slots.length, 2 * this.capacity));
  }

  private growOffers(): void {
    const oldIds = this.offerId;
    const oldCosts = this.offerCostMicros;
    const oldMask = this.offerCapacity - 1;
    this.offerCapacity *= 2;
    const mask = this.offerCapacity - 1;
    this.offerId = new Uint32Array(this.offerCapacity);
    this.offerCostMicros = new Float64Array(this.offerCapacity);
    for (let k = this.offerHead; k < this.offerTail; k++) {
      this.offerId[k & mask] = oldIds[k & oldMask] as number;
      this.offerCostMicros[k & mask] = oldCosts[k & oldMask] as number;
    }
  }
}
