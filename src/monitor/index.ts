/** Monitor: the pipeline's Prometheus metrics, the overview and the dashboard's read API. */
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
