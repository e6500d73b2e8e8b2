/** Stats: the serving store of statistics (append-only runs, compaction, batch generations) in SQLite or PostgreSQL. */
export { openPostgresStatsStore } from './postgres.ts';
export { openSqliteStatsStore } from './sqlite.ts';
export { addColumns, zeroColumns } from './deltas.ts';
export { RunColumnsBuilder, rowAt, type RunColumns } from './run-rows.ts';
export { STATS_COLUMNS } from './types.ts';
export type {
  BatchInterval,
  BatchWriteOptions,
  BatchRows,
  Discrepancy,
  Granularity,
  SeriesPoint,
  SeriesQuery,
  MinuteStats,
  MinuteStatsColumns,
  SinkOffset,
  StatsColumn,
  StatsColumns,
  StatsPage,
  StatsQuery,
  StatsResultRow,
  StatsStore,
} from './types.ts';
export { openStatsThreadPool, openStatsWriterThread, type StoreSpec } from './writer-thread.ts';
export { COMPACT_AT_RUNS } from './model.ts';
