/**
 * `reckon scheduler` (the scheduler as its own process, supervised by `reckon start`) and
 * `reckon dags list|trigger|backfill|clear|runs`. The verbs work on the scheduler's state in the
 * configured store; `trigger --wait`, `backfill` and `clear` also run the runs they made in this
 * process (beside any scheduler already running: tries are never run twice, but each runs with
 * the configuration of the process that claimed it) and show progress; with `--watch` they only
 * show the progress of the running scheduler.
 */
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { type ReckonConfig, statsRulesOf } from '../config/index.ts';
import { formatTimestamp, type SchemaStore } from '../events/index.ts';
import { businessChecks } from '../monitor/index.ts';
import {
  AlertDispatcher,
  type AlertSink,
  lakeLateData,
  logAlertSink,
  PIPELINE_POOLS,
  pipelineDags,
  Scheduler,
  type SchedulerOptions,
  webhookAlertSink,
} from '../scheduler/index.ts';
import {
  type DagRunRecord,
  openPostgresSchedulerStore,
  openSqliteSchedulerStore,
  type SchedulerStore,
} from '../store/index.ts';
import { type StatsStore } from '../stats/index.ts';
import { UsageError } from './errors.ts';
import { LAKE_INPUT_TOPICS, lazyLogEnds } from './lake-input.ts';
import { createProgress } from './progress.ts';
import { publishStatus } from '../workers/index.ts';
import { exitWhenOrphaned, openStores, statusDirOf } from './process.ts';

const DAY = 86_400_000;

/** The scheduler's state in the configured mode: the SQLite file under the data directory, or PostgreSQL. */
export function openSchedulerStore(config: ReckonConfig): Promise<SchedulerStore> {
  return config.postgresUrl !== undefined
    ? openPostgresSchedulerStore(config.postgresUrl)
    : openSqliteSchedulerStore(join(resolve(config.dataDir), 'reckon.sqlite'));
}

/** Everything a scheduler of the pipeline needs, opened. */
export interface Scheduling {
  scheduler: Scheduler;
  store: SchedulerStore;
  stats: StatsStore;
  schemas: SchemaStore;
  sinks: AlertSink[];
  close(): Promise<void>;
}

/** Opens the stores and builds a scheduler over the built-in DAGs (not started). */
export async function openScheduling(
  config: ReckonConfig,
  options: Partial<SchedulerOptions> & { startDate?: number } = {},
): Promise<Scheduling> {
  const { schemas, stats } = await openStores(config);
  const store = await openSchedulerStore(config);
  const lakeDir = join(resolve(config.dataDir), 'lake');
  const startOfToday = Math.floor(Date.now() / DAY) * DAY;
  const log = lazyLogEnds(config);
  const dags = pipelineDags({
    lakeDir,
    log,
    topics: LAKE_INPUT_TOPICS,
    stats,
    rules: statsRulesOf(config),
    checks: businessChecks({ stats, store, discrepancyThreshold: config.discrepancyThreshold }),
    startDate: options.startDate ?? config.schedulerStartDate ?? startOfToday,
    lakeRetentionDays: config.lakeRetentionDays,
    allowedLatenessMs: config.allowedLatenessMs,
    pokeIntervalMs: config.schedulerPokeIntervalMs,
  });
  const scheduler = new Scheduler({ store, dags, pools: PIPELINE_POOLS, lateData: lakeLateData(lakeDir), ...options });
  const sinks: AlertSink[] = [logAlertSink(), ...config.alertWebhooks.map((url) => webhookAlertSink(url))];
  return {
    scheduler,
    store,
    stats,
    schemas,
    sinks,
    async close() {
      await store.close();
      await stats.close();
      await schemas.close();
      await log.close();
    },
  };
}

/** Runs the scheduler and the alert dispatcher until SIGTERM (or until orphaned, when supervised). */
export async function runScheduler(config: ReckonConfig, supervised: boolean | number = false): Promise<void> {
  if (supervised !== false) exitWhenOrphaned(supervised === true ? undefined : supervised);
  const s = await openScheduling(config, {
    onEvent: (m) => process.stderr.write(`reckon scheduler: ${m}\n`),
  });
  const dispatcher = new AlertDispatcher({
    store: s.store,
    sinks: s.sinks,
    owner: s.scheduler.owner,
    onEvent: (m) => process.stderr.write(`reckon scheduler: ${m}\n`),
  });
  s.scheduler.start();
  dispatcher.start();
  publishStatus(statusDirOf(config), 'scheduler', () => ({ running_tries: s.scheduler.runningCount }));
  process.once('SIGTERM', () => {
    Promise.all([s.scheduler.stop(), dispatcher.stop()])
      .then(() => s.close())
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  });
}

const isoOrDash = (t: number | null): string => (t === null ? '-' : formatTimestamp(t));

/** `2026-11-21` or an RFC 3339 time; `inclusiveEnd`: a date names its whole day, a time itself. */
function parseWhen(flag: string, text: string, inclusiveEnd = false): number {
  const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(text);
  const t = dateOnly
    ? Date.parse(`${text}T00:00:00.000Z`)
    : /^\d{4}-\d{2}-\d{2}T.*(Z|[+-]\d{2}:\d{2})$/.test(text)
      ? Date.parse(text)
      : Number.NaN;
  if (!Number.isFinite(t))
    throw new UsageError(
      `${flag} ${JSON.stringify(text)}: expected a UTC date like 2026-11-01 or a time like 2026-11-01T05:00:00Z`,
    );
  return inclusiveEnd ? t + (dateOnly ? DAY : 1) : t;
}

/** Runs `runs` in this process until each has ended, with a progress bar; returns them as they ended. */
async function runToEnd(
  config: ReckonConfig,
  runs: DagRunRecord[],
  phase: string,
  execute = true,
): Promise<DagRunRecord[]> {
  const s = await openScheduling(config, {
    runIds: [...new Set(runs.map((r) => r.runId))],
    pollMs: 200,
    onEvent: (m) => {
      if (/failed|taken over/.test(m)) process.stderr.write(`\n${m}\n`);
    },
  });
  const dispatcher = new AlertDispatcher({ store: s.store, sinks: s.sinks, owner: s.scheduler.owner });
  const progress = createProgress();
  const keys = new Set(runs.map((r) => `${r.dagId} ${r.runId}`));
  const ended = (r: DagRunRecord) => (r.state === 'success' || r.state === 'failed') && r.pendingClear === null;
  try {
    if (execute) s.scheduler.start();
    for (;;) {
      const now = (await s.store.listRuns({})).filter((r) => keys.has(`${r.dagId} ${r.runId}`));
      const done = now.filter(ended).length;
      progress(phase, done, keys.size);
      if (execute) await dispatcher.deliverDue();
      if (done === keys.size) return now;
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    if (execute) {
      await s.scheduler.stop();
      await dispatcher.deliverDue().catch(() => undefined);
    }
    await s.close();
  }
}

function summary(runs: DagRunRecord[]): string {
  const failed = runs.filter((r) => r.state === 'failed');
  const lines = failed.map(
    (r) => `failed: ${r.dagId} ${isoOrDash(r.logicalDate)} (reckon dags runs ${r.dagId} --state failed)`,
  );
  return [...lines, `${runs.length - failed.length} of ${runs.length} runs succeeded`].join('\n');
}

interface DagFlags {
  data?: string;
  config?: string;
}

/** Adds `reckon dags …` and `reckon scheduler` to the program. */
export function registerDags(
  program: Command,
  configOf: (flags: DagFlags) => ReckonConfig,
  withServerOptions: (cmd: Command) => Command,
  supervisedOf: (flag: boolean | string | undefined) => boolean | number,
): void {
  withServerOptions(
    program
      .command('scheduler')
      .description('run the scheduler and alert delivery in this process (reckon start runs it for you, supervised)')
      .option('--supervised [pid]', 'exit when the supervising process (by default the parent) is gone'),
  ).action(async (flags: DagFlags & { supervised?: boolean | string }) => {
    await runScheduler(configOf(flags), supervisedOf(flags.supervised));
  });

  const dags = program.command('dags').description('list, trigger, backfill, clear and inspect DAG runs');
  const opts = (cmd: Command) =>
    cmd
      .option('--data <dir>', 'data directory (env RECKON_DATA_DIR, default ./data)')
      .option('--config <file>', 'config file (env RECKON_CONFIG)');

  opts(dags.command('list').description('the DAGs, their schedules and tasks, and their latest run')).action(
    async (flags: DagFlags) => {
      const s = await openScheduling(configOf(flags));
      try {
        for (const d of s.scheduler.dags) {
          const last = (await s.store.listRuns({ dagId: d.id })).at(-1);
          process.stdout.write(
            `${d.id.padEnd(20)} ${d.schedule.expression.padEnd(8)} ${d.tasks.map((t) => t.id).join(' -> ')}\n` +
              `${''.padEnd(20)} latest run: ${last === undefined ? 'none' : `${isoOrDash(last.logicalDate)} ${last.state}`}\n`,
          );
        }
      } finally {
        await s.close();
      }
    },
  );

  opts(
    dags
      .command('trigger')
      .description('create a run for a logical date (like Airflow: it covers the interval starting there)')
      .argument('<dag>', 'DAG id')
      .requiredOption('--logical-date <date>', 'a UTC date (2026-11-21) or hour (2026-11-21T05:00:00Z)')
      .option('--wait', 'run it here and wait for it to end'),
  ).action(async (dagId: string, flags: DagFlags & { logicalDate: string; wait?: boolean }) => {
    const config = configOf(flags);
    const s = await openScheduling(config);
    let run: DagRunRecord;
    let upstream: DagRunRecord[];
    try {
      const r = await s.scheduler.trigger(dagId, parseWhen('--logical-date', flags.logicalDate));
      run = r.run;
      upstream = r.upstream;
      for (const u of r.upstream) process.stdout.write(`upstream: ${u.dagId} ${u.runId} (${u.state})\n`);
      process.stdout.write(`${r.created ? 'created' : 'exists'}: ${dagId} ${run.runId} (${run.state})\n`);
    } finally {
      await s.close();
    }
    if (flags.wait) {
      const ended = await runToEnd(config, [...upstream, run], dagId);
      process.stdout.write(`${summary(ended)}\n`);
      if (ended.some((r) => r.state === 'failed')) process.exitCode = 1;
    }
  });

  opts(
    dags
      .command('backfill')
      .description('run a DAG (and the DAGs it waits for) for every interval in a range, here, with progress')
      .argument('<dag>', 'DAG id')
      .requiredOption('--from <date>', 'first logical date (UTC date or time)')
      .requiredOption('--to <date>', 'last day or time, inclusive')
      .option('--max-active-runs <n>', 'runs of each DAG in flight at once')
      .option('--watch', 'show progress while the running scheduler (reckon start) runs them; run nothing here')
      .option('--detach', 'only create the runs; a running scheduler runs them'),
  ).action(
    async (
      dagId: string,
      flags: DagFlags & { from: string; to: string; maxActiveRuns?: string; detach?: boolean; watch?: boolean },
    ) => {
      const config = configOf(flags);
      const from = parseWhen('--from', flags.from);
      const to = parseWhen('--to', flags.to, true);
      if (to <= from) throw new UsageError(`--to ${flags.to} is before --from ${flags.from}`);
      let maxActive: number | undefined;
      if (flags.maxActiveRuns !== undefined) {
        maxActive = Number(flags.maxActiveRuns);
        if (!Number.isSafeInteger(maxActive) || maxActive < 1)
          throw new UsageError(`--max-active-runs ${flags.maxActiveRuns}: expected a positive integer`);
      }
      const s = await openScheduling(config);
      let runs: DagRunRecord[];
      try {
        runs = await s.scheduler.backfill(dagId, from, to, maxActive);
      } finally {
        await s.close();
      }
      const byDag = new Map<string, number>();
      for (const r of runs) byDag.set(r.dagId, (byDag.get(r.dagId) ?? 0) + 1);
      process.stdout.write(
        `backfill ${isoOrDash(from)} .. ${isoOrDash(to)}: ${[...byDag].map(([d, n]) => `${n} runs of ${d}`).join(', ')}\n`,
      );
      if (flags.detach) return;
      const ended = await runToEnd(config, runs, 'backfill', flags.watch !== true);
      process.stdout.write(`${summary(ended)}\n`);
      if (ended.some((r) => r.state === 'failed')) process.exitCode = 1;
    },
  );

  opts(
    dags
      .command('clear')
      .description('rerun a task (and with --downstream everything after it) for the runs in a range')
      .argument('<dag>', 'DAG id')
      .requiredOption('--from <date>', 'first logical date (UTC date or time)')
      .requiredOption('--to <date>', 'last day or time, inclusive')
      .option('--task <id>', 'the task to rerun (default: every task)')
      .option('--downstream', 'also every task after it')
      .option('--watch', 'show progress while the running scheduler reruns them; run nothing here')
      .option('--detach', 'only clear; a running scheduler reruns them'),
  ).action(
    async (
      dagId: string,
      flags: DagFlags & {
        from: string;
        to: string;
        task?: string;
        downstream?: boolean;
        detach?: boolean;
        watch?: boolean;
      },
    ) => {
      const config = configOf(flags);
      const from = parseWhen('--from', flags.from);
      const to = parseWhen('--to', flags.to, true);
      const s = await openScheduling(config);
      let runs: DagRunRecord[];
      try {
        runs = await s.scheduler.clear(dagId, from, to, flags.task, { downstream: flags.downstream === true });
      } finally {
        await s.close();
      }
      process.stdout.write(
        `cleared ${runs.length} runs of ${dagId}: ${runs[0]?.pendingClear?.join(', ') ?? 'none in that range'}\n`,
      );
      if (flags.detach || runs.length === 0) return;
      const ended = await runToEnd(config, runs, 'rerun', flags.watch !== true);
      process.stdout.write(`${summary(ended)}\n`);
      if (ended.some((r) => r.state === 'failed')) process.exitCode = 1;
    },
  );

  opts(
    dags
      .command('runs')
      .description('runs of a DAG with each task state, tries and duration')
      .argument('<dag>', 'DAG id')
      .option('--state <state>', 'queued, running, success or failed')
      .option('--limit <n>', 'latest runs shown', '20'),
  ).action(async (dagId: string, flags: DagFlags & { state?: string; limit: string }) => {
    const s = await openScheduling(configOf(flags));
    try {
      s.scheduler.dag(dagId);
      const runs = (
        await s.store.listRuns({ dagId, ...(flags.state ? { states: [flags.state as DagRunRecord['state']] } : {}) })
      ).slice(-Number(flags.limit));
      const tasks = await s.store.listTaskInstances(
        dagId,
        runs.map((r) => r.logicalDate),
      );
      for (const r of runs) {
        process.stdout.write(`${isoOrDash(r.logicalDate)} ${r.runType.padEnd(9)} ${r.state.padEnd(7)} ${r.runId}\n`);
        for (const t of tasks.filter((x) => x.logicalDate === r.logicalDate)) {
          const took = t.durationMs === null ? '' : ` ${(t.durationMs / 1000).toFixed(2)} s`;
          const waiting =
            t.waitingFor !== null ? `  waiting since ${isoOrDash(t.firstPokeAt)} for ${t.waitingFor}` : '';
          process.stdout.write(
            `  ${t.taskId.padEnd(22)} ${t.state.padEnd(17)} try ${t.tryNumber}/${t.maxTries}${took}${t.error ? `  ${t.error}` : ''}${waiting}\n`,
          );
        }
      }
      if (runs.length === 0)
        process.stdout.write(`no runs of ${dagId}${flags.state ? ` in state ${flags.state}` : ''}\n`);
    } finally {
      await s.close();
    }
  });
}
