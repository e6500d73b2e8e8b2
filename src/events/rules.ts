/**
 * The parameters of the statistics contract (DESIGN.md, "Statistics"), shared by every engine
 * that computes statistics: one definition, several engines.
 */
import { BlockList, isIPv6 } from 'node:net';

/** Rules that decide which clicks are billable. */
export interface StatsRules {
  /** A click is valid from its emission's ts to that ts plus this many ms, both ends inclusive. */
  clickWindowMs: number;
  /** More billable clicks than this by one userId on one offerId in one UTC hour are fraud. */
  maxClicksPerUserOfferHour: number;
  /** Clicks from these IPs or CIDR ranges are fraud. */
  ipBlocklist: string[];
}

/** The contract's defaults: 1 hour click window, 10 clicks per user, offer and hour, no blocklist. */
export const DEFAULT_STATS_RULES: Readonly<StatsRules> = Object.freeze({
  clickWindowMs: 3_600_000,
  maxClicksPerUserOfferHour: 10,
  ipBlocklist: [],
});

/**
 * The contract's order of clicks: by ts, then by id (ids compare by UTF-16 code unit, which is
 * byte order for ASCII). Decides which repeat click is billable and which clicks exceed the
 * per-user hourly allowance.
 */
export function compareTsThenId(a: { ts: number; id: string }, b: { ts: number; id: string }): number {
  if (a.ts !== b.ts) return a.ts - b.ts;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** A predicate for the IP blocklist rule: addresses and CIDR ranges, IPv4 and IPv6. */
export function ipBlocklistMatcher(entries: readonly string[]): (ip: string) => boolean {
  if (entries.length === 0) return () => false;
  const list = new BlockList();
  for (const entry of entries) {
    const [address = '', prefix] = entry.split('/');
    const family = isIPv6(address) ? 'ipv6' : 'ipv4';
    if (prefix === undefined) list.addAddress(address, family);
    else list.addSubnet(address, Number(prefix), family);
  }
  return (ip) => list.check(ip, isIPv6(ip) ? 'ipv6' : 'ipv4');
}
