/** Batch layer: exact recalculation of an interval from the lake (DuckDB), and its safe write. */
export {
  type InputCheck,
  type InputCheckResult,
  type RecalculationRun,
  type RecalculationRunOptions,
  runRecalculation,
} from './job.ts';
export {
  checkInterval,
  type HourFileLister,
  lakeFiles,
  NO_PLACEMENT,
  openBatchDatabase,
  type Recalculation,
  type RecalculationFigures,
  type RecalculationOptions,
  recalculateInterval,
  recalculateIntoTable,
} from './recalculate.ts';
export { resultColumns, resultRows, resultTotals } from './result-table.ts';
export { safeWriteInterval, safeWriteResult, statsFileOf, writeStatsHours } from './safe-write.ts';
