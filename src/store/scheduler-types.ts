/**
 * The scheduler's state as the store keeps it: DAG runs, task instances and their tries, SLA
 * misses and the late arrivals already acted on (the alert outbox is `alert-store.ts`). One implementation over two
 * SQL dialects (`scheduler-store.ts`); every state change is one transaction.
 */
import type { AlertRecord, AlertStore, NewAlert } from './alert-store.ts';

/** State of a DAG run (Airflow's names). */
export type DagRunState = 'queued' | 'running' | 'success' | 'failed';

/** State of a task instance (Airflow's names; `none` means not yet scheduled). */
export type TaskState =
  'none' | 'scheduled' | 'running' | 'up_for_retry' | 'up_for_reschedule' | 'success' | 'failed' | 'upstream_failed';

/** How a run came to be. */
export type RunType = 'scheduled' | 'manual' | 'backfill';

/** One run of a DAG for one logical date. */
export interface DagRunRecord {
  dagId: string;
  runId: string;
  logicalDate: number;
  runType: RunType;
  intervalStart: number;
  intervalEnd: number;
  state: DagRunState;
  /** At most this many runs of the DAG of the same run type are active at once. */
  maxActive: number;
  queuedAt: number;
  startedAt: number | null;
  endedAt: number | null;
  /** How often the run was cleared (rerun). */
  clearCount: number;
  /** Task ids waiting to be cleared once none of the run's tasks is running. */
  pendingClear: string[] | null;
}

/** One task of one DAG run. */
export interface TaskInstanceRecord {
  dagId: string;
  logicalDate: number;
  taskId: string;
  /** Position of the task in its DAG's dependency order. */
  taskOrder: number;
  state: TaskState;
  /** Tries started so far (sensor pokes that said "not yet" do not count). */
  tryNumber: number;
  /** The try after which a failure is final. */
  maxTries: number;
  retries: number;
  pool: string;
  slaMs: number | null;
  /** When an `up_for_retry` or `up_for_reschedule` instance may run again. */
  nextTryAt: number | null;
  /** A sensor's first poke, from which its timeout counts. */
  firstPokeAt: number | null;
  startedAt: number | null;
  endedAt: number | null;
  durationMs: number | null;
  /** The scheduler process running it (`host:pid:nonce`). */
  owner: string | null;
  heartbeatAt: number | null;
  error: string | null;
  /** What a waiting sensor said it waits for at its last poke (null once it is no longer waiting). */
  waitingFor: string | null;
}

/** A finished try of a task instance: the duration history. */
export interface TaskTryRecord {
  dagId: string;
  logicalDate: number;
  taskId: string;
  tryNumber: number;
  state: 'success' | 'failed';
  startedAt: number;
  endedAt: number;
  durationMs: number;
  owner: string;
  error: string | null;
}

/** A task instance to create with its run. */
export interface NewTaskInstance {
  taskId: string;
  taskOrder: number;
  retries: number;
  pool: string;
  slaMs: number | null;
}

/** A DAG run to create. */
export interface NewDagRun {
  dagId: string;
  runId: string;
  logicalDate: number;
  runType: RunType;
  intervalStart: number;
  intervalEnd: number;
  maxActive: number;
}

/** A change the planner makes to a run, applied only if the run is still in `from`. */
export interface RunChange {
  runId: string;
  from: DagRunState;
  state: DagRunState;
  startedAt?: number;
  endedAt?: number | null;
  /** Clear these tasks (reset them to `none`) and count the clear. */
  clear?: string[];
  /** Drop the run's pending clear (it was applied). */
  dropPendingClear?: boolean;
}

/** A change the planner makes to a task instance, applied only if it is still in `from`. */
export interface TaskChange {
  logicalDate: number;
  taskId: string;
  from: TaskState;
  state: TaskState;
  error?: string | null;
  endedAt?: number | null;
}

/** What the planner sees of one DAG: its active runs (and runs waiting for a clear) with their task instances. */
export interface DagPlanView {
  dagId: string;
  runs: DagRunRecord[];
  tasks: TaskInstanceRecord[];
  /** Runs of the DAG currently `running`, per run type. */
  activeByType: Partial<Record<RunType, number>>;
}

/** How a try ended. */
export type TryOutcome =
  | { state: 'success' }
  | { state: 'failed'; error: string }
  | { state: 'up_for_retry'; error: string; nextTryAt: number }
  /** A sensor that is not yet satisfied: poke again at `nextTryAt`; the try does not count. */
  | { state: 'up_for_reschedule'; nextTryAt: number; firstPokeAt: number; waitingFor?: string };

/** A try to finish: only the owner of its current try can. */
export interface FinishTry {
  dagId: string;
  logicalDate: number;
  taskId: string;
  tryNumber: number;
  owner: string;
  now: number;
  outcome: TryOutcome;
  /** Raised in the same transaction as the state change. */
  alerts?: NewAlert[];
}

/** A task instance handed to one scheduler to run. */
export interface ClaimedTask extends TaskInstanceRecord {
  runId: string;
  intervalStart: number;
  intervalEnd: number;
  clearCount: number;
}

/** Filter of run listings. */
export interface RunFilter {
  dagId?: string;
  states?: DagRunState[];
  runType?: RunType;
  /** Logical dates in [from, to). */
  from?: number;
  to?: number;
  limit?: number;
}

/** An SLA miss found by {@link SchedulerStore.recordSlaMisses}. */
export interface SlaMiss {
  dagId: string;
  logicalDate: number;
  taskId: string;
  deadline: number;
  state: TaskState;
}

/** Counts for `/metrics` and the dashboard, grouped in the database. */
export interface SchedulerSummary {
  runs: { dagId: string; state: DagRunState; count: number }[];
  tasks: { dagId: string; taskId: string; state: TaskState; count: number }[];
  tries: {
    dagId: string;
    taskId: string;
    state: 'success' | 'failed';
    count: number;
    seconds: number;
    lastSeconds: number;
  }[];
  slaMisses: { dagId: string; taskId: string; count: number }[];
  alerts: { kind: string; state: AlertRecord['state']; count: number }[];
}

/** A late arrival and the clears it asks for when it is new. */
export interface LateArrivalClears {
  key: string;
  hourStart: number;
  clears: { dagId: string; logicalDate: number; taskIds: readonly string[] }[];
}

/**
 * Relational state of the scheduler (SQLite or PostgreSQL), with the alert outbox in the same
 * database: a task's failure or SLA miss raises its alert in the transaction that records it.
 */
export interface SchedulerStore extends AlertStore {
  readonly dialect: 'sqlite' | 'postgres';
  /** Records a DAG's settings (on every scheduler start). */
  syncDag(dagId: string, maxActiveRuns: number, now: number): Promise<void>;
  /** Creates or resizes pools. */
  syncPools(pools: Readonly<Record<string, number>>): Promise<void>;
  /** Creates a run and its task instances; an existing run for the logical date is returned as it is. */
  createRun(
    run: NewDagRun,
    tasks: readonly NewTaskInstance[],
    now: number,
  ): Promise<{ created: boolean; run: DagRunRecord }>;
  getRun(dagId: string, runIdOrLogicalDate: string | number): Promise<DagRunRecord | undefined>;
  listRuns(filter?: RunFilter): Promise<DagRunRecord[]>;
  /** The latest logical date of a scheduled run of the DAG (where catch-up continues). */
  lastScheduledLogicalDate(dagId: string): Promise<number | undefined>;
  listTaskInstances(dagId: string, logicalDates?: readonly number[]): Promise<TaskInstanceRecord[]>;
  /** Finished tries, oldest first. */
  listTries(filter: {
    dagId?: string;
    taskId?: string;
    logicalDate?: number;
    limit?: number;
  }): Promise<TaskTryRecord[]>;
  /**
   * Under the DAG's lock (one planner per DAG at a time, also across processes): shows the DAG's
   * active runs and applies the changes `plan` returns, each only if its row is still in `from`.
   */
  planDag(dagId: string, plan: (view: DagPlanView) => { runs: RunChange[]; tasks: TaskChange[] }): Promise<void>;
  /**
   * Hands up to `limit` scheduled task instances to `owner`, oldest logical date first, never
   * more in a pool than its free slots; each claimed instance starts its next try. No instance is
   * ever handed to two owners (row locks; SKIP LOCKED on PostgreSQL).
   */
  claimTasks(
    owner: string,
    now: number,
    limit: number,
    filter?: { runIds?: readonly string[] },
  ): Promise<ClaimedTask[]>;
  /** Marks the owner's running instances alive. */
  heartbeat(owner: string, now: number): Promise<void>;
  /** Every running instance (for finding those whose scheduler died). */
  listRunning(): Promise<TaskInstanceRecord[]>;
  /** Ends a try, if `owner` still holds it; false when it does not (it was taken as dead). */
  finishTry(f: FinishTry): Promise<boolean>;
  /**
   * Records each task instance past its SLA (not succeeded by interval end + SLA, or succeeded
   * after it) once, raising `alertOf(miss)` in the same transaction; returns the new misses.
   */
  recordSlaMisses(now: number, alertOf: (miss: SlaMiss) => NewAlert): Promise<SlaMiss[]>;
  /** Asks for tasks of the runs with these logical dates to be cleared (rerun); returns the runs found. */
  requestClear(dagId: string, logicalDates: readonly number[], taskIds: readonly string[]): Promise<DagRunRecord[]>;
  /**
   * Records late arrivals and, for each not seen before, requests its clears in the same
   * transaction (so each arrival reruns what it made stale exactly once); returns the new keys.
   */
  markLateArrivals(arrivals: readonly LateArrivalClears[], now: number): Promise<string[]>;
  /** Counts of runs, task instances, tries (with seconds), SLA misses and alerts. */
  summary(): Promise<SchedulerSummary>;
  close(): Promise<void>;
}
