/**
 * `reckon recalc --from 2026-11-01 --to 2026-11-07`: the recovery after a bug or late data.
 * Recalculates every day of the window (its minutes, hours and day) through the scheduler's
 * `recalculate-daily` runs, so that runs, retries, alerts and the dashboard show it: a run is
 * created for a day without one, an ended run is cleared and reruns whole, a run in progress is
 * left to finish. Shows a progress bar (days done, events per second, time left), then a
 * discrepancy report per day and column: the speed layer's total, the batch total before and
 * after. Exits 1 if any day failed. Safe to rerun.
 */
import { join, resolve } from 'node:path';
import { type ReckonConfig } from '../config/index.ts';
import { formatMoney } from '../events/index.ts';
import { lakeRowsByHour } from '../lake/index.ts';
import { STATS_COLUMNS, type StatsColumn, type StatsStore } from '../stats/index.ts';
import type { DagRunRecord } from '../store/index.ts';
import { UsageError } from './errors.ts';
import { LAKE_INPUT_TOPICS } from './lake-input.ts';
import { createProgress } from './progress.ts';
import { openScheduling } from './scheduler.ts';

const DAY = 86_400_000;
const DAG = 'recalculate-daily';
const MONEY: ReadonlySet<StatsColumn> = new Set(['clickCost', 'fraudCost']);

/** `YYYY-MM-DD` as the start of that UTC day. */
export function parseDay(flag: string, text: string): number {
  const t = /^\d{4}-\d{2}-\d{2}$/.test(text) ? Date.parse(`${text}T00:00:00.000Z`) : Number.NaN;
  if (!Number.isFinite(t) || new Date(t).toISOString().slice(0, 10) !== text)
    throw new UsageError(`${flag} ${JSON.stringify(text)}: expected a UTC day like 2026-11-01`);
  return t;
}

/** How `reckon recalc` runs the window. */
export type RecalcMode = 'here' | 'watch' | 'detach';

/** One day's figures of the report. */
interface DayReport {
  day: number;
  state: DagRunRecord['state'];
  /** Why it failed (the failed task and its error). */
  failure?: string;
  columns: { column: StatsColumn; speed?: bigint; before?: bigint; after?: bigint }[];
}

const dayText = (t: number): string => new Date(t).toISOString().slice(0, 10);
const figure = (column: StatsColumn, v: bigint | undefined): string =>
  v === undefined ? '-' : MONEY.has(column) ? formatMoney(v) : String(v);

/** The exact-day reconciliation records of [day, day + 1 d), per column. */
async function recordedDay(
  stats: StatsStore,
  day: number,
): Promise<Map<StatsColumn, { speed: bigint; batch: bigint }>> {
  const out = new Map<StatsColumn, { speed: bigint; batch: bigint }>();
  for (const d of await stats.discrepancies(day, day + DAY))
    if (d.from === day && d.to === day + DAY) out.set(d.column, { speed: d.speed, batch: d.batch });
  return out;
}

/** `12.3 s`, `4 min 05 s`. */
function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

/**
 * Recalculates the days of [from, to); returns the exit status (0: every day succeeded, 1: some
 * failed). Writes the plan and the report to `out`, the progress to stderr.
 */
export async function runRecalc(
  config: ReckonConfig,
  from: number,
  to: number,
  mode: RecalcMode,
  out: NodeJS.WritableStream = process.stdout,
): Promise<number> {
  const today = Math.floor(Date.now() / DAY) * DAY;
  if (to <= from) throw new UsageError(`--to ${dayText(to - DAY)} is before --from ${dayText(from)}`);
  if (to > today)
    throw new UsageError(
      `--to ${dayText(to - DAY)}: that day has not ended yet; a day can be recalculated once it is over (its hours seal after the allowed lateness)`,
    );
  const lakeDir = join(resolve(config.dataDir), 'lake');
  const days = Array.from({ length: (to - from) / DAY }, (_, i) => from + i * DAY);

  // The plan: what each day had before, and the runs that will recalculate it.
  const planning = await openScheduling(config);
  const before = new Map<number, Map<StatsColumn, { speed: bigint; batch: bigint }>>();
  let plan: { run: DagRunRecord; action: string }[];
  try {
    for (const d of days) before.set(d, await recordedDay(planning.stats, d));
    plan = await planning.scheduler.rerunWindow(DAG, from, to);
  } finally {
    await planning.close();
  }
  const counts = new Map<string, number>();
  for (const p of plan) counts.set(p.action, (counts.get(p.action) ?? 0) + 1);
  out.write(
    `recalc ${dayText(from)} .. ${dayText(to - DAY)}: ${days.length} day(s) through ${DAG} (${[...counts]
      .map(([a, n]) => `${n} ${a}`)
      .join(', ')})\n`,
  );
  if (mode === 'detach') {
    out.write(
      'the running scheduler (reckon start) recalculates them; follow with `reckon recalc … --watch` or the dashboard\n',
    );
    return 0;
  }

  // Events per day (from the lake's manifests): the rate and time left of the progress bar.
  const eventsOf = new Map<number, number>();
  for (const [hour, rows] of await lakeRowsByHour(lakeDir, LAKE_INPUT_TOPICS, from, to)) {
    const d = hour - (hour % DAY);
    eventsOf.set(d, (eventsOf.get(d) ?? 0) + rows);
  }
  const totalEvents = days.reduce((n, d) => n + (eventsOf.get(d) ?? 0), 0);

  const s = await openScheduling(config, {
    runIds: [...new Set(plan.map((p) => p.run.runId))],
    pollMs: 200,
    onEvent: (m) => {
      if (/failed|taken over/.test(m)) process.stderr.write(`\n${m}\n`);
    },
  });
  const progress = createProgress();
  const started = Date.now();
  const ended = (r: DagRunRecord) => (r.state === 'success' || r.state === 'failed') && r.pendingClear === null;
  let final: DagRunRecord[] = [];
  try {
    if (mode === 'here') s.scheduler.start();
    for (;;) {
      const runs = await s.store.listRuns({ dagId: DAG, from, to });
      final = runs.filter((r) => days.includes(r.logicalDate));
      const done = final.filter(ended);
      const eventsDone = done.reduce((n, r) => n + (eventsOf.get(r.logicalDate) ?? 0), 0);
      const elapsed = Date.now() - started;
      const rate = eventsDone > 0 ? eventsDone / (elapsed / 1000) : 0;
      const left =
        done.length === days.length
          ? 'done'
          : rate > 0
            ? `${duration(((totalEvents - eventsDone) / rate) * 1000)} left`
            : 'time left: after the first day';
      progress(
        'recalc days',
        done.length,
        days.length,
        `${Math.round(rate).toLocaleString('en-US')} events/s, ${left}`,
      );
      if (done.length === days.length) break;
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    if (mode === 'here') await s.scheduler.stop();
  }

  // The report: per day and column, speed against batch before and after.
  const reports: DayReport[] = [];
  try {
    for (const d of days) {
      const run = final.find((r) => r.logicalDate === d) as DagRunRecord;
      const after = await recordedDay(s.stats, d);
      const report: DayReport = {
        day: d,
        state: run.state,
        columns: STATS_COLUMNS.map((column) => {
          const a = after.get(column);
          const b = before.get(d)?.get(column);
          return {
            column,
            ...(a !== undefined ? { speed: a.speed } : b !== undefined ? { speed: b.speed } : {}),
            ...(b !== undefined ? { before: b.batch } : {}),
            ...(a !== undefined && run.state === 'success' ? { after: a.batch } : {}),
          };
        }),
      };
      if (run.state === 'failed') {
        const tasks = await s.store.listTaskInstances(DAG, [d]);
        const failed = tasks.find((t) => t.state === 'failed');
        report.failure =
          failed === undefined ? 'a task failed' : `${failed.taskId} failed${failed.error ? `: ${failed.error}` : ''}`;
      }
      reports.push(report);
    }
  } finally {
    await s.close();
  }
  out.write(`${renderReport(reports)}\n`);
  const failed = reports.filter((r) => r.state === 'failed');
  const deviating = reports.flatMap((r) =>
    r.columns.filter((c) => c.after !== undefined && c.speed !== undefined && c.after !== c.speed),
  ).length;
  out.write(
    `${days.length - failed.length} of ${days.length} day(s) recalculated in ${duration(Date.now() - started)}` +
      `${totalEvents > 0 ? ` (${totalEvents.toLocaleString('en-US')} events in the lake)` : ''}; ` +
      `${deviating === 0 ? 'speed equalled batch in every column' : `${deviating} cell(s) where speed deviates from batch`}\n`,
  );
  for (const f of failed) out.write(`failed: ${dayText(f.day)}: ${f.failure}\n`);
  return failed.length > 0 ? 1 : 0;
}

/** The discrepancy report as an aligned table. */
function renderReport(reports: readonly DayReport[]): string {
  const rows: string[][] = [['day', 'column', 'speed', 'batch before', 'batch after', 'speed - after']];
  for (const r of reports) {
    for (const c of r.columns) {
      const diff = c.speed !== undefined && c.after !== undefined ? c.speed - c.after : undefined;
      rows.push([
        dayText(r.day),
        c.column,
        figure(c.column, c.speed),
        figure(c.column, c.before),
        r.state === 'failed' ? 'FAILED' : figure(c.column, c.after),
        figure(c.column, diff),
      ]);
    }
  }
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] as string).length))) ?? [];
  return rows
    .map((row) =>
      row.map((cell, i) => (i < 2 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  '),
    )
    .join('\n');
}
