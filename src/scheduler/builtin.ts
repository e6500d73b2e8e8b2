/**
 * The pipeline's own DAGs: `recalculate-hourly` (wait for the hour's lake input -> recalculate
 * the hour -> discrepancy check -> business anomaly check), `recalculate-daily` (wait for the
 * day's lake input -> recalculate the day -> the same checks) and `retention` (drop lake
 * partitions past the retention). Both recalculations wait on what they read, never on other
 * runs, so a run of any past interval runs however it was created (schedule, REST trigger,
 * dashboard, `reckon dags trigger`, backfill, `reckon recalc`); both rerun by themselves when
 * late data lands in their interval.
 */
import { type InputCheck, runRecalculation } from '../batch/index.ts';
import { formatTimestamp, type StatsRules } from '../events/index.ts';
import {
  awaitLakeInput,
  dropLakeDays,
  HOUR_MS,
  lakeInputState,
  lakeOffsets,
  lateArrivals,
  type LogEndsReader,
  readLogEnds,
  lakeHourFiles,
} from '../lake/index.ts';
import type { StatsStore } from '../stats/index.ts';
import { type Dag, defineDag, type PokeResult, type TaskRunContext } from './dag.ts';
import type { LateData } from './scheduler.ts';

const DAY_MS = 86_400_000;

/** What the built-in DAGs need. */
export interface PipelineDagOptions {
  lakeDir: string;
  /**
   * The log's ends, which a recalculation's input must be in the lake up to (see
   * `awaitLakeInput`). Without it only the seals are checked (tests over a lake without a log).
   */
  log?: LogEndsReader;
  /** The log topics the lake archives for the recalculation. Default `emissions`, `clicks`. */
  topics?: readonly string[];
  /** How long a recalculation waits for the archiver to land what the log held when it began. Default 30 s. */
  inputWaitMs?: number;
  stats: StatsStore;
  rules: StatsRules;
  /**
   * What follows each recalculation, in order: the speed-vs-batch check, then the business
   * checks (the monitor's `businessChecks`). A check that throws fails its task, which is retried.
   */
  checks: RecalculationChecks;
  /** First logical date of scheduled runs; undefined: triggered and backfilled runs only. */
  startDate?: number;
  /** Days of lake partitions kept (0: all). Default 0. */
  lakeRetentionDays?: number;
  /** The allowed lateness: the recalculations' SLA counts from the interval's end plus this. Default 1 hour. */
  allowedLatenessMs?: number;
  /** How often the sensors look. Default 30 s. */
  pokeIntervalMs?: number;
  /** Default `Date.now`. */
  clock?: () => number;
}

/** The checks the recalculation DAGs run after recalculating, given the run's context and its scope. */
export interface RecalculationChecks {
  discrepancy(context: TaskRunContext): Promise<void>;
  anomaly(context: TaskRunContext, scope: 'hourly' | 'daily'): Promise<void>;
}

/** The built-in DAGs over the lake and the serving store. */
export function pipelineDags(options: PipelineDagOptions): Dag[] {
  const lateness = options.allowedLatenessMs ?? HOUR_MS;
  const poke = options.pokeIntervalMs ?? 30_000;
  const topics = options.log === undefined ? [] : (options.topics ?? ['emissions', 'clicks']);
  const inputOf =
    (waitMs: number): InputCheck =>
    (from, to, signal) =>
      awaitLakeInput({
        lakeDir: options.lakeDir,
        log: options.log ?? { partitionCount: async () => 0, latestOffset: async () => 0 },
        topics,
        from,
        to,
        waitMs,
        allowedLatenessMs: lateness,
        ...(signal !== undefined ? { signal } : {}),
      });
  // The log's ends each run read at its sensor's first poke (by run and pass): the lake must reach
  // them. Kept across pokes, so that a poke only looks, and for the recalculation's own check, so
  // that an archiver catching up under traffic need not reach a newer end (what came after them
  // is a late arrival, which reruns the run). A restarted scheduler reads them again.
  const ends = new Map<string, Record<string, number[]>>();
  const keyOf = (c: TaskRunContext) => `${c.dagId} ${c.logicalDate} ${c.clearCount}`;
  const recalculate = async (context: TaskRunContext): Promise<void> => {
    const snapshot = ends.get(keyOf(context));
    await runRecalculation({
      listHourFiles: lakeHourFiles,
      lakeDir: options.lakeDir,
      store: options.stats,
      from: context.interval.start,
      to: context.interval.end,
      rules: options.rules,
      runId: `${context.dagId}/${context.runId}/${context.attempt}`,
      inputCheck:
        snapshot === undefined
          ? inputOf(options.inputWaitMs ?? 30_000)
          : (from, to) =>
              lakeInputState({ lakeDir: options.lakeDir, from, to, ends: snapshot, allowedLatenessMs: lateness }),
      signal: context.signal,
    });
    ends.delete(keyOf(context));
  };
  /**
   * The sensor of both recalculations: every lake hour of the interval sealed, and everything
   * the log held at the first poke landed. It says what it waits for; it cannot become true for
   * an interval whose lake partitions retention has dropped.
   */
  const lakeInputReady = async (context: TaskRunContext): Promise<PokeResult> => {
    const days = options.lakeRetentionDays ?? 0;
    const now = (options.clock ?? Date.now)();
    if (days > 0 && context.interval.start < Math.floor(now / DAY_MS) * DAY_MS - days * DAY_MS)
      return {
        met: false,
        never: `the lake keeps ${days} days (RECKON_LAKE_RETENTION_DAYS): the events of ${formatTimestamp(context.interval.start)} were dropped by retention`,
      };
    const key = keyOf(context);
    let snapshot = ends.get(key);
    let state: Awaited<ReturnType<typeof lakeInputState>>;
    try {
      if (snapshot === undefined) {
        snapshot = options.log === undefined ? {} : await readLogEnds(options.log, topics);
        ends.set(key, snapshot);
      }
      state = await lakeInputState({
        lakeDir: options.lakeDir,
        from: context.interval.start,
        to: context.interval.end,
        ends: snapshot,
        allowedLatenessMs: lateness,
        now,
      });
    } catch (e) {
      // A broker that does not answer now (or a lake file being replaced) is a reason to look
      // again at the next poke, not to fail the run: the sensor's timeout bounds the wait.
      return {
        met: false,
        waitingFor: `lake input: could not be checked now (${(e as Error).message}); looking again`,
      };
    }
    return state.complete ? { met: true } : { met: false, waitingFor: `lake input: ${state.waitingFor}` };
  };
  // A sensor waits the allowed lateness (its interval's hours seal then) and 3 hours more for an
  // archiver that is behind or restarting; then it fails, and the run's SLA miss says so.
  const sensorTimeoutMs = lateness + 3 * HOUR_MS;
  const recalculateTask = (slaMs: number) => ({
    id: 'recalculate',
    run: recalculate,
    retries: 3,
    retryDelayMs: 30_000,
    executionTimeoutMs: 2 * 3_600_000,
    pool: 'batch',
    slaMs,
  });
  const start = options.startDate !== undefined ? { startDate: options.startDate } : {};
  /** What follows a recalculation: the speed-vs-batch check, then the business checks. */
  const checkTasks = (scope: 'hourly' | 'daily') => [
    {
      id: 'discrepancy-check',
      upstream: ['recalculate'],
      run: (c: TaskRunContext) => options.checks.discrepancy(c),
      retries: 2,
      retryDelayMs: 10_000,
    },
    {
      id: 'anomaly-check',
      upstream: ['discrepancy-check'],
      run: (c: TaskRunContext) => options.checks.anomaly(c, scope),
      retries: 2,
      retryDelayMs: 10_000,
    },
  ];
  const hourly = defineDag({
    id: 'recalculate-hourly',
    schedule: '@hourly',
    ...start,
    maxActiveRuns: 4,
    rerunOnLateData: true,
    tasks: [
      { id: 'wait-for-sealed-hour', poke: lakeInputReady, pokeIntervalMs: poke, sensorTimeoutMs },
      { ...recalculateTask(lateness + 2 * 3_600_000), upstream: ['wait-for-sealed-hour'] },
      ...checkTasks('hourly'),
    ],
  });
  const daily = defineDag({
    id: 'recalculate-daily',
    schedule: '@daily',
    ...start,
    maxActiveRuns: 2,
    rerunOnLateData: true,
    tasks: [
      // Named for what it has always waited for, the day's hours: now their lake input, not the
      // hourly runs (which a trigger of a past day never created).
      { id: 'wait-for-hours', poke: lakeInputReady, pokeIntervalMs: poke, sensorTimeoutMs },
      { ...recalculateTask(lateness + 6 * 3_600_000), upstream: ['wait-for-hours'] },
      ...checkTasks('daily'),
    ],
  });
  const retention = defineDag({
    id: 'retention',
    schedule: '@daily',
    ...start,
    catchup: false,
    tasks: [
      {
        id: 'lake-retention',
        run: async (c) => {
          const days = options.lakeRetentionDays ?? 0;
          if (days > 0) await dropLakeDays(options.lakeDir, c.interval.end - days * DAY_MS);
        },
        retries: 2,
      },
    ],
  });
  return [hourly, daily, retention];
}

/** Pools the built-in DAGs use: one recalculation at a time (DuckDB takes the cores and memory it is given). */
export const PIPELINE_POOLS: Readonly<Record<string, number>> = { default: 16, batch: 1 };

/**
 * Late arrivals the archiver recorded in the lake, each once its flush is committed (its events
 * are readable): what the scheduler reruns the recalculations for.
 */
export function lakeLateData(lakeDir: string): () => Promise<LateData[]> {
  return async () => {
    const out: LateData[] = [];
    for (const a of await lateArrivals(lakeDir)) {
      const next = (await lakeOffsets(lakeDir, a.topic, [a.partition])).get(a.partition) ?? 0;
      if (next <= a.to) continue; // recorded before its flush committed: not readable yet
      out.push({
        key: `${a.topic}/${a.partition}/${a.from}-${a.to}/${a.hourStartMs}`,
        hourStart: a.hourStartMs,
        at: a.at,
      });
    }
    return out;
  };
}
