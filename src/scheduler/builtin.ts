/**
 * The pipeline's own DAGs: `recalculate-hourly` (wait for the sealed hour -> recalculate the hour
 * -> discrepancy check), `recalculate-daily` (wait for the day's hourly runs -> recalculate the
 * day -> discrepancy check -> business anomaly check) and `retention` (drop lake partitions past
 * the retention). Both recalculations rerun by themselves when late data lands in their interval.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { runRecalculation } from '../batch/index.ts';
import type { StatsRules } from '../events/index.ts';
import { HOUR_MS, isHourSealed, lakeOffsets, lateArrivals } from '../lake/index.ts';
import type { NewAlert, SchedulerStore, StatsColumn, StatsStore } from '../store/index.ts';
import { type Dag, defineDag, type TaskRunContext } from './dag.ts';
import type { LateData } from './scheduler.ts';
import { upstreamRunsSucceeded } from './sensors.ts';

const DAY_MS = 86_400_000;

/** What the built-in DAGs need. */
export interface PipelineDagOptions {
  lakeDir: string;
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
    key: `discrepancy:${c.dagId}:${iso(c.logicalDate)}:${c.clearCount}`,
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

/** Business columns the anomaly check compares. */
const ANOMALY_COLUMNS: readonly StatsColumn[] = ['emissions', 'clicks', 'clickCost'];

/** Robust score of `x` against `history`: distance from the median in scaled MADs (with a floor for flat histories). */
export function robustScore(x: number, history: number[]): number {
  const m = median(history);
  const mad = median(history.map((v) => Math.abs(v - m)));
  const scale = Math.max(1.4826 * mad, 0.05 * Math.abs(m), 1);
  return (x - m) / scale;
}

/**
 * Per placement and column, the day against the same weekday of the 7 weeks before (at least 4
 * of them with data): a robust score beyond 5 raises one anomaly alert per (day, placement).
 */
async function anomalyCheck(o: PipelineDagOptions, c: TaskRunContext): Promise<void> {
  const day = c.interval.start;
  const days = [day, ...Array.from({ length: 7 }, (_, i) => day - (i + 1) * 7 * DAY_MS)];
  const totals = new Map<string, Map<number, Record<string, number>>>();
  for (const d of days) {
    let cursor: string | undefined;
    do {
      const page = await o.stats.query({
        from: d,
        to: d + DAY_MS,
        granularity: 'day',
        limit: 1000,
        ...(cursor ? { cursor } : {}),
      });
      for (const r of page.rows) {
        const byDay = totals.get(r.placement) ?? new Map<number, Record<string, number>>();
        const t = byDay.get(d) ?? {};
        for (const col of ANOMALY_COLUMNS) t[col] = (t[col] ?? 0) + Number(r[col]);
        byDay.set(d, t);
        totals.set(r.placement, byDay);
      }
      cursor = page.nextCursor;
    } while (cursor !== undefined);
  }
  const now = (o.clock ?? Date.now)();
  for (const [placement, byDay] of totals) {
    const history = days.slice(1).filter((d) => byDay.has(d));
    if (history.length < 4) continue;
    const findings = [];
    for (const col of ANOMALY_COLUMNS) {
      const x = byDay.get(day)?.[col] ?? 0;
      const score = robustScore(
        x,
        history.map((d) => byDay.get(d)?.[col] ?? 0),
      );
      if (Math.abs(score) > 5) findings.push({ column: col, value: x, score: Math.round(score * 10) / 10 });
    }
    if (findings.length === 0) continue;
    await o.store.raiseAlert(
      {
        key: `anomaly:${iso(day).slice(0, 10)}:${placement}:${c.clearCount}`,
        kind: 'anomaly',
        source: 'scheduler',
        message: `placement ${placement} on ${iso(day).slice(0, 10)} is unlike the same weekday of the weeks before: ${findings
          .map((f) => `${f.column} ${f.value} (score ${f.score})`)
          .join(', ')}`,
        details: { day: iso(day).slice(0, 10), placement, findings },
      },
      now,
    );
  }
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
  const recalculate = (c: TaskRunContext) =>
    runRecalculation({
      lakeDir: o.lakeDir,
      store: o.stats,
      from: c.interval.start,
      to: c.interval.end,
      rules: o.rules,
      runId: `${c.dagId}/${c.runId}/${c.attempt}`,
    }).then(() => undefined);
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
  const hourly = defineDag({
    id: 'recalculate-hourly',
    schedule: '@hourly',
    ...start,
    maxActiveRuns: 4,
    rerunOnLateData: true,
    tasks: [
      {
        id: 'wait-for-sealed-hour',
        // The archiver seals hours in order: the last hour of the interval sealed means all are.
        poke: (c) => isHourSealed(o.lakeDir, c.interval.end - HOUR_MS),
        pokeIntervalMs: poke,
        sensorTimeoutMs: 24 * 3_600_000,
      },
      { ...recalculateTask(lateness + 2 * 3_600_000), upstream: ['wait-for-sealed-hour'] },
      {
        id: 'discrepancy-check',
        upstream: ['recalculate'],
        run: (c) => discrepancyCheck(o, c),
        retries: 2,
        retryDelayMs: 10_000,
      },
    ],
  });
  const daily = defineDag({
    id: 'recalculate-daily',
    schedule: '@daily',
    ...start,
    maxActiveRuns: 2,
    rerunOnLateData: true,
    upstreamDags: ['recalculate-hourly'],
    tasks: [
      {
        id: 'wait-for-hours',
        poke: upstreamRunsSucceeded(o.store, hourly),
        pokeIntervalMs: poke,
        sensorTimeoutMs: 2 * DAY_MS,
      },
      { ...recalculateTask(lateness + 6 * 3_600_000), upstream: ['wait-for-hours'] },
      {
        id: 'discrepancy-check',
        upstream: ['recalculate'],
        run: (c) => discrepancyCheck(o, c),
        retries: 2,
        retryDelayMs: 10_000,
      },
      {
        id: 'anomaly-check',
        upstream: ['discrepancy-check'],
        run: (c) => anomalyCheck(o, c),
        retries: 2,
        retryDelayMs: 10_000,
      },
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
