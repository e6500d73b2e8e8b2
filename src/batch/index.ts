/** Batch layer: exact recalculation of an interval from the lake (DuckDB), and its safe write. */
export { type RecalculationRun, type RecalculationRunOptions, runRecalculation } from './job.ts';
export {
  checkInterval,
  lakeFiles,
  NO_PLACEMENT,
  openBatchDatabase,
  type Recalculation,
  type RecalculationOptions,
  recalculateInterval,
} from './recalculate.ts';
export { safeWriteInterval, statsFileOf, writeStatsParquet } from './safe-write.ts';
