/** Monitor: the pipeline's Prometheus metrics, the overview, the business checks and the dashboard's read API. */
export {
  ANOMALY_THRESHOLD,
  anomalyCheck,
  type AnomalyScope,
  type BusinessCheckOptions,
  type BusinessChecks,
  businessChecks,
  type CheckedRun,
  discrepancyCheck,
  populationStabilityIndex,
  robustScore,
  SHIFT_THRESHOLD,
} from './checks.ts';
export { registerPipelineMetrics } from './metrics.ts';
export { type Overview, type OverviewPart, overviewSampler, pipelineOverview, RateSampler } from './overview.ts';
export { monitorRoutes, type MonitorRoutesOptions } from './routes.ts';
export {
  CONSUMER_GROUPS,
  consumerLags,
  deadLetterCounts,
  type MonitorSources,
  type PartitionLag,
  topicEnds,
  workerStatuses,
} from './sources.ts';
