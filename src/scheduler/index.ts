/** Scheduler: DAGs, runs, retries, SLAs, backfill and clear-downstream; so far its schedules. */
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
