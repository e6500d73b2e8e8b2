/**
 * The oracle: a deliberately plain reference implementation of the statistics contract in
 * DESIGN.md. It shares no code with the production engines (no imports from src/), favours
 * obviousness over speed, and is the source of truth that tests compare every engine with.
 */
import { BlockList, isIPv6 } from 'node:net';

/** An emission as the oracle sees it (money as a decimal string). */
export interface OracleEmission {
  type: 'emission';
  id: string;
  ts: number;
  placement: string;
  offers: { offerId: string; clickCost: string }[];
}

/** A click as the oracle sees it. */
export interface OracleClick {
  type: 'click';
  id: string;
  ts: number;
  emissionId: string;
  offerId: string;
  userId: string;
  ip: string;
}

/** Any event the oracle counts. */
export type OracleEvent = OracleEmission | OracleClick;

/** The contract's parameters. */
export interface OracleRules {
  clickWindowMs: number;
  maxClicksPerUserOfferHour: number;
  ipBlocklist: string[];
}

/** Where one click landed. */
export type ClickVerdict = 'billable' | 'duplicate' | 'fraud' | 'invalid';

/** One row of expected statistics. */
export interface ExpectedRow {
  /** Bucket start, RFC 3339 UTC. */
  bucket: string;
  offerId: string;
  placement: string;
  emissions: number;
  clicks: number;
  clickCost: string;
  duplicateClicks: number;
  fraudClicks: number;
  fraudCost: string;
  invalidClicks: number;
}

/** Expected statistics at every granularity. */
export interface ExpectedStatistics {
  minute: ExpectedRow[];
  hour: ExpectedRow[];
  day: ExpectedRow[];
}

/** Placement of invalid clicks whose emission is unknown. */
export const NO_PLACEMENT = '(none)';

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

function toMicros(decimal: string): bigint {
  const [units = '0', frac = ''] = decimal.split('.');
  return BigInt(units) * 1_000_000n + BigInt(frac.padEnd(6, '0'));
}

function fromMicros(micros: bigint): string {
  const units = micros / 1_000_000n;
  const frac = (micros % 1_000_000n).toString().padStart(6, '0').replace(/0+$/, '');
  return frac === '' ? units.toString() : `${units}.${frac}`;
}

function byTsThenId(a: { ts: number; id: string }, b: { ts: number; id: string }): number {
  if (a.ts !== b.ts) return a.ts - b.ts;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function blocklistOf(entries: string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [address = '', prefix] = entry.split('/');
    const family = isIPv6(address) ? 'ipv6' : 'ipv4';
    if (prefix === undefined) list.addAddress(address, family);
    else list.addSubnet(address, Number(prefix), family);
  }
  return list;
}

/** A counted fact: one amount added to one column of the row at (ts, offerId, placement). */
interface Contribution {
  ts: number;
  offerId: string;
  placement: string;
  column: 'emissions' | 'clicks' | 'duplicateClicks' | 'fraudClicks' | 'invalidClicks';
  cost: bigint;
}

/** Classifies every distinct click and returns the verdicts with their facts. */
export function classifyClicks(
  events: Iterable<OracleEvent>,
  rules: OracleRules,
): { verdicts: Map<string, ClickVerdict>; contributions: Contribution[] } {
  // Rule: a redelivered event (same id) counts once. Keep the first copy of each id.
  const emissions = new Map<string, OracleEmission>();
  const clicks = new Map<string, OracleClick>();
  for (const e of events) {
    if (e.type === 'emission' && !emissions.has(e.id)) emissions.set(e.id, e);
    if (e.type === 'click' && !clicks.has(e.id)) clicks.set(e.id, e);
  }

  const contributions: Contribution[] = [];
  const verdicts = new Map<string, ClickVerdict>();

  // Rule: emissions count once per distinct emission id and listed offer, at the emission's ts.
  for (const em of emissions.values()) {
    for (const offer of em.offers) {
      contributions.push({
        ts: em.ts,
        offerId: offer.offerId,
        placement: em.placement,
        column: 'emissions',
        cost: 0n,
      });
    }
  }

  // Rule 1: invalid clicks (unknown emission, offer not listed, ts outside the inclusive window).
  const valid: { click: OracleClick; placement: string; cost: bigint }[] = [];
  for (const c of clicks.values()) {
    const em = emissions.get(c.emissionId);
    const offer = em?.offers.find((o) => o.offerId === c.offerId);
    const inWindow = em !== undefined && c.ts >= em.ts && c.ts <= em.ts + rules.clickWindowMs;
    if (em === undefined || offer === undefined || !inWindow) {
      verdicts.set(c.id, 'invalid');
      const placement = em === undefined ? NO_PLACEMENT : em.placement;
      contributions.push({
        ts: c.ts,
        offerId: c.offerId,
        placement,
        column: 'invalidClicks',
        cost: 0n,
      });
    } else {
      valid.push({ click: c, placement: em.placement, cost: toMicros(offer.clickCost) });
    }
  }

  // Rule 2: among valid clicks of one (emissionId, offerId) only the earliest (ts, then id) is billable.
  const byEmissionOffer = new Map<string, typeof valid>();
  for (const v of valid) {
    const key = `${v.click.emissionId}\u0000${v.click.offerId}`;
    const group = byEmissionOffer.get(key) ?? [];
    group.push(v);
    byEmissionOffer.set(key, group);
  }
  const firstClicks: typeof valid = [];
  for (const group of byEmissionOffer.values()) {
    group.sort((a, b) => byTsThenId(a.click, b.click));
    group.forEach((v, i) => {
      if (i === 0) {
        firstClicks.push(v);
      } else {
        verdicts.set(v.click.id, 'duplicate');
        contributions.push({
          ts: v.click.ts,
          offerId: v.click.offerId,
          placement: v.placement,
          column: 'duplicateClicks',
          cost: 0n,
        });
      }
    });
  }

  // Rule 3a: clicks from blocklisted IPs or CIDRs are fraud.
  const blocklist = blocklistOf(rules.ipBlocklist);
  const notBlocked: typeof valid = [];
  for (const v of firstClicks) {
    const family = isIPv6(v.click.ip) ? 'ipv6' : 'ipv4';
    if (blocklist.check(v.click.ip, family)) {
      verdicts.set(v.click.id, 'fraud');
      contributions.push({
        ts: v.click.ts,
        offerId: v.click.offerId,
        placement: v.placement,
        column: 'fraudClicks',
        cost: v.cost,
      });
    } else {
      notBlocked.push(v);
    }
  }

  // Rule 3b: more than N billable clicks by one user on one offer in one UTC hour: those after the Nth are fraud.
  const byUserOfferHour = new Map<string, typeof valid>();
  for (const v of notBlocked) {
    const key = `${v.click.userId}\u0000${v.click.offerId}\u0000${Math.floor(v.click.ts / HOUR)}`;
    const group = byUserOfferHour.get(key) ?? [];
    group.push(v);
    byUserOfferHour.set(key, group);
  }
  for (const group of byUserOfferHour.values()) {
    group.sort((a, b) => byTsThenId(a.click, b.click));
    group.forEach((v, i) => {
      const fraud = i >= rules.maxClicksPerUserOfferHour;
      verdicts.set(v.click.id, fraud ? 'fraud' : 'billable');
      contributions.push({
        ts: v.click.ts,
        offerId: v.click.offerId,
        placement: v.placement,
        column: fraud ? 'fraudClicks' : 'clicks',
        cost: v.cost,
      });
    });
  }
  return { verdicts, contributions };
}

function aggregate(contributions: Contribution[], bucketMs: number): ExpectedRow[] {
  const rows = new Map<string, ExpectedRow & { costMicros: bigint; fraudMicros: bigint }>();
  for (const c of contributions) {
    const start = Math.floor(c.ts / bucketMs) * bucketMs;
    const key = `${start}\u0000${c.offerId}\u0000${c.placement}`;
    let row = rows.get(key);
    if (row === undefined) {
      row = {
        bucket: new Date(start).toISOString(),
        offerId: c.offerId,
        placement: c.placement,
        emissions: 0,
        clicks: 0,
        clickCost: '0',
        duplicateClicks: 0,
        fraudClicks: 0,
        fraudCost: '0',
        invalidClicks: 0,
        costMicros: 0n,
        fraudMicros: 0n,
      };
      rows.set(key, row);
    }
    row[c.column] += 1;
    if (c.column === 'clicks') row.costMicros += c.cost;
    if (c.column === 'fraudClicks') row.fraudMicros += c.cost;
  }
  const out: ExpectedRow[] = [];
  for (const { costMicros, fraudMicros, ...row } of rows.values()) {
    out.push({ ...row, clickCost: fromMicros(costMicros), fraudCost: fromMicros(fraudMicros) });
  }
  const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  out.sort((a, b) => cmp(a.bucket, b.bucket) || cmp(a.offerId, b.offerId) || cmp(a.placement, b.placement));
  return out;
}

/** Computes the exact expected statistics of a stream of events (in any order, with redeliveries). */
export function expectedStatistics(events: Iterable<OracleEvent>, rules: OracleRules): ExpectedStatistics {
  const { contributions } = classifyClicks(events, rules);
  return {
    minute: aggregate(contributions, MINUTE),
    hour: aggregate(contributions, HOUR),
    day: aggregate(contributions, DAY),
  };
}
