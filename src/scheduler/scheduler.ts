/**
 * The scheduler: creates due runs (with catch-up), plans each DAG's runs, hands runnable task
 * instances to this process within pool and parallelism limits, runs them with timeouts and
 * retries, heartbeats them, takes over the instances of schedulers that died, records SLA misses
 * and reruns what late data made stale. All state is in the store, so any number of schedulers
 * may share one PostgreSQL database, and a restarted one resumes where the last left off.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { formatTimestamp, ReckonError } from '../events/index.ts';
import { processAlive } from '../log/index.ts';
import type {
  ClaimedTask,
  DagRunRecord,
  NewAlert,
  NewTaskInstance,
  RunType,
  SchedulerStore,
  TaskInstanceRecord,
  TryOutcome,
} from '../store/index.ts';
import { type Dag, type DagTask, downstreamOf, retryDelayOf, type TaskRunContext } from './dag.ts';
import { planDagRuns } from './planner.ts';
import { dataIntervalOf, dueLogicalDates, formatDuration, isTick, nextTickAfter } from './schedule.ts';

/** A late arrival the lake recorded, ready to act on (its events are committed in the lake). */
export interface LateData {
  /** Unique per record of the lake (topic, partition, offsets, hour). */
  key: string;
  hourStart: number;
  /** When the lake recorded it. */
  at: number;
}

/** Options of a {@link Scheduler}. */
export interface SchedulerOptions {
  store: SchedulerStore;
  dags: readonly Dag[];
  /** Pool slots; `default` is added with 16 slots when missing. */
  pools?: Readonly<Record<string, number>>;
  /** Task instances this process runs at once. Default 8. */
  parallelism?: number;
  /** Default `Date.now`. */
  clock?: () => number;
  /** Default 1 s. */
  pollMs?: number;
  /** Default 5 s. */
  heartbeatMs?: number;
  /** A running instance whose owner has not heartbeated for this long is taken as dead. Default 60 s. */
  zombieAfterMs?: number;
  /** Late data to act on (new records since the last call are enough; repeats are ignored). */
  lateData?: () => Promise<LateData[]>;
  /**
   * The late arrivals of an hour are acted on once the newest of them is this old, so that one
   * burst (an emission and its clicks land in different topics and flushes) causes one rerun.
   * Default 5 s.
   */
  lateSettleMs?: number;
  /** Only these runs are worked on (a backfill run by the CLI). */
  runIds?: readonly string[];
  /** One line per notable event (runs created, tries ending, takeovers). */
  onEvent?: (message: string) => void;
}

const MAX_CATCH_UP_RUNS = 10_000;
/** Tries to record the end of a try before it is left to the takeover of lost tries. */
const FINISH_ATTEMPTS = 6;

/** Name of this process as a task owner: host, pid and a nonce for this scheduler. */
function ownerName(): string {
  return `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
}

/** Whether the process named in `owner` is known dead: same host and no such pid. */
export function ownerProcessGone(owner: string): boolean {
  const [host, pidText] = owner.split(':');
  if (host !== hostname() || pidText === undefined) return false;
  const pid = Number(pidText);
  if (!Number.isSafeInteger(pid) || pid === process.pid) return false;
  return !processAlive(pid);
}

/** The run id Airflow would give: `<type>__<logical date ISO>`. */
export function runIdOf(type: RunType, logicalDate: number): string {
  return `${type}__${new Date(logicalDate).toISOString()}`;
}

/** The task instances of a new run of `dag`. */
export function taskInstancesOf(dag: Dag): NewTaskInstance[] {
  return dag.tasks.map((t, i) => ({
    taskId: t.id,
    taskOrder: i,
    retries: t.retries,
    pool: t.pool,
    slaMs: t.slaMs ?? null,
  }));
}

/** Runs DAGs; see the file comment. */
export class Scheduler {
  readonly owner = ownerName();
  readonly #o: Required<Omit<SchedulerOptions, 'lateData' | 'runIds' | 'onEvent' | 'pools'>> &
    Pick<SchedulerOptions, 'lateData' | 'runIds' | 'onEvent'>;
  readonly #dags: Map<string, Dag>;
  readonly #pools: Record<string, number>;
  readonly #running = new Map<string, { promise: Promise<void>; abort: AbortController }>();
  #synced = false;
  #loop: Promise<void> | undefined;
  #stopping = false;
  #wake: (() => void) | undefined;
  #heartbeatTimer: NodeJS.Timeout | undefined;
  /** Late-data keys already recorded in the store (by any scheduler): not looked at again. */
  readonly #lateSeen = new Set<string>();

  constructor(options: SchedulerOptions) {
    this.#o = {
      parallelism: 8,
      clock: Date.now,
      pollMs: 1000,
      heartbeatMs: 5000,
      zombieAfterMs: 60_000,
      lateSettleMs: 5000,
      ...options,
    };
    this.#dags = new Map(options.dags.map((d) => [d.id, d]));
    if (this.#dags.size !== options.dags.length) {
      throw new ReckonError('RECKON_SCHEDULER_BAD_DAG', 'two DAGs share an id');
    }
    this.#pools = { default: 16, ...options.pools };
    for (const dag of options.dags) {
      for (const t of dag.tasks) {
        if (!(t.pool in this.#pools)) {
          throw new ReckonError(
            'RECKON_SCHEDULER_BAD_DAG',
            `DAG ${dag.id}: task ${t.id} uses pool ${JSON.stringify(t.pool)}, which is not configured (pools: ${Object.keys(this.#pools).join(', ')})`,
          );
        }
      }
    }
  }

  /** The DAGs this scheduler knows. */
  get dags(): readonly Dag[] {
    return [...this.#dags.values()];
  }

  /** Task instances this process is running now. */
  get runningCount(): number {
    return this.#running.size;
  }

  #event(message: string): void {
    this.#o.onEvent?.(message);
  }

  async #sync(): Promise<void> {
    if (this.#synced) return;
    const now = this.#o.clock();
    for (const dag of this.#dags.values()) await this.#o.store.syncDag(dag.id, dag.maxActiveRuns, now);
    await this.#o.store.syncPools(this.#pools);
    this.#synced = true;
  }

  /** One pass: due runs, takeovers, planning, SLA misses, late data, and starting what may run. */
  async tick(): Promise<void> {
    await this.#sync();
    const now = this.#o.clock();
    if (this.#o.runIds === undefined) await this.#createDueRuns(now);
    await this.#reapDeadOwners(now);
    if (this.#o.lateData !== undefined) await this.#handleLateData(now);
    for (const dag of this.#dags.values()) {
      await this.#o.store.planDag(dag.id, (view) => planDagRuns(dag, view, now));
    }
    await this.#o.store.recordSlaMisses(now, (m) => ({
      key: `sla_miss:${m.dagId}:${formatTimestamp(m.logicalDate)}:${m.taskId}`,
      kind: 'sla_miss',
      source: 'scheduler',
      message: `SLA missed: ${m.dagId}.${m.taskId} for ${formatTimestamp(m.logicalDate)} had not succeeded by ${formatTimestamp(m.deadline)} (state ${m.state})`,
      details: {
        dagId: m.dagId,
        taskId: m.taskId,
        logicalDate: formatTimestamp(m.logicalDate),
        deadline: formatTimestamp(m.deadline),
        state: m.state,
      },
    }));
    await this.#launch();
  }

  async #createDueRuns(now: number): Promise<void> {
    for (const dag of this.#dags.values()) {
      if (dag.startDate === undefined) continue;
      const last = await this.#o.store.lastScheduledLogicalDate(dag.id);
      let due = dueLogicalDates(dag.schedule, now, last, dag.startDate);
      if (!dag.catchup && due.length > 1) due = due.slice(-1);
      if (due.length > MAX_CATCH_UP_RUNS) due = due.slice(-MAX_CATCH_UP_RUNS);
      for (const ld of due) {
        const { created } = await this.createRun(dag.id, ld, 'scheduled');
        if (created) this.#event(`${dag.id}: run for ${formatTimestamp(ld)} is due`);
      }
    }
  }

  /** Creates a run of `dagId` for `logicalDate` (a tick of its schedule); an existing one is returned as it is. */
  createRun(
    dagId: string,
    logicalDate: number,
    runType: RunType,
    maxActive?: number,
  ): ReturnType<SchedulerStore['createRun']> {
    const dag = this.dag(dagId);
    return createDagRun(this.#o.store, dag, logicalDate, runType, this.#o.clock(), maxActive);
  }

  /**
   * Creates backfill runs of `dagId` for every interval inside [from, to), and of the DAGs it
   * waits for (`upstreamDags`) inside the same range; at most `maxActive` runs of each DAG's
   * backfill are active at once. Returns the runs (existing ones as they are), upstream DAGs first.
   */
  async backfill(dagId: string, from: number, to: number, maxActive?: number): Promise<DagRunRecord[]> {
    const dag = this.dag(dagId);
    const runs = [];
    for (const id of [...dag.upstreamDags, dagId]) {
      const d = this.dag(id);
      const dates = logicalDatesWithin(d, from, to);
      if (id === dagId && dates.length === 0) {
        throw new ReckonError(
          'RECKON_SCHEDULER_EMPTY_RANGE',
          `no interval of ${dagId} (${d.schedule.expression}) lies inside ${formatTimestamp(from)} .. ${formatTimestamp(to)}`,
        );
      }
      for (const ld of dates) runs.push((await this.createRun(id, ld, 'backfill', maxActive ?? d.maxActiveRuns)).run);
    }
    return runs;
  }

  /**
   * A manual run of `dagId` for `logicalDate` (the REST API, the dashboard and `reckon dags
   * trigger` use this), with the runs of the DAGs it waits for (`upstreamDags`) inside its
   * interval, as a backfill makes them: a triggered run never waits for runs nothing creates.
   */
  async trigger(
    dagId: string,
    logicalDate: number,
  ): Promise<{ created: boolean; run: DagRunRecord; upstream: DagRunRecord[] }> {
    const dag = this.dag(dagId);
    const { end } = dataIntervalOf(dag.schedule, logicalDate);
    const upstream: DagRunRecord[] = [];
    for (const id of dag.upstreamDags)
      for (const ld of logicalDatesWithin(this.dag(id), logicalDate, end))
        upstream.push((await this.createRun(id, ld, 'manual')).run);
    return { ...(await this.createRun(dagId, logicalDate, 'manual')), upstream };
  }

  /**
   * Recalculates every interval of `dagId` inside [from, to) once more, whatever ran before: a
   * backfill run is created where none exists, an ended run is cleared (all its tasks rerun),
   * and a queued or running one is left to finish (it reads the lake as it is then). Safe to
   * repeat. Returns each run with what was done to it, in logical-date order.
   */
  async rerunWindow(
    dagId: string,
    from: number,
    to: number,
  ): Promise<{ run: DagRunRecord; action: 'created' | 'cleared' | 'in progress' }[]> {
    const dag = this.dag(dagId);
    const dates = logicalDatesWithin(dag, from, to);
    if (dates.length === 0)
      throw new ReckonError(
        'RECKON_SCHEDULER_EMPTY_RANGE',
        `no interval of ${dagId} (${dag.schedule.expression}) lies inside ${formatTimestamp(from)} .. ${formatTimestamp(to)}`,
      );
    const existing = new Map((await this.#o.store.listRuns({ dagId, from, to })).map((r) => [r.logicalDate, r]));
    const toClear = dates.filter((ld) => {
      const r = existing.get(ld);
      return r !== undefined && (r.state === 'success' || r.state === 'failed') && r.pendingClear === null;
    });
    const cleared = new Map(
      (
        await this.#o.store.requestClear(
          dagId,
          toClear,
          dag.tasks.map((t) => t.id),
        )
      ).map((r) => [r.logicalDate, r]),
    );
    const out: { run: DagRunRecord; action: 'created' | 'cleared' | 'in progress' }[] = [];
    for (const ld of dates) {
      const c = cleared.get(ld);
      const e = existing.get(ld);
      if (c !== undefined) out.push({ run: c, action: 'cleared' });
      else if (e !== undefined) out.push({ run: e, action: 'in progress' });
      else out.push({ run: (await this.createRun(dagId, ld, 'backfill')).run, action: 'created' });
    }
    return out;
  }

  /**
   * Clears (reruns) `taskId`, and with `downstream` every task after it, in the runs of `dagId`
   * whose logical dates lie in [from, to). A run with a try still running is cleared when it ends.
   */
  async clear(
    dagId: string,
    from: number,
    to: number,
    taskId: string | undefined,
    { downstream = false }: { downstream?: boolean } = {},
  ): Promise<DagRunRecord[]> {
    const dag = this.dag(dagId);
    const tasks =
      taskId === undefined
        ? dag.tasks.map((t) => t.id)
        : downstream
          ? downstreamOf(dag, taskId)
          : [downstreamOf(dag, taskId)[0] as string];
    const runs = await this.#o.store.listRuns({ dagId, from, to });
    return this.#o.store.requestClear(
      dagId,
      runs.map((r) => r.logicalDate),
      tasks,
    );
  }

  /** The DAG with this id, or a `RECKON_SCHEDULER_UNKNOWN_DAG` error listing the known ones. */
  dag(dagId: string): Dag {
    const dag = this.#dags.get(dagId);
    if (dag === undefined) {
      throw new ReckonError(
        'RECKON_SCHEDULER_UNKNOWN_DAG',
        `no DAG ${JSON.stringify(dagId)}; known DAGs: ${[...this.#dags.keys()].join(', ')}`,
      );
    }
    return dag;
  }

  async #reapDeadOwners(now: number): Promise<void> {
    for (const t of await this.#o.store.listRunning()) {
      if (t.owner === null) continue;
      const mine = t.owner === this.owner;
      if (mine && this.#running.has(keyOf(t))) continue;
      const stale = t.heartbeatAt === null || now - t.heartbeatAt > this.#o.zombieAfterMs;
      const dead = mine || stale || ownerProcessGone(t.owner);
      if (!dead) continue;
      const why = mine
        ? 'this scheduler lost track of the try'
        : stale
          ? `its scheduler ${t.owner} sent no heartbeat for ${Math.round((now - (t.heartbeatAt ?? 0)) / 1000)} s`
          : `its scheduler process ${t.owner} died`;
      const dag = this.#dags.get(t.dagId);
      const task = dag?.tasks.find((x) => x.id === t.taskId);
      const taken = await this.#o.store.finishTry({
        dagId: t.dagId,
        logicalDate: t.logicalDate,
        taskId: t.taskId,
        tryNumber: t.tryNumber,
        owner: t.owner,
        now,
        ...this.#failureOf(t, task, `try ${t.tryNumber} was lost: ${why}`, now),
      });
      if (taken)
        this.#event(`${t.dagId}.${t.taskId} ${formatTimestamp(t.logicalDate)}: try ${t.tryNumber} taken over (${why})`);
    }
  }

  async #handleLateData(now: number): Promise<void> {
    const unseen = (await (this.#o.lateData as () => Promise<LateData[]>)()).filter((a) => !this.#lateSeen.has(a.key));
    // An hour's arrivals are acted on together once the newest of them has settled.
    const newest = new Map<number, number>();
    for (const a of unseen) newest.set(a.hourStart, Math.max(newest.get(a.hourStart) ?? a.at, a.at));
    const arrivals = unseen.filter((a) => now - (newest.get(a.hourStart) ?? a.at) >= this.#o.lateSettleMs);
    if (arrivals.length === 0) return;
    const clearsOf = async (a: LateData) => {
      const clears: { dagId: string; logicalDate: number; taskIds: string[] }[] = [];
      for (const dag of this.#dags.values()) {
        if (!dag.rerunOnLateData) continue;
        const runs = await this.#o.store.listRuns({
          dagId: dag.id,
          from: a.hourStart - 32 * 86_400_000,
          to: a.hourStart + 1,
        });
        for (const run of runs) {
          if (!(run.intervalStart <= a.hourStart && a.hourStart < run.intervalEnd)) continue;
          const instances = await this.#o.store.listTaskInstances(dag.id, [run.logicalDate]);
          // A run none of whose tasks has started since its last clear will read the late data anyway.
          const started = instances.some((t) => t.startedAt !== null || t.endedAt !== null);
          if (started)
            clears.push({ dagId: dag.id, logicalDate: run.logicalDate, taskIds: dag.tasks.map((t) => t.id) });
        }
      }
      return clears;
    };
    const withClears = [];
    for (const a of arrivals) withClears.push({ ...a, clears: await clearsOf(a) });
    const fresh = await this.#o.store.markLateArrivals(withClears, now);
    for (const a of arrivals) this.#lateSeen.add(a.key);
    for (const key of fresh) {
      const a = withClears.find((x) => x.key === key);
      for (const c of a?.clears ?? [])
        this.#event(
          `${c.dagId}: late data for ${formatTimestamp(a?.hourStart ?? 0)}, rerunning ${formatTimestamp(c.logicalDate)}`,
        );
    }
  }

  #failureOf(
    t: { dagId: string; logicalDate: number; taskId: string; tryNumber: number; maxTries: number },
    task: DagTask | undefined,
    error: string,
    now: number,
    final = false,
  ): { outcome: TryOutcome; alerts: NewAlert[] } {
    const details = {
      dagId: t.dagId,
      taskId: t.taskId,
      logicalDate: formatTimestamp(t.logicalDate),
      try: t.tryNumber,
      error,
    };
    const at = `${t.dagId}.${t.taskId} for ${formatTimestamp(t.logicalDate)}`;
    if (!final && task !== undefined && t.tryNumber < t.maxTries) {
      const nextTryAt = now + retryDelayOf(task, t.tryNumber);
      return {
        outcome: { state: 'up_for_retry', error, nextTryAt },
        alerts: [
          {
            key: `task_retry:${t.dagId}:${formatTimestamp(t.logicalDate)}:${t.taskId}:${t.tryNumber}`,
            kind: 'task_retry',
            source: 'scheduler',
            message: `${at}: try ${t.tryNumber} of ${t.maxTries} failed, retrying at ${formatTimestamp(nextTryAt)}: ${error}`,
            details: { ...details, nextTryAt: formatTimestamp(nextTryAt) },
          },
        ],
      };
    }
    return {
      outcome: { state: 'failed', error },
      alerts: [
        {
          key: `task_failed:${t.dagId}:${formatTimestamp(t.logicalDate)}:${t.taskId}:${t.tryNumber}`,
          kind: 'task_failed',
          source: 'scheduler',
          message: `${at} failed on try ${t.tryNumber}: ${error}`,
          details,
        },
      ],
    };
  }

  async #launch(): Promise<void> {
    const free = this.#o.parallelism - this.#running.size;
    if (free <= 0 || this.#stopping) return;
    const claimed = await this.#o.store.claimTasks(
      this.owner,
      this.#o.clock(),
      free,
      this.#o.runIds !== undefined ? { runIds: this.#o.runIds } : {},
    );
    for (const t of claimed) {
      const abort = new AbortController();
      const promise = this.#execute(t, abort).finally(() => {
        this.#running.delete(keyOf(t));
        this.#wake?.();
      });
      this.#running.set(keyOf(t), { promise, abort });
    }
  }

  async #execute(t: ClaimedTask, abort: AbortController): Promise<void> {
    const task = this.#dags.get(t.dagId)?.tasks.find((x) => x.id === t.taskId);
    const context: TaskRunContext = {
      dagId: t.dagId,
      taskId: t.taskId,
      runId: t.runId,
      logicalDate: t.logicalDate,
      interval: { start: t.intervalStart, end: t.intervalEnd },
      attempt: t.tryNumber,
      clearCount: t.clearCount,
      signal: abort.signal,
    };
    const finish = async (result: { outcome: TryOutcome; alerts?: NewAlert[] }, note: string): Promise<void> => {
      const now = this.#o.clock();
      const record = () =>
        this.#o.store.finishTry({
          dagId: t.dagId,
          logicalDate: t.logicalDate,
          taskId: t.taskId,
          tryNumber: t.tryNumber,
          owner: this.owner,
          now,
          ...result,
        });
      // A busy or briefly unreachable store must not lose the outcome of a long try; if it stays
      // away, the instance stays running under this owner and is taken over and retried.
      let done = false;
      for (let attempt = 1; ; attempt++) {
        try {
          done = await record();
          break;
        } catch (e) {
          if (attempt >= FINISH_ATTEMPTS) {
            this.#event(
              `${t.dagId}.${t.taskId} ${formatTimestamp(t.logicalDate)}: could not record try ${t.tryNumber}: ${String(e)}`,
            );
            return;
          }
          await new Promise((r) => setTimeout(r, 500 * attempt));
        }
      }
      if (done && result.outcome.state !== 'up_for_reschedule')
        this.#event(`${t.dagId}.${t.taskId} ${formatTimestamp(t.logicalDate)}: try ${t.tryNumber} ${note}`);
    };
    if (task === undefined) {
      await finish(
        this.#failureOf(t, undefined, 'the task is no longer defined in its DAG', this.#o.clock(), true),
        'failed',
      );
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      abort.signal.addEventListener('abort', () => reject(abort.signal.reason), { once: true });
      if (task.executionTimeoutMs !== undefined) {
        timer = setTimeout(
          () =>
            abort.abort(
              new ReckonError(
                'RECKON_SCHEDULER_TIMEOUT',
                `execution timeout: still running after ${task.executionTimeoutMs} ms`,
              ),
            ),
          task.executionTimeoutMs,
        );
      }
    });
    timedOut.catch(() => undefined);
    try {
      if (task.poke !== undefined) {
        const firstPokeAt = t.firstPokeAt ?? t.startedAt ?? this.#o.clock();
        const found = await Promise.race([task.poke(context), timedOut]);
        const now = this.#o.clock();
        const waitingFor = typeof found === 'object' && 'waitingFor' in found ? found.waitingFor : undefined;
        if (found === true || (typeof found === 'object' && found.met))
          await finish({ outcome: { state: 'success' } }, 'succeeded (condition met)');
        else if (typeof found === 'object' && 'never' in found) {
          const error = `sensor cannot be satisfied: ${found.never}`;
          await finish(this.#failureOf(t, task, error, now, true), `failed: ${error}`);
        } else if (now - firstPokeAt >= task.sensorTimeoutMs) {
          const error = `sensor timed out: condition not met ${formatDuration(task.sensorTimeoutMs)} after the first poke${
            waitingFor === undefined ? '' : `; still waiting for ${waitingFor}`
          }`;
          await finish(this.#failureOf(t, task, error, now, true), `failed: ${error}`);
        } else {
          await finish(
            {
              outcome: {
                state: 'up_for_reschedule',
                nextTryAt: now + task.pokeIntervalMs,
                firstPokeAt,
                ...(waitingFor !== undefined ? { waitingFor } : {}),
              },
            },
            '',
          );
        }
      } else {
        await Promise.race([(task.run as (c: TaskRunContext) => Promise<void>)(context), timedOut]);
        await finish({ outcome: { state: 'success' } }, 'succeeded');
      }
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      const failure = this.#failureOf(t, task, error, this.#o.clock());
      await finish(
        failure,
        failure.outcome.state === 'up_for_retry' ? `failed, will retry: ${error}` : `failed: ${error}`,
      );
    } finally {
      clearTimeout(timer);
    }
  }

  /** Waits until the tries this process is running have ended. */
  async drain(): Promise<void> {
    while (this.#running.size > 0) await Promise.allSettled([...this.#running.values()].map((r) => r.promise));
  }

  /** Ticks every `pollMs` (and whenever a try ends) and heartbeats running tries, until {@link stop}. */
  start(): void {
    if (this.#loop !== undefined) return;
    this.#stopping = false;
    this.#heartbeatTimer = setInterval(() => {
      if (this.#running.size > 0) this.#o.store.heartbeat(this.owner, this.#o.clock()).catch(() => undefined);
    }, this.#o.heartbeatMs);
    this.#loop = (async () => {
      while (!this.#stopping) {
        try {
          await this.tick();
        } catch (e) {
          this.#event(`tick failed (retrying): ${e instanceof Error ? e.message : String(e)}`);
        }
        if (this.#stopping) break;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.#o.pollMs);
          this.#wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.#wake = undefined;
      }
    })();
  }

  /**
   * Stops ticking; waits up to `graceMs` for running tries, then aborts them (they fail, and are
   * retried by whichever scheduler runs next).
   */
  async stop(graceMs = 10_000): Promise<void> {
    this.#stopping = true;
    this.#wake?.();
    await this.#loop;
    this.#loop = undefined;
    clearInterval(this.#heartbeatTimer);
    const all = Promise.allSettled([...this.#running.values()].map((r) => r.promise));
    const timer = setTimeout(() => {
      for (const r of this.#running.values())
        r.abort.abort(new ReckonError('RECKON_SCHEDULER_STOPPED', 'the scheduler stopped', { retriable: true }));
    }, graceMs);
    await all;
    clearTimeout(timer);
  }
}

const keyOf = (t: Pick<TaskInstanceRecord, 'dagId' | 'logicalDate' | 'taskId'>): string =>
  `${t.dagId}\u0000${t.logicalDate}\u0000${t.taskId}`;

/** Creates a run of `dag` for `logicalDate` (checked to be a tick of its schedule). */
export function createDagRun(
  store: SchedulerStore,
  dag: Dag,
  logicalDate: number,
  runType: RunType,
  now: number,
  maxActive = dag.maxActiveRuns,
): ReturnType<SchedulerStore['createRun']> {
  const interval = dataIntervalOf(dag.schedule, logicalDate);
  return store.createRun(
    {
      dagId: dag.id,
      runId: runIdOf(runType, logicalDate),
      logicalDate,
      runType,
      intervalStart: interval.start,
      intervalEnd: interval.end,
      maxActive,
    },
    taskInstancesOf(dag),
    now,
  );
}

/** The logical dates of `dag` whose intervals lie inside [from, to). */
export function logicalDatesWithin(dag: Dag, from: number, to: number): number[] {
  const out: number[] = [];
  for (let t = isTick(dag.schedule, from) ? from : nextTickAfter(dag.schedule, from); t < to;) {
    const end = nextTickAfter(dag.schedule, t);
    if (end > to) break;
    out.push(t);
    t = end;
  }
  return out;
}
