/** Store: relational state in SQLite (embedded) or PostgreSQL (distributed): the schema registry's, the scheduler's, the alert outbox, and the database openers the statistics store shares. */
export { openPostgresSchemaStore } from './postgres-schema-store.ts';
export { openSqliteSchemaStore } from './sqlite-schema-store.ts';
export type { AlertRecord, AlertStore, AnomalyScore, NewAlert } from './alert-store.ts';
export { openPostgresSchedulerStore, openSqliteSchedulerStore } from './scheduler-store.ts';
export type {
  ClaimedTask,
  DagPlanView,
  DagRunRecord,
  DagRunState,
  FinishTry,
  LateArrivalClears,
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
export { inTransaction, openPostgresPool } from './postgres-database.ts';
export { openSqliteDatabase } from './sqlite-database.ts';
export { busyToRetriable } from './sql-runner.ts';
