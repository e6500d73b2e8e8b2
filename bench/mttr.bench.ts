/**
 * mttr.week: the time to recover a week. A simulated week of about 1M events a day is already in
 * the lake (sealed, the log landed); `reckon recalc` recalculates its seven days through the
 * scheduler, from the command to corrected serving data. Baseline: a plain DuckDB scan (count,
 * sum, distinct ids) of the same week's Parquet files, in the same run.
 *
 * Also printed (stderr): each day's task tries (sensor, recalculation, checks) from the
 * scheduler's store, and where one day's recalculation spends its time (its steps, in-process).
 * BENCH_MTTR_EVENTS_PER_DAY sets the size (default 1 million).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lakeFiles, openBatchDatabase, runRecalculation } from '../src/batch/index.ts';
import { openEmbeddedLog } from '../src/log/index.ts';
import { DEFAULT_SIMULATION } from '../src/sim/index.ts';
import { openSqliteStatsStore } from '../src/stats/index.ts';
import { openSqliteSchedulerStore } from '../src/store/index.ts';
import { generateDay } from './batch.bench.ts';
import type { BenchResult } from './harness.ts';
import { lakeHourFiles } from '../src/lake/index.ts';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const DAYS = 7;
const WEEK = Date.UTC(2026, 10, 2);
const ROOT = new URL('../', import.meta.url).pathname;

const dayText = (t: number) => new Date(t).toISOString().slice(0, 10);

/** Runs `reckon recalc` over the week as a user would; its wall time, ms. */
function recalcCommand(data: string): Promise<{ ms: number; stdout: string; status: number | null }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('RECKON_')));
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(ROOT, 'src/cli/main.ts'),
        'recalc',
        '--from',
        dayText(WEEK),
        '--to',
        dayText(WEEK + (DAYS - 1) * DAY),
        '--data',
        data,
      ],
      { cwd: ROOT, env: { ...env, RECKON_SCHEDULER_START_DATE: '2099-01-01' } },
    );
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', () => undefined);
    child.once('exit', (status) => resolve({ ms: performance.now() - t0, stdout, status }));
  });
}

/** The MTTR benchmark. */
export async function mttrBenchmarks(): Promise<BenchResult[]> {
  const perDay = Number(process.env.BENCH_MTTR_EVENTS_PER_DAY ?? 1_000_000);
  const dir = mkdtempSync(join(tmpdir(), 'reckon-bench-mttr-'));
  const data = join(dir, 'data');
  const lake = join(data, 'lake');
  mkdirSync(lake, { recursive: true });
  try {
    process.stderr.write(`mttr.week: generating ${DAYS} days of ${perDay.toLocaleString('en-US')} events...\n`);
    for (let d = 0; d < DAYS; d++)
      await generateDay(lake, perDay, { dayStart: WEEK + d * DAY, tag: `d${d}-`, label: `mttr.week day ${d + 1}` });
    // The lake is complete: every hour of the week sealed, and the log (empty) landed.
    mkdirSync(join(lake, '_state'), { recursive: true });
    const last = WEEK + DAYS * DAY - HOUR;
    writeFileSync(
      join(lake, '_state', 'sealed.jsonl'),
      `${JSON.stringify({ date: dayText(last), hour: 23, hourStartMs: last, sealedAt: Date.now(), ends: {} })}\n`,
    );
    const log = await openEmbeddedLog({ dir: join(data, 'log') });
    for (const name of ['emissions', 'clicks']) await log.createTopic({ name, partitions: 4 });
    await log.close();

    const files = ['emissions', 'clicks'].flatMap((t) =>
      lakeFiles(lake, t, WEEK - HOUR, WEEK + DAYS * DAY, lakeHourFiles),
    );
    const db = await openBatchDatabase();
    const s0 = performance.now();
    const scanned = await db.connection.runAndReadAll(
      `SELECT count(*)::BIGINT, sum(log_offset)::HUGEINT, count(DISTINCT id)::BIGINT
       FROM read_parquet([${files.map((f) => `'${f}'`).join(', ')}], union_by_name = true)`,
    );
    const scanMs = performance.now() - s0;
    db.close();
    const events = Number(scanned.getRows()[0]?.[0]);

    const run = await recalcCommand(data);
    if (run.status !== 0 || !/7 of 7 day\(s\) recalculated/.test(run.stdout))
      throw new Error(`mttr.week: reckon recalc failed (exit ${run.status}):\n${run.stdout.slice(-3000)}`);
    process.stderr.write(
      `mttr.week: reckon recalc of ${DAYS} days (${events.toLocaleString('en-US')} events) took ${(run.ms / 1000).toFixed(1)} s; ` +
        `plain scan ${(scanMs / 1000).toFixed(1)} s\n`,
    );

    // Per day: the tries of each task, from the scheduler's store.
    const store = await openSqliteSchedulerStore(join(data, 'reckon.sqlite'));
    try {
      const tries = await store.listTries({ dagId: 'recalculate-daily' });
      for (let d = 0; d < DAYS; d++) {
        const day = WEEK + d * DAY;
        const mine = tries.filter((t) => t.logicalDate === day);
        const span =
          mine.length === 0 ? 0 : Math.max(...mine.map((t) => t.endedAt)) - Math.min(...mine.map((t) => t.startedAt));
        process.stderr.write(
          `mttr.week ${dayText(day)}: ${(span / 1000).toFixed(1)} s from first to last try; ${mine
            .map((t) => `${t.taskId} ${(t.durationMs / 1000).toFixed(2)} s`)
            .join(', ')}\n`,
        );
      }
    } finally {
      await store.close();
    }

    // Where one day's recalculation goes (in-process, into a fresh store).
    const stats = await openSqliteStatsStore(join(dir, 'probe.sqlite'));
    try {
      const parts: string[] = [];
      const one = await runRecalculation({
        listHourFiles: lakeHourFiles,
        lakeDir: lake,
        store: stats,
        from: WEEK,
        to: WEEK + DAY,
        rules: DEFAULT_SIMULATION.rules,
        onStepTimed: (part, ms) => parts.push(`${part} ${ms.toFixed(0)}`),
      });
      process.stderr.write(
        `mttr.week one day in-process: compute ${one.computeMs.toFixed(0)} ms, write ${one.writeMs.toFixed(0)} ms (${one.rows} rows); steps (ms): ${parts.join(', ')}\n`,
      );
    } finally {
      await stats.close();
    }
    return [
      {
        name: 'mttr.week',
        description: `reckon recalc of a simulated week (${events.toLocaleString('en-US')} events, ~${perDay.toLocaleString('en-US')} a day, already in the lake): 7 recalculate-daily runs through the scheduler, from the command to corrected serving data, in seconds (target <= 300); baseline: a plain DuckDB count/sum/distinct scan of the same week's Parquet files`,
        unit: 's',
        value: Number((run.ms / 1000).toFixed(1)),
        baseline: Number((scanMs / 1000).toFixed(2)),
        ratio: Number((run.ms / scanMs).toFixed(2)),
      },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
