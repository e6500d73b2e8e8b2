import type { StatsRules } from '../events/index.ts';
import type { ReckonConfig } from './config.ts';

/** The statistics contract's parameters as configured. */
export function statsRulesOf(config: ReckonConfig): StatsRules {
  return {
    clickWindowMs: config.clickWindowMs,
    maxClicksPerUserOfferHour: config.fraudMaxClicksPerUserOfferHour,
    ipBlocklist: [...config.fraudIpBlocklist],
  };
}
