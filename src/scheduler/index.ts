/** Scheduler: DAGs, runs, retries, SLAs, backfill and clear-downstream; so far schedules and DAG definitions. */
export {
  type Dag,
  type DagDefinition,
  type DagTask,
  defineDag,
  downstreamOf,
  retryDelayOf,
  type TaskRunContext,
  type TaskDefinition,
} from './dag.ts';
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
