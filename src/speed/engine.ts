/**
 * The speed layer's statistics engine: the click-emission joiner and the minute aggregator, as
 * one deterministic state machine fed with events in arrival order. It applies the statistics
 * contract as far as its state allows and emits minute-row deltas, retracting when it learns
 * better (an earlier click on the same emission and offer turns the billable one into a
 * duplicate). On clean input (no faults, nothing late) its rows equal the batch layer's exactly.
 *
 * State is bounded in event time: emissions are kept for the click window plus the allowed
 * lateness behind the watermark (the latest event time seen), clicks that wait for their
 * emission for the allowed lateness, and the ids and counters the rules need for as long.
 */
import { type Click, compareTsThenId, type Emission, ipBlocklistMatcher, type StatsRules } from '../events/index.ts';
import { type MinuteStats, RunColumnsBuilder, rowAt } from '../stats/index.ts';
import { type DeltaColumn, DeltaColumns, type Money } from './delta-columns.ts';
import { EmissionTable } from './emission-table.ts';

/** Placement of invalid clicks whose emission is unknown (DESIGN.md). */
export const NO_PLACEMENT = '(none)';

/** A change to one minute row, as the store takes it; money in micros. Columns may be negative (retractions). */
export type MinuteDelta = MinuteStats;

/** Deletes entries from the front of `map` (its oldest insertions) while `old` holds for them. */
function trimOldest<V>(map: Map<string, V>, old: (value: V, key: string) => boolean): void {
  for (const [key, value] of map) {
    if (!old(value, key)) return;
    map.delete(key);
  }
}

/** The click currently counted for one (emission, offer), and how it was counted. */
interface FirstClick {
  ts: number;
  id: string;
  verdict: 'clicks' | 'fraudClicks';
  userHourKey: string | undefined;
}

/** Options beyond the contract's rules. */
export interface SpeedEngineOptions {
  /** How long behind the watermark events may still arrive. Default 1 h. */
  allowedLatenessMs?: number;
  /** Most clicks waiting for their emission; beyond it the oldest is decided invalid. Default 100,000. */
  maxPendingClicks?: number;
}

/** Figures of the engine's state, for metrics and memory measurements. */
export interface SpeedEngineState {
  emissions: number;
  pendingClicks: number;
  firstClicks: number;
  seenClickIds: number;
  watermark: number;
}

const MINUTE = 60_000;
const HOUR = 3_600_000;

/** The joiner and aggregator. Feed events with `emission`/`click`, then `drain` the deltas. */
export class SpeedEngine {
  private readonly rules: StatsRules;
  private readonly latenessMs: number;
  private readonly maxPending: number;
  private readonly blocked: (ip: string) => boolean;
  private readonly emissions = new EmissionTable();
  /** Clicks waiting for their emission, by emission id, in arrival order. */
  private readonly pending = new Map<string, Click[]>();
  private pendingCount = 0;
  /** No waiting click is older than this (a lower bound: clicks that stop waiting leave it as it is). */
  private oldestPending = Number.POSITIVE_INFINITY;
  /** Click ids seen (redeliveries count once), with their ts for eviction. */
  private readonly seenClicks = new Map<string, number>();
  private readonly firstClicks = new Map<string, FirstClick>();
  /** Billable clicks per (userId, offerId, UTC hour). */
  private readonly userHour = new Map<string, number>();
  /** Deltas since the last drain, in columns. */
  private readonly deltas = new DeltaColumns();
  private watermark = Number.NEGATIVE_INFINITY;

  constructor(rules: StatsRules, options: SpeedEngineOptions = {}) {
    this.rules = rules;
    this.latenessMs = options.allowedLatenessMs ?? HOUR;
    this.maxPending = options.maxPendingClicks ?? 100_000;
    this.blocked = ipBlocklistMatcher(rules.ipBlocklist);
  }

  /** The latest event time seen. */
  get currentWatermark(): number {
    return this.watermark;
  }

  /** Sizes of the state. */
  state(): SpeedEngineState {
    return {
      emissions: this.emissions.size,
      pendingClicks: this.pendingCount,
      firstClicks: this.firstClicks.size,
      seenClickIds: this.seenClicks.size,
      watermark: this.watermark,
    };
  }

  /** Counts an emission (once per id) and decides the clicks that waited for it. */
  emission(e: Emission): void {
    if (e.ts > this.watermark) this.watermark = e.ts;
    if (this.emissions.find(e.id) >= 0) return; // a redelivery
    for (const o of e.offers) this.add(e.ts, o.offerId, e.placement, 'emissions', 0);
    const at = this.emissions.add(e.id, e.ts, e.placement, e.offers);
    const waiting = this.pending.get(e.id);
    if (waiting !== undefined) {
      const reach = e.ts + this.rules.clickWindowMs + this.latenessMs;
      const stay = waiting.filter((c) => c.ts > reach); // as in `click`: too late to join
      if (stay.length === 0) this.pending.delete(e.id);
      else this.pending.set(e.id, stay);
      this.pendingCount -= waiting.length - stay.length;
      for (const c of waiting) if (c.ts <= reach) this.joined(c, at);
    }
  }

  /** Counts a click (once per id): joined now, or kept until its emission arrives. */
  click(c: Click): void {
    if (c.ts > this.watermark) this.watermark = c.ts;
    if (this.seenClicks.has(c.id)) return; // a redelivery
    this.seenClicks.set(c.id, c.ts);
    const at = this.emissions.find(c.emissionId);
    // An emission older than the click by more than the window and the lateness is treated as
    // gone, whether or not it has been evicted yet: the decision must not depend on when state
    // was last trimmed, or a restart (which rebuilds state) could decide the click differently.
    if (at >= 0 && c.ts <= this.emissions.tsAt(at) + this.rules.clickWindowMs + this.latenessMs) {
      return this.joined(c, at);
    }
    let waiting = this.pending.get(c.emissionId);
    if (waiting === undefined) this.pending.set(c.emissionId, (waiting = []));
    waiting.push(c);
    this.pendingCount++;
    if (c.ts < this.oldestPending) this.oldestPending = c.ts;
    if (this.pendingCount > this.maxPending) this.expirePending(Number.POSITIVE_INFINITY, 1);
  }

  /**
   * Moves event time on: clicks that waited past the allowed lateness become invalid (no such
   * emission), and state too old to matter is dropped. Call with the wall clock or the watermark.
   */
  advance(now: number = this.watermark): void {
    this.expirePending(now - this.latenessMs, Number.POSITIVE_INFINITY);
    // Maps iterate in insertion order, which is about event-time order: each trim stops at the
    // first entry still needed, so it costs what it removes, not the size of the state. An entry
    // inserted out of order waits for those before it; no decision depends on it being gone.
    const emissionHorizon = now - this.rules.clickWindowMs - this.latenessMs;
    this.emissions.trimBefore(emissionHorizon);
    const clickHorizon = emissionHorizon - this.rules.clickWindowMs;
    trimOldest(this.seenClicks, (ts) => ts < clickHorizon);
    trimOldest(this.firstClicks, (first) => first.ts < clickHorizon);
    const hourHorizon = Math.floor((now - this.latenessMs) / HOUR) - 1;
    trimOldest(this.userHour, (_, key) => Number(key.slice(key.lastIndexOf('\u0000') + 1)) < hourHorizon);
  }

  /** Decides every waiting click now (end of input): their emissions are unknown. */
  flush(): void {
    this.expirePending(Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY);
  }

  /** The deltas accumulated since the last drain, all-zero ones left out. */
  drain(): MinuteDelta[] {
    const builder = new RunColumnsBuilder();
    this.drainInto(builder);
    const c = builder.take();
    return Array.from({ length: c.length }, (_, i) => rowAt(c, i));
  }

  /** Appends the deltas accumulated since the last drain (all-zero ones left out) to `into`, and forgets them. */
  drainInto(into: RunColumnsBuilder): void {
    this.deltas.drainInto(into);
  }

  /** Decides waiting clicks older than `before` (by ts), at most `limit` of them, oldest first. */
  private expirePending(before: number, limit: number): void {
    if (this.pendingCount === 0 || (before <= this.oldestPending && limit === Number.POSITIVE_INFINITY)) return;
    const expired: Click[] = [];
    let oldest = Number.POSITIVE_INFINITY;
    for (const [emissionId, waiting] of this.pending) {
      const keep = waiting.filter((c) => c.ts >= before);
      for (const c of keep) if (c.ts < oldest) oldest = c.ts;
      for (const c of waiting) if (c.ts < before) expired.push(c);
      if (keep.length === 0) this.pending.delete(emissionId);
      else this.pending.set(emissionId, keep);
    }
    expired.sort(compareTsThenId);
    const decided = expired.slice(0, limit);
    // Clicks past the limit stay waiting.
    for (const c of expired.slice(limit)) {
      if (c.ts < oldest) oldest = c.ts;
      const waiting = this.pending.get(c.emissionId) ?? [];
      waiting.push(c);
      this.pending.set(c.emissionId, waiting);
    }
    this.oldestPending = oldest;
    this.pendingCount -= decided.length;
    for (const c of decided) this.add(c.ts, c.offerId, NO_PLACEMENT, 'invalidClicks', 0);
  }

  /** A click whose emission is known: invalid, duplicate, fraud or billable, in the contract's order. */
  private joined(c: Click, at: number): void {
    const emissionId = c.emissionId;
    const em = { ts: this.emissions.tsAt(at), placement: this.emissions.placementAt(at) };
    const cost = this.emissions.offerCost(at, c.offerId);
    if (cost === undefined || c.ts < em.ts || c.ts > em.ts + this.rules.clickWindowMs) {
      this.add(c.ts, c.offerId, em.placement, 'invalidClicks', 0);
      return;
    }
    const key = `${emissionId}\u0000${c.offerId}`;
    const first = this.firstClicks.get(key);
    if (first !== undefined && compareTsThenId(first, c) <= 0) {
      this.add(c.ts, c.offerId, em.placement, 'duplicateClicks', 0);
      return;
    }
    if (first !== undefined) {
      // The counted click was not the earliest after all: it becomes a duplicate.
      this.add(first.ts, c.offerId, em.placement, first.verdict, -cost, -1);
      this.add(first.ts, c.offerId, em.placement, 'duplicateClicks', 0);
      if (first.userHourKey !== undefined) {
        this.userHour.set(first.userHourKey, (this.userHour.get(first.userHourKey) ?? 1) - 1);
      }
    }
    if (this.blocked(c.ip)) {
      this.firstClicks.set(key, { ts: c.ts, id: c.id, verdict: 'fraudClicks', userHourKey: undefined });
      this.add(c.ts, c.offerId, em.placement, 'fraudClicks', cost);
      return;
    }
    const userHourKey = `${c.userId}\u0000${c.offerId}\u0000${Math.floor(c.ts / HOUR)}`;
    const n = (this.userHour.get(userHourKey) ?? 0) + 1;
    this.userHour.set(userHourKey, n);
    const verdict = n > this.rules.maxClicksPerUserOfferHour ? 'fraudClicks' : 'clicks';
    this.firstClicks.set(key, { ts: c.ts, id: c.id, verdict, userHourKey });
    this.add(c.ts, c.offerId, em.placement, verdict, cost);
  }

  private add(ts: number, offerId: string, placement: string, column: DeltaColumn, cost: Money, n = 1): void {
    const bucketStart = ts - (((ts % MINUTE) + MINUTE) % MINUTE);
    this.deltas.add(bucketStart, offerId, placement, column, cost, n);
  }
}
