/**
 * The parameters of the statistics contract (DESIGN.md, "Statistics"), shared by every engine
 * that computes statistics: one definition, several engines.
 */

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
