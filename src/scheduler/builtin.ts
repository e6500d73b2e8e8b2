/**
 * The pipeline's own DAGs: `recalculate-hourly` (wait for the hour's lake input -> recalculate
 * the hour -> discrepancy check -> business anomaly check), `recalculate-daily` (wait for the
 * day's lake input -> recalculate the day -> the same checks) and `retention` (drop lake
 * partitions past the retention). Both recalculations wait on what they read, never on other
 * runs, so a run of any past interval runs however it was created (schedule, REST trigger,
 * dashboard, `reckon dags trigger`, backfill, `reckon recalc`); both rerun by themselves when
 * late data lands in their interval.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type InputCheck, runRecalculation } from '../batch/index.ts';
import type { StatsRules } from '../events/index.ts';
import {
  awaitLakeInput,
  HOUR_MS,
  lakeInputState,
  lakeOffsets,
  lateArrivals,
  type LogEndsReader,
  readLogEnds,
  lakeHourFiles,
} from '../lake/index.ts';
import type { NewAlert, SchedulerStore } from '../store/index.ts';
import type { StatsColumn, StatsStore } from '../stats/index.ts';
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
  store: SchedulerStore;
  rules: StatsRules;
  /** First logical date of scheduled runs; undefined: triggered and backfilled runs only. */
  startDate?: number;
  /** Relative deviation of a column (speed vs batch) above which the discrepancy check alerts. Default 0.02. */
  discrepancyThreshold?: number;
  /** Days of lake partitions kept (0: all). Default 0. */
  lakeRetentionDays?: number;
  /** The allowed lateness: the recalculations' SLA counts from the interval's end plus this. Default 1 hour. */
  allowedLatenessMs?: number;
  /** How often the sensors look. Default 30 s. */
  pokeIntervalMs?: number;
  /** Default `Date.now`. */
  clock?: () => number;
}

/** Topics of the lake whose partitions retention drops. */
const LAKE_TOPICS = ['emissions', 'clicks', 'stats'];

const iso = (t: number): string => new Date(t).toISOString();

/** Speed-vs-batch deviations of [from, to) larger than `threshold` (relative to the batch value, at least 1). */
async function discrepancyCheck(o: PipelineDagOptions, c: TaskRunContext): Promise<void> {
  const threshold = o.discrepancyThreshold ?? 0.02;
  const rows = (await o.stats.discrepancies(c.interval.start, c.interval.end)).filter(
    (d) => d.from === c.interval.start && d.to === c.interval.end,
  );
  if (rows.length === 0)
    throw new Error(`no reconciliation recorded for ${iso(c.interval.start)}: the recalculation did not record one`);
  const over = rows.filter((d) => {
    const diff = d.speed > d.batch ? d.speed - d.batch : d.batch - d.speed;
    const base = d.batch < 0n ? -d.batch : d.batch;
    return Number(diff) > threshold * Math.max(1, Number(base));
  });
  if (over.length === 0) return;
  const alert: NewAlert = {
    key: `discrepancy:${c.dagId}:${iso(c.logicalDate)}`,
    kind: 'discrepancy',
    source: 'scheduler',
    message: `speed deviated from batch for ${iso(c.interval.start)} .. ${iso(c.interval.end)} beyond ${threshold * 100}%: ${over
      .map((d) => `${d.column} speed ${d.speed} vs batch ${d.batch}`)
      .join('; ')}`,
    details: {
      from: iso(c.interval.start),
      to: iso(c.interval.end),
      columns: Object.fromEntries(over.map((d) => [d.column, { speed: String(d.speed), batch: String(d.batch) }])),
    },
  };
  await o.store.raiseAlert(alert, (o.clock ?? Date.now)());
}

/** Median of a non-empty list. */
function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Business columns the anomaly checks compare; counts have Poisson noise, money a wider one. */
const ANOMALY_COLUMNS: readonly { column: StatsColumn; money: boolean }[] = [
  { column: 'emissions', money: false },
  { column: 'clicks', money: false },
  { column: 'clickCost', money: true },
];

/** Robust scores beyond this many scaled deviations raise an alert. */
export const ANOMALY_THRESHOLD = 5;

/**
 * Robust score of `x` against `history`: its distance from the median in scaled MADs (1.4826 MAD
 * estimates a standard deviation). The scale has a floor, so that a flat or short history does
 * not make noise look like an anomaly: for counts the Poisson deviation (sqrt of the median), for
 * money a tenth of the median; at least 1.
 */
export function robustScore(x: number, history: number[], money = false): { score: number; baseline: number } {
  const m = median(history);
  const mad = median(history.map((v) => Math.abs(v - m)));
  const floor = money ? 0.1 * Math.abs(m) : Math.sqrt(Math.abs(m));
  return { score: (x - m) / Math.max(1.4826 * mad, floor, 1), baseline: m };
}

/** A population stability index above this is a distribution shift (0.1-0.25 is the usual "moderate" band). */
export const SHIFT_THRESHOLD = 0.25;
/** Intervals with fewer emissions are too small for a shift check: their mix is mostly noise. */
const MIN_EVENTS_FOR_SHIFT = 500;

/** Population stability index of `actual` against `expected` shares (each smoothed, so an empty share counts). */
export function populationStabilityIndex(actual: readonly number[], expected: readonly number[]): number {
  const eps = 1e-4;
  let psi = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = Math.max(actual[i] ?? 0, eps);
    const e = Math.max(expected[i] ?? 0, eps);
    psi += (a - e) * Math.log(a / e);
  }
  return psi;
}

/** The business checks: an hour against the same hour of the 7 days before, a day against the same weekday of the 7 weeks before. */
const ANOMALY_SCOPES = {
  hourly: { granularity: 'hour', stepMs: DAY_MS, baseline: 'the same hour of the 7 days before' },
  daily: { granularity: 'day', stepMs: 7 * DAY_MS, baseline: 'the same weekday of the 7 weeks before' },
} as const;

/**
 * Per placement and column (emissions, clicks, cost), the run's interval against the same
 * interval one step back, 7 times (periods without any data are left out; at least 4 are
 * needed). Records every score; raises one alert per (scope, interval, placement) with a score
 * beyond {@link ANOMALY_THRESHOLD}.
 */
async function anomalyCheck(
  o: PipelineDagOptions,
  c: TaskRunContext,
  scope: keyof typeof ANOMALY_SCOPES,
): Promise<void> {
  const { granularity, stepMs, baseline } = ANOMALY_SCOPES[scope];
  const start = c.interval.start;
  const length = c.interval.end - start;
  const periods = [start, ...Array.from({ length: 7 }, (_, i) => start - (i + 1) * stepMs)];
  const totals = new Map<string, Map<number, Record<string, number>>>();
  const withData = new Set<number>();
  for (const p of periods) {
    let cursor: string | undefined;
    do {
      const page = await o.stats.query({
        from: p,
        to: p + length,
        granularity,
        limit: 10_000,
        ...(cursor ? { cursor } : {}),
      });
      for (const r of page.rows) {
        withData.add(p);
        const byPeriod = totals.get(r.placement) ?? new Map<number, Record<string, number>>();
        const t = byPeriod.get(p) ?? {};
        for (const { column } of ANOMALY_COLUMNS) t[column] = (t[column] ?? 0) + Number(r[column]);
        byPeriod.set(p, t);
        totals.set(r.placement, byPeriod);
      }
      cursor = page.nextCursor;
    } while (cursor !== undefined);
  }
  const history = periods.slice(1).filter((p) => withData.has(p));
  if (history.length < 4) return;
  const now = (o.clock ?? Date.now)();
  const scores = [];
  for (const [placement, byPeriod] of [...totals].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const findings = [];
    for (const { column, money } of ANOMALY_COLUMNS) {
      const value = byPeriod.get(start)?.[column] ?? 0;
      const { score, baseline: base } = robustScore(
        value,
        history.map((p) => byPeriod.get(p)?.[column] ?? 0),
        money,
      );
      const rounded = Math.round(score * 100) / 100;
      scores.push({ placement, column, intervalStart: start, value, baseline: base, score: rounded });
      if (Math.abs(score) > ANOMALY_THRESHOLD) findings.push({ column, value, baseline: base, score: rounded });
    }
    if (findings.length === 0) continue;
    const what = granularity === 'day' ? iso(start).slice(0, 10) : iso(start);
    await o.store.raiseAlert(
      {
        key: `anomaly:${scope}:${iso(start)}:${placement}`,
        kind: 'anomaly',
        source: 'scheduler',
        message: `placement ${placement} at ${what} is unlike ${baseline}: ${findings
          .map((f) => `${f.column} ${f.value} against a median of ${f.baseline} (score ${f.score})`)
          .join(', ')}`,
        details: { scope, interval: iso(start), placement, findings },
      },
      now,
    );
  }
  // Distribution shift: the traffic mix (each placement's share of emissions) against the
  // median shares of the history, as a population stability index.
  const shares = (p: number) => {
    const counts = [...totals.keys()].map((pl) => totals.get(pl)?.get(p)?.emissions ?? 0);
    const sum = counts.reduce((a, b) => a + b, 0);
    return { sum, shares: counts.map((c) => (sum > 0 ? c / sum : 0)) };
  };
  const current = shares(start);
  const past = history.map(shares);
  const expected = [...totals.keys()].map((_, i) => median(past.map((h) => h.shares[i] ?? 0)));
  const psi = populationStabilityIndex(current.shares, expected);
  scores.push({
    placement: '(all)',
    column: 'emissions_mix_psi',
    intervalStart: start,
    value: psi,
    baseline: 0,
    score: Math.round(psi * 1000) / 1000,
  });
  if (current.sum >= MIN_EVENTS_FOR_SHIFT && psi > SHIFT_THRESHOLD) {
    const what = granularity === 'day' ? iso(start).slice(0, 10) : iso(start);
    await o.store.raiseAlert(
      {
        key: `distribution_shift:${scope}:${iso(start)}`,
        kind: 'distribution_shift',
        source: 'scheduler',
        message: `the placement mix of emissions at ${what} shifted from ${baseline} (population stability index ${psi.toFixed(3)} > ${SHIFT_THRESHOLD})`,
        details: { scope, interval: iso(start), psi, emissions: current.sum },
      },
      now,
    );
  }
  await o.store.recordAnomalyScores(scope, scores, now);
}

/** Removes lake partitions (`date=` directories) of days wholly before `cutoff`. */
async function dropLakeDays(lakeDir: string, cutoff: number): Promise<number> {
  let removed = 0;
  for (const topic of LAKE_TOPICS) {
    let dates: string[];
    try {
      dates = (await readdir(join(lakeDir, topic))).filter((n) => n.startsWith('date='));
    } catch {
      continue;
    }
    for (const d of dates) {
      const start = Date.parse(`${d.slice(5)}T00:00:00.000Z`);
      if (Number.isFinite(start) && start + DAY_MS <= cutoff) {
        await rm(join(lakeDir, topic, d), { recursive: true, force: true });
        removed++;
      }
    }
  }
  return removed;
}

/** The built-in DAGs over the lake and the serving store. */
export function pipelineDags(o: PipelineDagOptions): Dag[] {
  const lateness = o.allowedLatenessMs ?? HOUR_MS;
  const poke = o.pokeIntervalMs ?? 30_000;
  const topics = o.log === undefined ? [] : (o.topics ?? ['emissions', 'clicks']);
  const inputOf =
    (waitMs: number): InputCheck =>
    (from, to, signal) =>
      awaitLakeInput({
        lakeDir: o.lakeDir,
        log: o.log ?? { partitionCount: async () => 0, latestOffset: async () => 0 },
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
  const recalculate = async (c: TaskRunContext): Promise<void> => {
    const snapshot = ends.get(keyOf(c));
    await runRecalculation({
      listHourFiles: lakeHourFiles,
      lakeDir: o.lakeDir,
      store: o.stats,
      from: c.interval.start,
      to: c.interval.end,
      rules: o.rules,
      runId: `${c.dagId}/${c.runId}/${c.attempt}`,
      inputCheck:
        snapshot === undefined
          ? inputOf(o.inputWaitMs ?? 30_000)
          : (from, to) => lakeInputState({ lakeDir: o.lakeDir, from, to, ends: snapshot, allowedLatenessMs: lateness }),
      signal: c.signal,
    });
    ends.delete(keyOf(c));
  };
  /**
   * The sensor of both recalculations: every lake hour of the interval sealed, and everything
   * the log held at the first poke landed. It says what it waits for; it cannot become true for
   * an interval whose lake partitions retention has dropped.
   */
  const lakeInputReady = async (c: TaskRunContext): Promise<PokeResult> => {
    const days = o.lakeRetentionDays ?? 0;
    const now = (o.clock ?? Date.now)();
    if (days > 0 && c.interval.start < Math.floor(now / DAY_MS) * DAY_MS - days * DAY_MS)
      return {
        met: false,
        never: `the lake keeps ${days} days (RECKON_LAKE_RETENTION_DAYS): the events of ${iso(c.interval.start)} were dropped by retention`,
      };
    const key = keyOf(c);
    let snapshot = ends.get(key);
    let state: Awaited<ReturnType<typeof lakeInputState>>;
    try {
      if (snapshot === undefined) {
        snapshot = o.log === undefined ? {} : await readLogEnds(o.log, topics);
        ends.set(key, snapshot);
      }
      state = await lakeInputState({
        lakeDir: o.lakeDir,
        from: c.interval.start,
        to: c.interval.end,
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
  const start = o.startDate !== undefined ? { startDate: o.startDate } : {};
  /** What follows a recalculation: the speed-vs-batch check, then the business checks. */
  const checkTasks = (scope: 'hourly' | 'daily') => [
    {
      id: 'discrepancy-check',
      upstream: ['recalculate'],
      run: (c: TaskRunContext) => discrepancyCheck(o, c),
      retries: 2,
      retryDelayMs: 10_000,
    },
    {
      id: 'anomaly-check',
      upstream: ['discrepancy-check'],
      run: (c: TaskRunContext) => anomalyCheck(o, c, scope),
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
          const days = o.lakeRetentionDays ?? 0;
          if (days > 0) await dropLakeDays(o.lakeDir, c.interval.end - days * DAY_MS);
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
