/**
 * Deterministic traffic generator: realistic emissions and clicks with every fault of the
 * contract at a configurable rate, in arrival order, together with the events the oracle counts.
 * Shares no code with the production engines.
 */
import type { OracleClick, OracleEmission, OracleEvent, OracleRules } from './oracle.ts';
import { SeededRandom, ZipfSampler } from './random.ts';

/** Rate of each fault, as a probability per emission, click or line (see each field). */
export interface FaultRates {
  /** Per event: the event is delivered a second time (same id) up to 10 minutes later. */
  duplicate: number;
  /** Per click: the user clicks the same (emissionId, offerId) again with a new id. */
  repeatClick: number;
  /** Per emission with clicks: the emission arrives after its clicks. */
  clickBeforeEmission: number;
  /** Per event: it arrives 1 to 6 hours after its event time. */
  late: number;
  /** Per click: its ts lies before its emission or after the click window. */
  outsideWindow: number;
  /** Per click: it names an offer its emission does not list. */
  wrongOffer: number;
  /** Per click: it names an emission that does not exist. */
  unknownEmission: number;
  /** Per emission: a bot clicks this emission's first offer 11-20 times within one hour, on fresh emissions. */
  fraudBurst: number;
  /** Per click: it comes from a blocklisted address. */
  blockedIp: number;
  /** Per emission: it is moved to just before a UTC midnight and clicked just after it. */
  acrossMidnight: number;
  /** Per line: a malformed line (bad JSON, bad decimal, bad timestamp, missing or unknown field) is sent too. */
  malformed: number;
}

/** The faults' names, in a stable order. */
export const FAULT_NAMES: readonly (keyof FaultRates)[] = [
  'duplicate',
  'repeatClick',
  'clickBeforeEmission',
  'late',
  'outsideWindow',
  'wrongOffer',
  'unknownEmission',
  'fraudBurst',
  'blockedIp',
  'acrossMidnight',
  'malformed',
];

/** Default fault rates: every fault present, the clean path still dominant. */
export const DEFAULT_FAULTS: Readonly<FaultRates> = Object.freeze({
  duplicate: 0.02,
  repeatClick: 0.03,
  clickBeforeEmission: 0.01,
  late: 0.01,
  outsideWindow: 0.01,
  wrongOffer: 0.005,
  unknownEmission: 0.005,
  fraudBurst: 0.0005,
  blockedIp: 0.005,
  acrossMidnight: 0.001,
  malformed: 0.001,
});

/** All faults off: clean traffic. */
export const NO_FAULTS: Readonly<FaultRates> = Object.freeze(
  Object.fromEntries(FAULT_NAMES.map((n) => [n, 0])) as unknown as FaultRates,
);

/** Everything that shapes a simulation. */
export interface SimulationOptions {
  seed: number;
  /** Emissions of ordinary traffic (fraud bursts add their own). */
  emissions: number;
  /** Event time of the first emission, UTC epoch ms. */
  start: number;
  /** Emissions are spread evenly over this many ms of event time. */
  durationMs: number;
  /** Size of the offer catalogue (zipf-distributed popularity). */
  offers: number;
  /** Number of placements (zipf-distributed popularity). */
  placements: number;
  /** Number of data centers producing events. */
  dataCenters: number;
  /** Zipf exponent of offer and placement popularity. */
  zipfExponent: number;
  /** Probability that one displayed offer is clicked (first position; later positions less). */
  ctr: number;
  /** Size of the user population. */
  users: number;
  /** The contract's parameters; the blocklist is also where blocked clicks come from. */
  rules: OracleRules;
  faults: FaultRates;
  /**
   * An outage to detect: no click of an emission on `placement` with a click time in [from, to)
   * is sent (as if that placement's click tracking was down); the expected statistics are of
   * what was sent.
   */
  clickOutage?: { placement: string; from: number; to: number };
}

/** Defaults: a day of traffic from 2026-11-21 00:00 UTC with every fault on. */
export const DEFAULT_SIMULATION: Readonly<SimulationOptions> = Object.freeze({
  seed: 1,
  emissions: 10_000,
  start: Date.UTC(2026, 10, 21),
  durationMs: 86_400_000,
  offers: 2_000,
  placements: 24,
  dataCenters: 3,
  zipfExponent: 1.1,
  ctr: 0.05,
  users: 200_000,
  rules: {
    clickWindowMs: 3_600_000,
    maxClicksPerUserOfferHour: 10,
    ipBlocklist: ['198.51.100.0/24', '2001:db8:bad::/48'],
  },
  faults: DEFAULT_FAULTS,
});

/** What the simulation produced, counted. */
export interface SimulationCounts {
  lines: number;
  emissions: number;
  clicks: number;
  /** Lines that are redeliveries of an event already sent. */
  redeliveries: number;
  /** Lines that must be rejected. */
  malformed: number;
  /** How often each fault was injected. */
  faults: Record<keyof FaultRates, number>;
}

/** A simulation: the lines in arrival order and, for the oracle, the valid events among them. */
export interface Simulation {
  lines: string[];
  events: OracleEvent[];
  counts: SimulationCounts;
}

/** Reports progress of long work: `done` of `total` units of `phase`. */
export type ProgressCallback = (phase: string, done: number, total: number) => void;

interface Pending {
  arrival: number;
  seq: number;
  line: string;
  event: OracleEvent | undefined;
}

const PLACEMENT_NAMES = [
  'home-top',
  'search-top',
  'listing-side',
  'product-bottom',
  'home-carousel',
  'search-bottom',
  'cart-upsell',
  'article-inline',
  'checkout-cross',
  'mobile-feed',
];

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

function micros(n: bigint): string {
  const units = n / 1_000_000n;
  const frac = (n % 1_000_000n).toString().padStart(6, '0').replace(/0+$/, '');
  return frac === '' ? units.toString() : `${units}.${frac}`;
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** RFC 3339 with a numeric zone offset: the same instant written as local time. */
function withOffset(ms: number, offsetMinutes: number): string {
  const local = new Date(ms + offsetMinutes * MINUTE).toISOString().slice(0, 23);
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  return `${local}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/** Generates a simulation. Same options, same output, byte for byte. */
export function simulate(options: SimulationOptions, onProgress?: ProgressCallback): Simulation {
  const o = options;
  const rng = new SeededRandom(o.seed);
  const offerRank = new ZipfSampler(o.offers, o.zipfExponent);
  const placementRank = new ZipfSampler(o.placements, o.zipfExponent);
  const f = o.faults;
  const window = o.rules.clickWindowMs;
  const pending: Pending[] = [];
  const faults = Object.fromEntries(FAULT_NAMES.map((n) => [n, 0])) as Record<keyof FaultRates, number>;
  let seq = 0;
  let emissionCount = 0;
  let clickCount = 0;
  let redeliveries = 0;
  let botCount = 0;

  const placementName = (rank: number): string => PLACEMENT_NAMES[rank] ?? `placement-${rank}`;
  const offerName = (rank: number): string => `of-${rank}`;
  const basePrice = (rank: number): bigint => 50_000n + BigInt((rank * 7919) % 1_950_000);
  const dcName = (): string => `dc${1 + rng.int(o.dataCenters)}`;
  const ipOf = (user: number): string =>
    user % 17 === 0
      ? `2001:db8:${((user >> 16) & 0xffff).toString(16)}:${(user & 0xffff).toString(16)}::1`
      : `100.${64 + ((user >> 16) & 63)}.${(user >> 8) & 255}.${user & 255}`;
  const blockedIp = (): string => {
    const range = o.rules.ipBlocklist.find((r) => r.includes('.') && r.endsWith('/24'));
    if (range === undefined) return `198.51.100.${rng.int(256)}`;
    return `${range.split('.').slice(0, 3).join('.')}.${rng.int(256)}`;
  };
  const wireTs = (ms: number): string | number => {
    const r = rng.float();
    if (r < 0.9) return new Date(ms).toISOString();
    if (r < 0.95) return ms;
    return withOffset(ms, rng.pick([60, 120, -300, 330, -480]));
  };
  const transport = (): number => Math.round(rng.exponential(300));
  const lateBy = (): number => {
    if (!rng.chance(f.late)) return 0;
    faults.late++;
    return HOUR + rng.int(5 * HOUR);
  };

  const send = (arrival: number, wire: Record<string, unknown>, event: OracleEvent): void => {
    const line = JSON.stringify(wire);
    pending.push({ arrival, seq: seq++, line, event });
    if (rng.chance(f.duplicate)) {
      faults.duplicate++;
      redeliveries++;
      pending.push({ arrival: arrival + 1000 + rng.int(10 * MINUTE), seq: seq++, line, event });
    }
  };

  const makeEmission = (ts: number, placement: string, offers: { offerId: string; clickCost: string }[]) => {
    const id = `em-${o.seed}-${emissionCount++}`;
    const event: OracleEmission = { type: 'emission', id, ts, placement, offers };
    const dc = dcName();
    const wire = { type: 'emission', id, ts: wireTs(ts), placement, dc, offers };
    return { event, wire, dc };
  };

  const makeClick = (
    ts: number,
    emissionId: string,
    offerId: string,
    user: string,
    ip: string,
    dc: string,
  ): { event: OracleClick; wire: Record<string, unknown> } => {
    const id = `cl-${o.seed}-${clickCount++}`;
    const event: OracleClick = { type: 'click', id, ts, emissionId, offerId, userId: user, ip };
    const wire = { type: 'click', id, ts: wireTs(ts), emissionId, offerId, userId: user, ip, dc };
    return { event, wire };
  };

  const nextMidnightAfter = (ms: number): number => (Math.floor(ms / DAY) + 1) * DAY;
  const progressEvery = Math.max(1, Math.floor(o.emissions / 200));

  for (let i = 0; i < o.emissions; i++) {
    if (onProgress !== undefined && i % progressEvery === 0) onProgress('generate', i, o.emissions);
    let ts = o.start + Math.floor(((i + rng.float()) * o.durationMs) / o.emissions);
    const acrossMidnight = rng.chance(f.acrossMidnight);
    let midnight = 0;
    if (acrossMidnight) {
      faults.acrossMidnight++;
      midnight = nextMidnightAfter(ts);
      ts = midnight - 1000 - rng.int(2 * MINUTE);
    }
    const placement = placementName(placementRank.sample(rng));
    const nOffers = 1 + rng.int(10);
    const listed = new Set<string>();
    const offers: { offerId: string; clickCost: string }[] = [];
    for (let attempt = 0; offers.length < nOffers && attempt < nOffers * 20; attempt++) {
      const rank = offerRank.sample(rng);
      const offerId = offerName(rank);
      if (listed.has(offerId)) continue;
      listed.add(offerId);
      const price = (basePrice(rank) * BigInt(80 + rng.int(41))) / 100n + BigInt(rng.int(1000));
      offers.push({ offerId, clickCost: micros(price) });
    }
    const em = makeEmission(ts, placement, offers);
    let emissionArrival = ts + transport() + lateBy();

    const clicks: { arrival: number; event: OracleClick; wire: Record<string, unknown> }[] = [];
    const clickDc = (): string => (rng.chance(0.9) ? em.dc : dcName());
    offers.forEach((offer, position) => {
      const forced = acrossMidnight && position === 0;
      if (!forced && !rng.chance(o.ctr / (1 + 0.3 * position))) return;
      const userNo = rng.int(o.users);
      let ip = ipOf(userNo);
      let delay = forced
        ? midnight - ts + rng.int(10 * MINUTE)
        : Math.min(Math.round(rng.logNormal(20_000, 1.5)), window);
      let emissionId = em.event.id;
      let offerId = offer.offerId;
      if (rng.chance(f.outsideWindow)) {
        faults.outsideWindow++;
        delay = rng.chance(0.2) ? -(1 + rng.int(MINUTE)) : window + 1 + rng.int(30 * MINUTE);
      }
      if (rng.chance(f.wrongOffer)) {
        faults.wrongOffer++;
        do offerId = offerName(offerRank.sample(rng));
        while (listed.has(offerId));
      }
      if (rng.chance(f.unknownEmission)) {
        faults.unknownEmission++;
        emissionId = `em-${o.seed}-missing-${faults.unknownEmission}`;
      }
      if (rng.chance(f.blockedIp)) {
        faults.blockedIp++;
        ip = blockedIp();
      }
      const user = `u-${userNo}`;
      const clickTs = ts + delay;
      const c = makeClick(clickTs, emissionId, offerId, user, ip, clickDc());
      clicks.push({ arrival: clickTs + transport() + lateBy(), ...c });
      if (rng.chance(f.repeatClick)) {
        faults.repeatClick++;
        const againTs = clickTs + 100 + rng.int(5 * MINUTE);
        const again = makeClick(againTs, emissionId, offerId, user, ip, clickDc());
        clicks.push({ arrival: againTs + transport() + lateBy(), ...again });
      }
    });
    if (clicks.length > 0 && rng.chance(f.clickBeforeEmission)) {
      faults.clickBeforeEmission++;
      emissionArrival = Math.max(emissionArrival, ...clicks.map((c) => c.arrival)) + 1000 + rng.int(30_000);
    }
    send(emissionArrival, em.wire, em.event);
    const out = o.clickOutage;
    for (const c of clicks) {
      if (out !== undefined && placement === out.placement && c.event.ts >= out.from && c.event.ts < out.to) continue;
      send(c.arrival, c.wire, c.event);
    }

    const first = offers[0];
    if (first !== undefined && rng.chance(f.fraudBurst)) {
      faults.fraudBurst++;
      const bot = `bot-${o.seed}-${botCount++}`;
      const botIp = `100.127.${botCount & 255}.${(botCount >> 8) & 255}`;
      const hourStart = Math.floor(ts / HOUR) * HOUR;
      const k = 11 + rng.int(10);
      for (let j = 0; j < k; j++) {
        const bts = hourStart + rng.int(HOUR - 2 * MINUTE);
        const burst = makeEmission(bts, placement, [first]);
        send(bts + transport(), burst.wire, burst.event);
        const bclickTs = bts + 1000 + rng.int(MINUTE);
        const c = makeClick(bclickTs, burst.event.id, first.offerId, bot, botIp, burst.dc);
        send(bclickTs + transport(), c.wire, c.event);
      }
    }
  }
  onProgress?.('generate', o.emissions, o.emissions);

  if (f.malformed > 0) {
    const valid = pending.length;
    for (let i = 0; i < valid; i++) {
      if (!rng.chance(f.malformed)) continue;
      const near = pending[i] as Pending;
      faults.malformed++;
      pending.push({
        arrival: near.arrival + 1,
        seq: seq++,
        line: malformedLine(rng, near.line),
        event: undefined,
      });
    }
  }

  pending.sort((a, b) => a.arrival - b.arrival || a.seq - b.seq);
  const lines = new Array<string>(pending.length);
  const events: OracleEvent[] = [];
  pending.forEach((p, i) => {
    lines[i] = p.line;
    if (p.event !== undefined) events.push(p.event);
  });
  return {
    lines,
    events,
    counts: {
      lines: lines.length,
      emissions: emissionCount,
      clicks: clickCount,
      redeliveries,
      malformed: faults.malformed,
      faults,
    },
  };
}

/** A line that the contract must reject, derived from a real one. */
function malformedLine(rng: SeededRandom, near: string): string {
  const base = JSON.parse(near) as Record<string, unknown>;
  switch (rng.int(8)) {
    case 0:
      return near.slice(0, Math.max(1, Math.floor(near.length / 2)));
    case 1:
      return JSON.stringify({ ...base, ts: 'yesterday' });
    case 2: {
      const { id: _id, ...rest } = base;
      return JSON.stringify(rest);
    }
    case 3:
      return JSON.stringify({ ...base, type: 'impression' });
    case 4:
      return JSON.stringify({ ...base, extra: true });
    case 5:
      return base.type === 'click'
        ? JSON.stringify({ ...base, ip: '999.1.1.1' })
        : JSON.stringify({ ...base, offers: [{ offerId: 'of-1', clickCost: '1e3' }] });
    case 6:
      return base.type === 'click'
        ? JSON.stringify({ ...base, ts: 1.5 })
        : JSON.stringify({ ...base, offers: [{ offerId: 'of-1', clickCost: '0.0000001' }] });
    default:
      return JSON.stringify([base]);
  }
}
