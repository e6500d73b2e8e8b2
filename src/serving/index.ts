/** Serving: the query API over the serving store. */
export { DEFAULT_LIMIT, MAX_LIMIT, statsRoutes, type StatsRoutesOptions } from './stats-routes.ts';
export { registerReconciliationMetrics } from './metrics.ts';
