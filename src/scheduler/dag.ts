/**
 * DAGs defined in TypeScript: tasks, their upstream tasks, and per-task retries, back-off,
 * timeouts, pools and SLAs. `defineDag` checks a definition once (unknown upstream tasks,
 * cycles, bad numbers) and returns it with its tasks in dependency order.
 */
import { ReckonError } from '../events/index.ts';
import { type DataInterval, parseSchedule, type Schedule } from './schedule.ts';

/** What a task's callable gets: the run's logical date and data interval, and its attempt. */
export interface TaskRunContext {
  dagId: string;
  taskId: string;
  /** The run's id (`scheduled__…`, `manual__…`, `backfill__…`). */
  runId: string;
  logicalDate: number;
  interval: DataInterval;
  /** 1 for the first try. */
  attempt: number;
  /** How often the run was cleared before this try (0 on its first pass). */
  clearCount: number;
  /** Aborted when the execution timeout passes or the scheduler stops. */
  signal: AbortSignal;
}

/**
 * What a sensor's poke found: `true`/`{ met: true }` once its condition holds; not yet, with
 * what it waits for in words (shown on the task instance, in `reckon dags runs` and the
 * dashboard); or `never`: the condition cannot become true (the task fails with that reason
 * instead of waiting for its timeout).
 */
export type PokeResult = boolean | { met: true } | { met: false; waitingFor: string } | { met: false; never: string };

/** One task of a DAG. */
export interface TaskDefinition {
  id: string;
  /** Tasks that must succeed first (for the same logical date). */
  upstream?: readonly string[];
  /** The work; a thrown error fails the attempt. Give either `run` or `poke`. */
  run?: (context: TaskRunContext) => Promise<void>;
  /**
   * A sensor: true once its condition holds. Poked every `pokeIntervalMs` (in reschedule mode:
   * it holds no slot between pokes, and a "not yet" is no try); it fails, without retries, when
   * the condition still does not hold `sensorTimeoutMs` after the first poke. A thrown error is
   * a failed try like any task's.
   */
  poke?: (context: TaskRunContext) => Promise<PokeResult>;
  /** Default 30 s. */
  pokeIntervalMs?: number;
  /** Default 6 hours. */
  sensorTimeoutMs?: number;
  /** Attempts after the first. Default 0. */
  retries?: number;
  /** Wait before retry n (1-based): `retryDelayMs * 2^(n-1)`, at most `maxRetryDelayMs`. Default 30 s. */
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  /** An attempt still running after this is aborted and fails. Default none. */
  executionTimeoutMs?: number;
  /** Pool whose slots limit how many of its tasks run at once. Default `default`. */
  pool?: string;
  /** An SLA miss when the task has not succeeded this long after its interval ends. */
  slaMs?: number;
}

/** A DAG as written. */
export interface DagDefinition {
  id: string;
  /** Cron expression or preset. */
  schedule: string;
  tasks: readonly TaskDefinition[];
  /** Runs of this DAG in flight at once, per run type (a backfill may set its own). Default 1. */
  maxActiveRuns?: number;
  /**
   * First logical date the scheduler creates runs for by itself (epoch ms or ISO date); without
   * it the DAG runs only when triggered or backfilled.
   */
  startDate?: number | string;
  /** After downtime, run every missed interval (true, default) or only the latest (false). */
  catchup?: boolean;
  /** Late data archived for an hour a finished run covered clears that run once (reruns it). */
  rerunOnLateData?: boolean;
  /** DAGs whose runs inside this DAG's intervals a backfill of it creates as well (it waits for them). */
  upstreamDags?: readonly string[];
}

/** A task with its defaults filled in. */
export interface DagTask extends TaskDefinition {
  upstream: readonly string[];
  retries: number;
  retryDelayMs: number;
  maxRetryDelayMs: number;
  pool: string;
  pokeIntervalMs: number;
  sensorTimeoutMs: number;
}

/** A checked DAG: its schedule parsed, its tasks in dependency order (upstream first). */
export interface Dag {
  id: string;
  schedule: Schedule;
  tasks: readonly DagTask[];
  maxActiveRuns: number;
  startDate: number | undefined;
  catchup: boolean;
  rerunOnLateData: boolean;
  upstreamDags: readonly string[];
}

const ID = /^[a-z0-9][a-z0-9_.-]{0,99}$/;

function bad(dagId: string, why: string): ReckonError {
  return new ReckonError('RECKON_SCHEDULER_BAD_DAG', `DAG ${JSON.stringify(dagId)}: ${why}`);
}

/** Checks a DAG definition and orders its tasks; a bad one throws `RECKON_SCHEDULER_BAD_DAG` saying what is wrong. */
export function defineDag(definition: DagDefinition): Dag {
  const { id } = definition;
  if (!ID.test(id)) throw bad(id, 'ids are lower-case letters, digits, _ . and -, at most 100');
  const schedule = parseSchedule(definition.schedule);
  const byId = new Map<string, TaskDefinition>();
  for (const t of definition.tasks) {
    if (!ID.test(t.id)) throw bad(id, `task id ${JSON.stringify(t.id)}: lower-case letters, digits, _ . -`);
    if (byId.has(t.id)) throw bad(id, `task ${t.id} is defined twice`);
    for (const [name, v] of [
      ['retries', t.retries],
      ['retryDelayMs', t.retryDelayMs],
      ['maxRetryDelayMs', t.maxRetryDelayMs],
      ['executionTimeoutMs', t.executionTimeoutMs],
      ['slaMs', t.slaMs],
      ['pokeIntervalMs', t.pokeIntervalMs],
      ['sensorTimeoutMs', t.sensorTimeoutMs],
    ] as const) {
      if (v !== undefined && !(Number.isSafeInteger(v) && v >= 0))
        throw bad(id, `task ${t.id}: ${name} must be a non-negative integer, got ${v}`);
    }
    if ((t.run === undefined) === (t.poke === undefined))
      throw bad(id, `task ${t.id}: give either run (a task) or poke (a sensor)`);
    byId.set(t.id, t);
  }
  if (byId.size === 0) throw bad(id, 'it has no tasks');
  for (const t of definition.tasks) {
    for (const u of t.upstream ?? []) {
      if (!byId.has(u)) throw bad(id, `task ${t.id} names upstream task ${u}, which is not defined`);
    }
  }
  // Kahn's algorithm, keeping definition order among ready tasks so the order is stable.
  const waiting = new Map(definition.tasks.map((t) => [t.id, new Set(t.upstream ?? [])]));
  const ordered: DagTask[] = [];
  while (waiting.size > 0) {
    const ready = [...waiting].filter(([, ups]) => ups.size === 0).map(([taskId]) => taskId);
    if (ready.length === 0)
      throw bad(id, `tasks ${[...waiting.keys()].sort().join(', ')} depend on each other in a cycle`);
    for (const taskId of ready) {
      waiting.delete(taskId);
      for (const ups of waiting.values()) ups.delete(taskId);
      const t = byId.get(taskId) as TaskDefinition;
      ordered.push({
        ...t,
        upstream: t.upstream ?? [],
        retries: t.retries ?? 0,
        retryDelayMs: t.retryDelayMs ?? 30_000,
        maxRetryDelayMs: t.maxRetryDelayMs ?? 3_600_000,
        pool: t.pool ?? 'default',
        pokeIntervalMs: t.pokeIntervalMs ?? 30_000,
        sensorTimeoutMs: t.sensorTimeoutMs ?? 6 * 3_600_000,
      });
    }
  }
  const maxActiveRuns = definition.maxActiveRuns ?? 1;
  if (!Number.isSafeInteger(maxActiveRuns) || maxActiveRuns < 1)
    throw bad(id, `maxActiveRuns must be a positive integer, got ${maxActiveRuns}`);
  let startDate: number | undefined;
  if (definition.startDate !== undefined) {
    startDate = typeof definition.startDate === 'number' ? definition.startDate : Date.parse(definition.startDate);
    if (!Number.isSafeInteger(startDate))
      throw bad(id, `startDate ${JSON.stringify(definition.startDate)} is not a date`);
  }
  return {
    id,
    schedule,
    tasks: ordered,
    maxActiveRuns,
    startDate,
    catchup: definition.catchup ?? true,
    rerunOnLateData: definition.rerunOnLateData ?? false,
    upstreamDags: definition.upstreamDags ?? [],
  };
}

/** The wait before retry `retry` (1-based) of a task: exponential back-off, capped. */
export function retryDelayOf(task: DagTask, retry: number): number {
  return Math.min(task.maxRetryDelayMs, task.retryDelayMs * 2 ** (retry - 1));
}

/** `taskId` and every task after it in the DAG (what `clear --downstream` reruns), in dependency order. */
export function downstreamOf(dag: Dag, taskId: string): string[] {
  if (!dag.tasks.some((t) => t.id === taskId)) throw bad(dag.id, `it has no task ${taskId}`);
  const picked = new Set([taskId]);
  for (const t of dag.tasks) if (t.upstream.some((u) => picked.has(u))) picked.add(t.id);
  return dag.tasks.filter((t) => picked.has(t.id)).map((t) => t.id);
}
