/** Scheduler: DAGs, runs, retries, sensors, pools, SLAs, alerts, backfill, clear-downstream and late-data reruns. */
export {
  type AlertDispatcherOptions,
  AlertDispatcher,
  alertPayload,
  type AlertSink,
  logAlertSink,
  webhookAlertSink,
  type WebhookOptions,
} from './alerts.ts';
export {
  type Dag,
  type DagDefinition,
  type DagTask,
  defineDag,
  downstreamOf,
  type PokeResult,
  retryDelayOf,
  type TaskRunContext,
  type TaskDefinition,
} from './dag.ts';
export {
  lakeLateData,
  PIPELINE_POOLS,
  type PipelineDagOptions,
  pipelineDags,
  type RecalculationChecks,
} from './builtin.ts';
export { planDagRuns } from './planner.ts';
export { upstreamRunsSucceeded } from './sensors.ts';
export {
  createDagRun,
  type LateData,
  logicalDatesWithin,
  ownerProcessGone,
  runIdOf,
  Scheduler,
  type SchedulerOptions,
  taskInstancesOf,
} from './scheduler.ts';
export {
  type DataInterval,
  dataIntervalOf,
  dueLogicalDates,
  isTick,
  logicalDatesIn,
  nextTickAfter,
  parseSchedule,
  type Schedule,
} from './schedule.ts';
export { parseDateField, runJson, schedulerRoutes, type SchedulerRoutesOptions, taskJson } from './routes.ts';
