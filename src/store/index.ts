/** Store: relational state in SQLite (embedded) or PostgreSQL (distributed): the schema registry's, the statistics and the scheduler's. */
export { openPostgresSchemaStore } from './postgres-schema-store.ts';
export { openSqliteSchemaStore } from './sqlite-schema-store.ts';
export { openPostgresStatsStore } from './stats-postgres.ts';
export { openSqliteStatsStore } from './stats-sqlite.ts';
export { openPostgresSchedulerStore, openSqliteSchedulerStore } from './scheduler-store.ts';
export type {
  AlertRecord,
  AnomalyScore,
  ClaimedTask,
  DagPlanView,
  DagRunRecord,
  DagRunState,
  FinishTry,
  LateArrivalClears,
  NewAlert,
  NewDagRun,
  NewTaskInstance,
  RunChange,
  RunFilter,
  RunType,
  SchedulerStore,
  SchedulerSummary,
  SlaMiss,
  TaskChange,
  TaskInstanceRecord,
  TaskState,
  TaskTryRecord,
  TryOutcome,
} from './scheduler-types.ts';
export { addColumns, zeroColumns } from './stats-deltas.ts';
export { STATS_COLUMNS } from './stats-types.ts';
export type {
  BatchInterval,
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
} from './stats-types.ts';
