/**
 * The pipeline's business checks, run after each recalculation as tasks the scheduler is given:
 * speed against batch (discrepancy), and each placement's figures against their own history
 * (robust anomaly scores, and a shift of the traffic mix). They raise alerts through the alert
 * outbox and record every anomaly score for `/metrics`.
 */
import { formatTimestamp } from '../events/index.ts';
import type { AlertStore, NewAlert } from '../store/index.ts';
import type { StatsColumn, StatsStore } from '../stats/index.ts';

const DAY_MS = 86_400_000;

/** What the business checks read and where they raise alerts. */
export interface BusinessCheckOptions {
  stats: StatsStore;
  /** Where alerts are raised and scores recorded. */
  store: AlertStore;
  /** Relative deviation of a column (speed vs batch) above which the discrepancy check alerts. Default 0.02. */
  discrepancyThreshold?: number;
  /** Default `Date.now`. */
  clock?: () => number;
}

/** The run a check looks at: its DAG, logical date and data interval [start, end). */
export interface CheckedRun {
  dagId: string;
  logicalDate: number;
  interval: { start: number; end: number };
}

/** The anomaly checks' scopes: an hour, or a day. */
export type AnomalyScope = 'hourly' | 'daily';

/** The checks that follow a recalculation, in order, bound to their options. */
export interface BusinessChecks {
  discrepancy(run: CheckedRun): Promise<void>;
  anomaly(run: CheckedRun, scope: AnomalyScope): Promise<void>;
}

/** The business checks over `options`, for the recalculation DAGs. */
export function businessChecks(options: BusinessCheckOptions): BusinessChecks {
  return {
    discrepancy: (run) => discrepancyCheck(options, run),
    anomaly: (run, scope) => anomalyCheck(options, run, scope),
  };
}

/** Speed-vs-batch deviations of [from, to) larger than `threshold` (relative to the batch value, at least 1). */
export async function discrepancyCheck(options: BusinessCheckOptions, run: CheckedRun): Promise<void> {
  const threshold = options.discrepancyThreshold ?? 0.02;
  const rows = (await options.stats.discrepancies(run.interval.start, run.interval.end)).filter(
    (d) => d.from === run.interval.start && d.to === run.interval.end,
  );
  if (rows.length === 0)
    throw new Error(
      `no reconciliation recorded for ${formatTimestamp(run.interval.start)}: the recalculation did not record one`,
    );
  const over = rows.filter((d) => {
    const diff = d.speed > d.batch ? d.speed - d.batch : d.batch - d.speed;
    const base = d.batch < 0n ? -d.batch : d.batch;
    return Number(diff) > threshold * Math.max(1, Number(base));
  });
  if (over.length === 0) return;
  const alert: NewAlert = {
    key: `discrepancy:${run.dagId}:${formatTimestamp(run.logicalDate)}`,
    kind: 'discrepancy',
    source: 'scheduler',
    message: `speed deviated from batch for ${formatTimestamp(run.interval.start)} .. ${formatTimestamp(run.interval.end)} beyond ${threshold * 100}%: ${over
      .map((d) => `${d.column} speed ${d.speed} vs batch ${d.batch}`)
      .join('; ')}`,
    details: {
      from: formatTimestamp(run.interval.start),
      to: formatTimestamp(run.interval.end),
      columns: Object.fromEntries(over.map((d) => [d.column, { speed: String(d.speed), batch: String(d.batch) }])),
    },
  };
  await options.store.raiseAlert(alert, (options.clock ?? Date.now)());
}

/** Median of a non-empty list. */
function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
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
const ANOMALY_SCOPES: Record<AnomalyScope, { granularity: 'hour' | 'day'; stepMs: number; baseline: string }> = {
  hourly: { granularity: 'hour', stepMs: DAY_MS, baseline: 'the same hour of the 7 days before' },
  daily: { granularity: 'day', stepMs: 7 * DAY_MS, baseline: 'the same weekday of the 7 weeks before' },
};

/**
 * Per placement and column (emissions, clicks, cost), the run's interval against the same
 * interval one step back, 7 times (periods without any data are left out; at least 4 are
 * needed). Records every score; raises one alert per (scope, interval, placement) with a score
 * beyond {@link ANOMALY_THRESHOLD}.
 */
export async function anomalyCheck(options: BusinessCheckOptions, run: CheckedRun, scope: AnomalyScope): Promise<void> {
  const { granularity, stepMs, baseline } = ANOMALY_SCOPES[scope];
  const start = run.interval.start;
  const length = run.interval.end - start;
  const periods = [start, ...Array.from({ length: 7 }, (_, i) => start - (i + 1) * stepMs)];
  const totals = new Map<string, Map<number, Record<string, number>>>();
  const withData = new Set<number>();
  for (const p of periods) {
    let cursor: string | undefined;
    do {
      const page = await options.stats.query({
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
  const now = (options.clock ?? Date.now)();
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
    const what = granularity === 'day' ? formatTimestamp(start).slice(0, 10) : formatTimestamp(start);
    await options.store.raiseAlert(
      {
        key: `anomaly:${scope}:${formatTimestamp(start)}:${placement}`,
        kind: 'anomaly',
        source: 'scheduler',
        message: `placement ${placement} at ${what} is unlike ${baseline}: ${findings
          .map((f) => `${f.column} ${f.value} against a median of ${f.baseline} (score ${f.score})`)
          .join(', ')}`,
        details: { scope, interval: formatTimestamp(start), placement, findings },
      },
      now,
    );
  }
  // Distribution shift: the traffic mix (each placement's share of emissions) against the
  // median shares of the history, as a population stability index.
  const shares = (p: number) => {
    const counts = [...totals.keys()].map((pl) => totals.get(pl)?.get(p)?.emissions ?? 0);
    const sum = counts.reduce((a, b) => a + b, 0);
    return { sum, shares: counts.map((count) => (sum > 0 ? count / sum : 0)) };
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
    const what = granularity === 'day' ? formatTimestamp(start).slice(0, 10) : formatTimestamp(start);
    await options.store.raiseAlert(
      {
        key: `distribution_shift:${scope}:${formatTimestamp(start)}`,
        kind: 'distribution_shift',
        source: 'scheduler',
        message: `the placement mix of emissions at ${what} shifted from ${baseline} (population stability index ${psi.toFixed(3)} > ${SHIFT_THRESHOLD})`,
        details: { scope, interval: formatTimestamp(start), psi, emissions: current.sum },
      },
      now,
    );
  }
  await options.store.recordAnomalyScores(scope, scores, now);
}
