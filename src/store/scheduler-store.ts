/**
 * The scheduler's state in SQLite or PostgreSQL: the same statements in both dialects over a
 * {@link SqlRunner}. Every change is one transaction and every change of a row is guarded by the
 * state it was seen in, so several scheduler processes on one PostgreSQL never run one try twice.
 */
import { resolve } from 'node:path';
import { ReckonError } from '../events/index.ts';
import { openPostgresPool } from './postgres-database.ts';
import type { AlertRecord, NewAlert } from './alert-store.ts';
import type {
  ClaimedTask,
  DagPlanView,
  DagRunRecord,
  DagRunState,
  FinishTry,
  LateArrivalClears,
  NewDagRun,
  NewTaskInstance,
  RunChange,
  RunFilter,
  RunType,
  SchedulerStore,
  SchedulerSummary,
  SlaMiss,
  TaskChange,
  TaskInstanceRecord,
  TaskState,
  TaskTryRecord,
} from './scheduler-types.ts';
import { insertAlert, SqlAlertStore } from './alert-store.ts';
import { openSqliteDatabase } from './sqlite-database.ts';
import {
  LOCK,
  num,
  numOrNull,
  postgresRunner,
  type Row,
  type SqlRunner,
  type SqlTransaction,
  sqliteRunner,
  strOrNull,
} from './sql-runner.ts';

const RUN_COLUMNS =
  'dag_id, run_id, logical_date, run_type, interval_start, interval_end, state, max_active, queued_at, started_at, ended_at, clear_count, pending_clear';

function runOf(r: Row): DagRunRecord {
  return {
    dagId: String(r.dag_id),
    runId: String(r.run_id),
    logicalDate: num(r.logical_date),
    runType: r.run_type as RunType,
    intervalStart: num(r.interval_start),
    intervalEnd: num(r.interval_end),
    state: r.state as DagRunState,
    maxActive: num(r.max_active),
    queuedAt: num(r.queued_at),
    startedAt: numOrNull(r.started_at),
    endedAt: numOrNull(r.ended_at),
    clearCount: num(r.clear_count),
    pendingClear:
      r.pending_clear === null || r.pending_clear === undefined ? null : JSON.parse(String(r.pending_clear)),
  };
}

const TASK_COLUMNS =
  'ti.dag_id, ti.logical_date, ti.task_id, ti.task_order, ti.state, ti.try_number, ti.max_tries, ti.retries, ti.pool, ti.sla_ms, ti.next_try_at, ti.first_poke_at, ti.started_at, ti.ended_at, ti.duration_ms, ti.owner, ti.heartbeat_at, ti.error, ti.waiting_for';

function taskOf(r: Row): TaskInstanceRecord {
  return {
    dagId: String(r.dag_id),
    logicalDate: num(r.logical_date),
    taskId: String(r.task_id),
    taskOrder: num(r.task_order),
    state: r.state as TaskState,
    tryNumber: num(r.try_number),
    maxTries: num(r.max_tries),
    retries: num(r.retries),
    pool: String(r.pool),
    slaMs: numOrNull(r.sla_ms),
    nextTryAt: numOrNull(r.next_try_at),
    firstPokeAt: numOrNull(r.first_poke_at),
    startedAt: numOrNull(r.started_at),
    endedAt: numOrNull(r.ended_at),
    durationMs: numOrNull(r.duration_ms),
    owner: strOrNull(r.owner),
    heartbeatAt: numOrNull(r.heartbeat_at),
    error: strOrNull(r.error),
    waitingFor: strOrNull(r.waiting_for),
  };
}

const TASK_KEY = 'dag_id = ? AND logical_date = ? AND task_id = ?';

/** Fields a clear resets: the instance is as new, with room for its retries again. */
const CLEAR_SET = `state = 'none', next_try_at = NULL, first_poke_at = NULL, started_at = NULL, ended_at = NULL,
  duration_ms = NULL, owner = NULL, heartbeat_at = NULL, error = NULL, waiting_for = NULL, max_tries = try_number + retries + 1`;

async function requestClearIn(
  tx: SqlTransaction,
  dagId: string,
  logicalDates: readonly number[],
  taskIds: readonly string[],
): Promise<DagRunRecord[]> {
  const out: DagRunRecord[] = [];
  // Date order, as the planner locks a DAG's runs.
  for (const ld of [...logicalDates].sort((a, b) => a - b)) {
    const [row] = await tx.all(
      `SELECT ${RUN_COLUMNS} FROM sched_dag_runs WHERE dag_id = ? AND logical_date = ? ${LOCK}`,
      [dagId, ld],
    );
    if (row === undefined) continue;
    const run = runOf(row);
    const pending = [...new Set([...(run.pendingClear ?? []), ...taskIds])];
    await tx.run('UPDATE sched_dag_runs SET pending_clear = ? WHERE dag_id = ? AND logical_date = ?', [
      JSON.stringify(pending),
      dagId,
      ld,
    ]);
    out.push({ ...run, pendingClear: pending });
  }
  return out;
}

function checkRun(run: NewDagRun): void {
  const ints = [run.logicalDate, run.intervalStart, run.intervalEnd, run.maxActive];
  if (!ints.every(Number.isSafeInteger) || run.intervalStart >= run.intervalEnd || run.maxActive < 1) {
    throw new ReckonError(
      'RECKON_SCHEDULER_BAD_RUN',
      `run ${run.runId} of ${run.dagId}: interval [${run.intervalStart}, ${run.intervalEnd}) or max active ${run.maxActive} is not valid`,
    );
  }
}

class SqlSchedulerStore extends SqlAlertStore implements SchedulerStore {
  readonly dialect: 'sqlite' | 'postgres';
  readonly #db: SqlRunner;

  constructor(db: SqlRunner) {
    super(db);
    this.#db = db;
    this.dialect = db.dialect;
  }

  syncDag(dagId: string, maxActiveRuns: number, now: number): Promise<void> {
    return this.#db.transaction(async (tx) => {
      await tx.run(
        `INSERT INTO sched_dags (dag_id, max_active_runs, updated_at) VALUES (?, ?, ?)
         ON CONFLICT (dag_id) DO UPDATE SET max_active_runs = excluded.max_active_runs, updated_at = excluded.updated_at`,
        [dagId, maxActiveRuns, now],
      );
    });
  }

  syncPools(pools: Readonly<Record<string, number>>): Promise<void> {
    return this.#db.transaction(async (tx) => {
      // Name order, as claims lock them: no deadlock between a starting and a claiming scheduler.
      for (const [name, slots] of Object.entries(pools).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
        await tx.run(
          'INSERT INTO sched_pools (name, slots) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET slots = excluded.slots',
          [name, slots],
        );
      }
    });
  }

  createRun(
    run: NewDagRun,
    tasks: readonly NewTaskInstance[],
    now: number,
  ): Promise<{ created: boolean; run: DagRunRecord }> {
    checkRun(run);
    return this.#db.transaction(async (tx) => {
      const inserted = await tx.all(
        `INSERT INTO sched_dag_runs (dag_id, logical_date, run_id, run_type, interval_start, interval_end, state, max_active, queued_at)
         VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?) ON CONFLICT (dag_id, logical_date) DO NOTHING RETURNING run_id`,
        [run.dagId, run.logicalDate, run.runId, run.runType, run.intervalStart, run.intervalEnd, run.maxActive, now],
      );
      if (inserted.length > 0) {
        for (const t of tasks) {
          await tx.run(
            `INSERT INTO sched_task_instances (dag_id, logical_date, task_id, task_order, state, max_tries, retries, pool, sla_ms)
             VALUES (?, ?, ?, ?, 'none', ?, ?, ?, ?)`,
            [run.dagId, run.logicalDate, t.taskId, t.taskOrder, t.retries + 1, t.retries, t.pool, t.slaMs],
          );
        }
      }
      const [row] = await tx.all(`SELECT ${RUN_COLUMNS} FROM sched_dag_runs WHERE dag_id = ? AND logical_date = ?`, [
        run.dagId,
        run.logicalDate,
      ]);
      return { created: inserted.length > 0, run: runOf(row as Row) };
    });
  }

  getRun(dagId: string, runIdOrLogicalDate: string | number): Promise<DagRunRecord | undefined> {
    return this.#db.transaction(async (tx) => {
      const [row] =
        typeof runIdOrLogicalDate === 'number'
          ? await tx.all(`SELECT ${RUN_COLUMNS} FROM sched_dag_runs WHERE dag_id = ? AND logical_date = ?`, [
              dagId,
              runIdOrLogicalDate,
            ])
          : await tx.all(`SELECT ${RUN_COLUMNS} FROM sched_dag_runs WHERE dag_id = ? AND run_id = ?`, [
              dagId,
              runIdOrLogicalDate,
            ]);
      return row === undefined ? undefined : runOf(row);
    });
  }

  listRuns(filter: RunFilter = {}): Promise<DagRunRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.dagId !== undefined) {
      where.push('dag_id = ?');
      params.push(filter.dagId);
    }
    if (filter.states !== undefined && filter.states.length > 0) {
      where.push(`state IN (${filter.states.map(() => '?').join(', ')})`);
      params.push(...filter.states);
    }
    if (filter.runType !== undefined) {
      where.push('run_type = ?');
      params.push(filter.runType);
    }
    if (filter.from !== undefined) {
      where.push('logical_date >= ?');
      params.push(filter.from);
    }
    if (filter.to !== undefined) {
      where.push('logical_date < ?');
      params.push(filter.to);
    }
    params.push(filter.limit ?? 1_000_000);
    return this.#db.transaction(async (tx) =>
      (
        await tx.all(
          `SELECT ${RUN_COLUMNS} FROM sched_dag_runs ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
           ORDER BY logical_date, dag_id LIMIT ?`,
          params,
        )
      ).map(runOf),
    );
  }

  lastScheduledLogicalDate(dagId: string): Promise<number | undefined> {
    return this.#db.transaction(async (tx) => {
      const [row] = await tx.all<{ last: unknown }>(
        `SELECT max(logical_date) AS last FROM sched_dag_runs WHERE dag_id = ? AND run_type = 'scheduled'`,
        [dagId],
      );
      return row?.last === null || row?.last === undefined ? undefined : Number(row.last);
    });
  }

  listTaskInstances(dagId: string, logicalDates?: readonly number[]): Promise<TaskInstanceRecord[]> {
    return this.#db.transaction(async (tx) => {
      if (logicalDates === undefined) {
        return (
          await tx.all(
            `SELECT ${TASK_COLUMNS} FROM sched_task_instances ti WHERE ti.dag_id = ? ORDER BY ti.logical_date, ti.task_order`,
            [dagId],
          )
        ).map(taskOf);
      }
      const out: TaskInstanceRecord[] = [];
      for (const ld of logicalDates) {
        const rows = await tx.all(
          `SELECT ${TASK_COLUMNS} FROM sched_task_instances ti WHERE ti.dag_id = ? AND ti.logical_date = ? ORDER BY ti.task_order`,
          [dagId, ld],
        );
        out.push(...rows.map(taskOf));
      }
      return out;
    });
  }

  listTries(filter: {
    dagId?: string;
    taskId?: string;
    logicalDate?: number;
    limit?: number;
  }): Promise<TaskTryRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    for (const [column, value] of [
      ['dag_id', filter.dagId],
      ['task_id', filter.taskId],
      ['logical_date', filter.logicalDate],
    ] as const) {
      if (value !== undefined) {
        where.push(`${column} = ?`);
        params.push(value);
      }
    }
    params.push(filter.limit ?? 1_000_000);
    return this.#db.transaction(async (tx) =>
      (
        await tx.all(
          `SELECT * FROM sched_task_tries ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
           ORDER BY started_at, dag_id, logical_date, task_id, try_number LIMIT ?`,
          params,
        )
      ).map((r) => ({
        dagId: String(r.dag_id),
        logicalDate: num(r.logical_date),
        taskId: String(r.task_id),
        tryNumber: num(r.try_number),
        state: r.state as TaskTryRecord['state'],
        startedAt: num(r.started_at),
        endedAt: num(r.ended_at),
        durationMs: num(r.duration_ms),
        owner: String(r.owner),
        error: strOrNull(r.error),
      })),
    );
  }

  planDag(dagId: string, plan: (view: DagPlanView) => { runs: RunChange[]; tasks: TaskChange[] }): Promise<void> {
    return this.#db.transaction(async (tx) => {
      await tx.run(
        'INSERT INTO sched_dags (dag_id, max_active_runs, updated_at) VALUES (?, 1, 0) ON CONFLICT (dag_id) DO NOTHING',
        [dagId],
      );
      await tx.all(`SELECT dag_id FROM sched_dags WHERE dag_id = ? ${LOCK}`, [dagId]);
      // The runs locked too: a clear requested (requestClear, markLateArrivals) while this plan
      // applies an earlier one waits, or the plan would drop it with the pending clear it saw.
      const runs = (
        await tx.all(
          `SELECT ${RUN_COLUMNS} FROM sched_dag_runs
           WHERE dag_id = ? AND (state IN ('queued', 'running') OR pending_clear IS NOT NULL) ORDER BY logical_date ${LOCK}`,
          [dagId],
        )
      ).map(runOf);
      const tasks = (
        await tx.all(
          `SELECT ${TASK_COLUMNS} FROM sched_task_instances ti JOIN sched_dag_runs r
             ON r.dag_id = ti.dag_id AND r.logical_date = ti.logical_date
           WHERE ti.dag_id = ? AND (r.state IN ('queued', 'running') OR r.pending_clear IS NOT NULL)
           ORDER BY ti.logical_date, ti.task_order`,
          [dagId],
        )
      ).map(taskOf);
      const activeByType: Partial<Record<RunType, number>> = {};
      for (const r of await tx.all<{ run_type: RunType; n: unknown }>(
        `SELECT run_type, count(*) AS n FROM sched_dag_runs WHERE dag_id = ? AND state = 'running' GROUP BY run_type`,
        [dagId],
      )) {
        activeByType[r.run_type] = Number(r.n);
      }
      const changes = plan({ dagId, runs, tasks, activeByType });
      // Clears first: the other changes of the same plan were computed on the cleared instances.
      for (const c of changes.runs) {
        if (c.clear === undefined) continue;
        const [run] = await tx.all(
          `SELECT logical_date FROM sched_dag_runs WHERE dag_id = ? AND run_id = ? AND state = ?`,
          [dagId, c.runId, c.from],
        );
        if (run === undefined) continue;
        for (const taskId of c.clear) {
          await tx.run(`UPDATE sched_task_instances SET ${CLEAR_SET} WHERE ${TASK_KEY} AND state <> 'running'`, [
            dagId,
            run.logical_date,
            taskId,
          ]);
        }
        await tx.run(`UPDATE sched_dag_runs SET clear_count = clear_count + 1 WHERE dag_id = ? AND run_id = ?`, [
          dagId,
          c.runId,
        ]);
      }
      for (const t of changes.tasks) {
        await tx.run(
          `UPDATE sched_task_instances SET state = ?, error = COALESCE(?, error), ended_at = COALESCE(?, ended_at),
             next_try_at = CASE WHEN ? = 'scheduled' THEN NULL ELSE next_try_at END
           WHERE ${TASK_KEY} AND state = ?`,
          [t.state, t.error ?? null, t.endedAt ?? null, t.state, dagId, t.logicalDate, t.taskId, t.from],
        );
      }
      for (const c of changes.runs) {
        await tx.run(
          `UPDATE sched_dag_runs SET state = ?,
             started_at = CASE WHEN ? = 1 THEN ? ELSE started_at END,
             ended_at = CASE WHEN ? = 1 THEN ? ELSE ended_at END,
             pending_clear = CASE WHEN ? = 1 THEN NULL ELSE pending_clear END
           WHERE dag_id = ? AND run_id = ? AND state = ?`,
          [
            c.state,
            c.startedAt !== undefined ? 1 : 0,
            c.startedAt ?? null,
            c.endedAt !== undefined ? 1 : 0,
            c.endedAt ?? null,
            c.dropPendingClear === true ? 1 : 0,
            dagId,
            c.runId,
            c.from,
          ],
        );
      }
    });
  }

  claimTasks(
    owner: string,
    now: number,
    limit: number,
    filter: { runIds?: readonly string[] } = {},
  ): Promise<ClaimedTask[]> {
    if (limit <= 0) return Promise.resolve([]);
    return this.#db.transaction(async (tx) => {
      // Pool rows locked in name order: claims of one pool serialise, so slots are never overbooked.
      const pools = new Map<string, number>();
      for (const p of await tx.all<{ name: string; slots: unknown }>(
        `SELECT name, slots FROM sched_pools ORDER BY name ${LOCK}`,
      )) {
        pools.set(p.name, Number(p.slots));
      }
      const used = new Map<string, number>();
      for (const r of await tx.all<{ pool: string; n: unknown }>(
        `SELECT pool, count(*) AS n FROM sched_task_instances WHERE state = 'running' GROUP BY pool`,
      )) {
        used.set(r.pool, Number(r.n));
      }
      const runFilter =
        filter.runIds !== undefined ? `AND r.run_id IN (${filter.runIds.map(() => '?').join(', ') || 'NULL'})` : '';
      const candidates = await tx.all(
        `SELECT ${TASK_COLUMNS}, r.run_id, r.interval_start, r.interval_end, r.clear_count
         FROM sched_task_instances ti JOIN sched_dag_runs r ON r.dag_id = ti.dag_id AND r.logical_date = ti.logical_date
         WHERE ti.state = 'scheduled' AND r.state = 'running' ${runFilter}
         ORDER BY ti.logical_date, ti.dag_id, ti.task_order LIMIT ?
         ${this.dialect === 'postgres' ? 'FOR UPDATE OF ti SKIP LOCKED' : ''}`,
        [...(filter.runIds ?? []), Math.max(limit * 8, 64)],
      );
      const claimed: ClaimedTask[] = [];
      for (const c of candidates) {
        if (claimed.length >= limit) break;
        const t = taskOf(c);
        const slots = pools.get(t.pool) ?? 1;
        const busy = used.get(t.pool) ?? 0;
        if (busy >= slots) continue;
        const changed = await tx.run(
          `UPDATE sched_task_instances SET state = 'running', try_number = try_number + 1, owner = ?, heartbeat_at = ?,
             started_at = ?, ended_at = NULL, duration_ms = NULL, next_try_at = NULL
           WHERE ${TASK_KEY} AND state = 'scheduled'`,
          [owner, now, now, t.dagId, t.logicalDate, t.taskId],
        );
        if (changed === 0) continue;
        used.set(t.pool, busy + 1);
        claimed.push({
          ...t,
          state: 'running',
          tryNumber: t.tryNumber + 1,
          owner,
          heartbeatAt: now,
          startedAt: now,
          runId: String(c.run_id),
          intervalStart: num(c.interval_start),
          intervalEnd: num(c.interval_end),
          clearCount: num(c.clear_count),
        });
      }
      return claimed;
    });
  }

  heartbeat(owner: string, now: number): Promise<void> {
    return this.#db.transaction(async (tx) => {
      await tx.run(`UPDATE sched_task_instances SET heartbeat_at = ? WHERE owner = ? AND state = 'running'`, [
        now,
        owner,
      ]);
    });
  }

  listRunning(): Promise<TaskInstanceRecord[]> {
    return this.#db.transaction(async (tx) =>
      (await tx.all(`SELECT ${TASK_COLUMNS} FROM sched_task_instances ti WHERE ti.state = 'running'`)).map(taskOf),
    );
  }

  finishTry(f: FinishTry): Promise<boolean> {
    return this.#db.transaction(async (tx) => {
      const key = [f.dagId, f.logicalDate, f.taskId];
      const [row] = await tx.all(
        `SELECT ${TASK_COLUMNS} FROM sched_task_instances ti
         WHERE ti.dag_id = ? AND ti.logical_date = ? AND ti.task_id = ? AND ti.state = 'running' AND ti.owner = ? AND ti.try_number = ? ${LOCK}`,
        [...key, f.owner, f.tryNumber],
      );
      if (row === undefined) return false;
      const t = taskOf(row);
      const startedAt = t.startedAt ?? f.now;
      const duration = Math.max(0, f.now - startedAt);
      const o = f.outcome;
      if (o.state === 'up_for_reschedule') {
        await tx.run(
          `UPDATE sched_task_instances SET state = 'up_for_reschedule', try_number = try_number - 1, next_try_at = ?,
             first_poke_at = COALESCE(first_poke_at, ?), started_at = NULL, owner = NULL, heartbeat_at = NULL,
             waiting_for = ?
           WHERE ${TASK_KEY}`,
          [o.nextTryAt, o.firstPokeAt, o.waitingFor ?? null, ...key],
        );
      } else {
        const error = o.state === 'success' ? null : o.error;
        await tx.run(
          `UPDATE sched_task_instances SET state = ?, ended_at = ?, duration_ms = ?, error = ?, next_try_at = ?, heartbeat_at = NULL,
             waiting_for = NULL
           WHERE ${TASK_KEY}`,
          [o.state, f.now, duration, error, o.state === 'up_for_retry' ? o.nextTryAt : null, ...key],
        );
        await tx.run(
          `INSERT INTO sched_task_tries (dag_id, logical_date, task_id, try_number, state, started_at, ended_at, duration_ms, owner, error)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
          [
            ...key,
            f.tryNumber,
            o.state === 'success' ? 'success' : 'failed',
            startedAt,
            f.now,
            duration,
            f.owner,
            error,
          ],
        );
      }
      for (const a of f.alerts ?? []) await insertAlert(tx, a, f.now);
      return true;
    });
  }

  recordSlaMisses(now: number, alertOf: (miss: SlaMiss) => NewAlert): Promise<SlaMiss[]> {
    return this.#db.transaction(async (tx) => {
      const rows = await tx.all(
        `SELECT ti.dag_id, ti.logical_date, ti.task_id, ti.state, r.interval_end + ti.sla_ms AS deadline, r.clear_count
         FROM sched_task_instances ti JOIN sched_dag_runs r ON r.dag_id = ti.dag_id AND r.logical_date = ti.logical_date
         WHERE ti.sla_ms IS NOT NULL AND r.run_type = 'scheduled' AND r.interval_end + ti.sla_ms < ?
           AND (ti.state <> 'success' OR ti.ended_at > r.interval_end + ti.sla_ms)
           AND NOT EXISTS (SELECT 1 FROM sched_sla_misses m
             WHERE m.dag_id = ti.dag_id AND m.logical_date = ti.logical_date AND m.task_id = ti.task_id)`,
        [now],
      );
      const misses: SlaMiss[] = [];
      for (const r of rows) {
        const miss: SlaMiss = {
          dagId: String(r.dag_id),
          logicalDate: num(r.logical_date),
          taskId: String(r.task_id),
          deadline: num(r.deadline),
          state: r.state as TaskState,
        };
        const inserted = await tx.all(
          `INSERT INTO sched_sla_misses (dag_id, logical_date, task_id, clear_count, deadline, detected_at)
           VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING task_id`,
          [miss.dagId, miss.logicalDate, miss.taskId, num(r.clear_count), miss.deadline, now],
        );
        if (inserted.length === 0) continue;
        await insertAlert(tx, alertOf(miss), now);
        misses.push(miss);
      }
      return misses;
    });
  }

  requestClear(dagId: string, logicalDates: readonly number[], taskIds: readonly string[]): Promise<DagRunRecord[]> {
    return this.#db.transaction((tx) => requestClearIn(tx, dagId, logicalDates, taskIds));
  }

  markLateArrivals(arrivals: readonly LateArrivalClears[], now: number): Promise<string[]> {
    return this.#db.transaction(async (tx) => {
      const fresh: string[] = [];
      for (const a of arrivals) {
        const rows = await tx.all(
          `INSERT INTO sched_late_arrivals (arrival_key, hour_start, handled_at) VALUES (?, ?, ?)
           ON CONFLICT (arrival_key) DO NOTHING RETURNING arrival_key`,
          [a.key, a.hourStart, now],
        );
        if (rows.length === 0) continue;
        fresh.push(a.key);
        for (const c of a.clears) await requestClearIn(tx, c.dagId, [c.logicalDate], c.taskIds);
      }
      return fresh;
    });
  }

  summary(): Promise<SchedulerSummary> {
    return this.#db.transaction(async (tx) => ({
      runs: (await tx.all(`SELECT dag_id, state, count(*) AS n FROM sched_dag_runs GROUP BY dag_id, state`)).map(
        (r) => ({
          dagId: String(r.dag_id),
          state: r.state as DagRunState,
          count: num(r.n),
        }),
      ),
      tasks: (
        await tx.all(
          `SELECT dag_id, task_id, state, count(*) AS n FROM sched_task_instances GROUP BY dag_id, task_id, state`,
        )
      ).map((r) => ({
        dagId: String(r.dag_id),
        taskId: String(r.task_id),
        state: r.state as TaskState,
        count: num(r.n),
      })),
      tries: (
        await tx.all(
          `SELECT t.dag_id, t.task_id, t.state, count(*) AS n, sum(t.duration_ms) AS ms,
             (SELECT l.duration_ms FROM sched_task_tries l WHERE l.dag_id = t.dag_id AND l.task_id = t.task_id AND l.state = t.state
              ORDER BY l.ended_at DESC LIMIT 1) AS last_ms
           FROM sched_task_tries t GROUP BY t.dag_id, t.task_id, t.state`,
        )
      ).map((r) => ({
        dagId: String(r.dag_id),
        taskId: String(r.task_id),
        state: r.state as 'success' | 'failed',
        count: num(r.n),
        seconds: num(r.ms) / 1000,
        lastSeconds: num(r.last_ms) / 1000,
      })),
      slaMisses: (
        await tx.all(`SELECT dag_id, task_id, count(*) AS n FROM sched_sla_misses GROUP BY dag_id, task_id`)
      ).map((r) => ({ dagId: String(r.dag_id), taskId: String(r.task_id), count: num(r.n) })),
      alerts: (await tx.all(`SELECT kind, state, count(*) AS n FROM alerts GROUP BY kind, state`)).map((r) => ({
        kind: String(r.kind),
        state: r.state as AlertRecord['state'],
        count: num(r.n),
      })),
    }));
  }

  close(): Promise<void> {
    return this.#db.close();
  }
}

/**
 * Open SQLite runners of this process by file. Stores of one file share one connection: its
 * transactions queue in process. Two connections would deadlock here, as one would wait
 * synchronously (busy_timeout) for a lock that the other holds across an await.
 */
const sqliteRunners = new Map<string, { runner: SqlRunner; refs: number }>();

/** Opens the scheduler's state in a SQLite file (`<dataDir>/reckon.sqlite` is shared with the other stores). */
export async function openSqliteSchedulerStore(path: string): Promise<SchedulerStore> {
  const key = path === ':memory:' ? `:memory:${sqliteRunners.size}` : resolve(path);
  let entry = sqliteRunners.get(key);
  if (entry === undefined) {
    entry = { runner: sqliteRunner(openSqliteDatabase(path)), refs: 0 };
    sqliteRunners.set(key, entry);
  }
  entry.refs++;
  const shared = entry;
  let closed = false;
  return new SqlSchedulerStore({
    dialect: 'sqlite',
    transaction: (work) => shared.runner.transaction(work),
    async close() {
      if (closed) return;
      closed = true;
      if (--shared.refs === 0) {
        sqliteRunners.delete(key);
        await shared.runner.close();
      }
    },
  });
}

/** Opens the scheduler's state in PostgreSQL (applying missing migrations). */
export async function openPostgresSchedulerStore(connection: string): Promise<SchedulerStore> {
  return new SqlSchedulerStore(postgresRunner(await openPostgresPool(connection)));
}
