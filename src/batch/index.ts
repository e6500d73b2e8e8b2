/** Batch layer: exact recalculation of an interval from the lake (DuckDB), and its safe write. */
export {
  checkInterval,
  lakeFiles,
  NO_PLACEMENT,
  openBatchDatabase,
  type Recalculation,
  type RecalculationOptions,
  recalculateInterval,
} from './recalculate.ts';
