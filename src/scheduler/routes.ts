/**
 * The scheduler's REST API, shaped like Airflow's stable REST API (`/api/v1` there, `/v1` here,
 * snake_case fields): list DAGs, trigger a run for a logical date, read runs and their task
 * instances, clear task instances (with downstream) for a window, and read alerts. Every route
 * needs the admin token.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { formatTimestamp, ReckonError } from '../events/index.ts';
import type { DagRunRecord, RunType, SchedulerStore, TaskInstanceRecord } from '../store/index.ts';
import { isTick } from './schedule.ts';
import type { Scheduler } from './scheduler.ts';

/** Options of {@link schedulerRoutes}. */
export interface SchedulerRoutesOptions {
  /** Knows the DAGs; it need not be running (another process may run the tries). */
  scheduler: Scheduler;
  store: SchedulerStore;
  adminAccess?: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
}

const isoOrNull = (t: number | null): string | null => (t === null ? null : formatTimestamp(t));
const DAY_MS = 86_400_000;
/** The longest window one request recalculates. */
const MAX_WINDOW_DAYS = 366;

/** A run as Airflow's API shows a DAG run. */
export function runJson(r: DagRunRecord): Record<string, unknown> {
  return {
    dag_id: r.dagId,
    dag_run_id: r.runId,
    logical_date: isoOrNull(r.logicalDate),
    data_interval_start: isoOrNull(r.intervalStart),
    data_interval_end: isoOrNull(r.intervalEnd),
    run_type: r.runType,
    state: r.state,
    queued_at: isoOrNull(r.queuedAt),
    start_date: isoOrNull(r.startedAt),
    end_date: isoOrNull(r.endedAt),
    clear_count: r.clearCount,
    pending_clear: r.pendingClear,
  };
}

/** A task instance as Airflow's API shows one. */
export function taskJson(t: TaskInstanceRecord): Record<string, unknown> {
  return {
    dag_id: t.dagId,
    task_id: t.taskId,
    logical_date: isoOrNull(t.logicalDate),
    state: t.state,
    try_number: t.tryNumber,
    max_tries: t.maxTries,
    pool: t.pool,
    start_date: isoOrNull(t.startedAt),
    end_date: isoOrNull(t.endedAt),
    duration: t.durationMs === null ? null : t.durationMs / 1000,
    next_try_at: isoOrNull(t.nextTryAt),
    hostname: t.owner,
    error: t.error,
    // A waiting sensor (between pokes, or poking again): what it waits for as of its last poke, and since when.
    waiting_for: t.waitingFor,
    waiting_since: t.waitingFor === null ? null : isoOrNull(t.firstPokeAt),
  };
}

class BadRequest extends Error {}

/** Parses a date field: RFC 3339, a UTC date (`2026-11-21`) or epoch ms. */
export function parseDateField(name: string, raw: unknown): number {
  let ms = Number.NaN;
  if (typeof raw === 'number' && Number.isSafeInteger(raw)) ms = raw;
  else if (typeof raw === 'string') {
    if (/^\d{4}-\d{2}-\d{2}$/.test(raw)) ms = Date.parse(`${raw}T00:00:00.000Z`);
    else if (/^\d{4}-\d{2}-\d{2}T/.test(raw) && /(Z|[+-]\d{2}:\d{2})$/.test(raw)) ms = Date.parse(raw);
  }
  if (!Number.isFinite(ms))
    throw new BadRequest(
      `${name}: expected an RFC 3339 time with zone, a UTC date like 2026-11-21 or epoch ms, got ${JSON.stringify(raw)}`,
    );
  return ms;
}

/** Registers the routes (see the file comment). */
export const schedulerRoutes: FastifyPluginAsync<SchedulerRoutesOptions> = async (app, o) => {
  const { scheduler, store } = o;
  if (o.adminAccess !== undefined) app.addHook('onRequest', o.adminAccess);
  app.setErrorHandler(async (err, _request, reply) => {
    if (err instanceof BadRequest) return reply.code(400).send({ error: 'bad request', message: err.message });
    if (err instanceof ReckonError) {
      const status = err.code === 'RECKON_SCHEDULER_UNKNOWN_DAG' ? 404 : err.retriable ? 503 : 400;
      return reply.code(status).send({ error: err.code, message: err.message });
    }
    return reply.code(500).send({ error: 'internal', message: err instanceof Error ? err.message : String(err) });
  });

  app.get('/v1/dags', async () => ({
    dags: scheduler.dags.map((d) => ({
      dag_id: d.id,
      schedule_interval: d.schedule.expression,
      max_active_runs: d.maxActiveRuns,
      catchup: d.catchup,
      start_date: d.startDate === undefined ? null : isoOrNull(d.startDate),
      tasks: d.tasks.map((t) => ({
        task_id: t.id,
        upstream_task_ids: t.upstream,
        kind: t.poke !== undefined ? 'sensor' : 'task',
        retries: t.retries,
        pool: t.pool,
        sla_ms: t.slaMs ?? null,
        execution_timeout_ms: t.executionTimeoutMs ?? null,
      })),
    })),
    total_entries: scheduler.dags.length,
  }));

  app.post<{ Params: { dagId: string }; Body: unknown }>('/v1/dags/:dagId/runs', async (request, reply) => {
    const dag = scheduler.dag(request.params.dagId);
    const body = (request.body ?? {}) as Record<string, unknown>;
    if (typeof body !== 'object' || Array.isArray(body)) throw new BadRequest('body: expected a JSON object');
    const logicalDate = parseDateField('logicalDate', body.logicalDate ?? body.logical_date);
    if (!isTick(dag.schedule, logicalDate))
      throw new BadRequest(
        `logicalDate: ${isoOrNull(logicalDate)} is not a tick of ${dag.id}'s schedule ${dag.schedule.expression} (a run covers one interval, e.g. 2026-11-21 for @daily)`,
      );
    const { created, run } = await scheduler.trigger(dag.id, logicalDate);
    if (!created)
      return reply.code(409).send({
        error: 'conflict',
        message: `${dag.id} already has run ${run.runId} for ${isoOrNull(logicalDate)} (state ${run.state}); clear it to rerun`,
        dag_run: runJson(run),
      });
    return reply.code(200).send(runJson(run));
  });

  app.get<{ Params: { dagId: string }; Querystring: Record<string, string | undefined> }>(
    '/v1/dags/:dagId/runs',
    async (request) => {
      const dag = scheduler.dag(request.params.dagId);
      const q = request.query;
      const limit = q.limit === undefined ? 100 : Number(q.limit);
      if (!Number.isSafeInteger(limit) || limit < 1 || limit > 10_000)
        throw new BadRequest('limit: expected 1 to 10000');
      const runs = await store.listRuns({
        dagId: dag.id,
        ...(q.state !== undefined ? { states: [q.state as DagRunRecord['state']] } : {}),
        ...(q.run_type !== undefined ? { runType: q.run_type as RunType } : {}),
        ...(q.logical_date_gte !== undefined ? { from: parseDateField('logical_date_gte', q.logical_date_gte) } : {}),
        ...(q.logical_date_lt !== undefined ? { to: parseDateField('logical_date_lt', q.logical_date_lt) } : {}),
        limit,
      });
      return { dag_runs: runs.map(runJson), total_entries: runs.length };
    },
  );

  const runOf = async (dagId: string, runId: string): Promise<DagRunRecord | undefined> => {
    scheduler.dag(dagId);
    return store.getRun(dagId, runId);
  };

  app.get<{ Params: { dagId: string; runId: string } }>('/v1/dags/:dagId/runs/:runId', async (request, reply) => {
    const run = await runOf(request.params.dagId, request.params.runId);
    if (run === undefined)
      return reply
        .code(404)
        .send({ error: 'not found', message: `${request.params.dagId} has no run ${request.params.runId}` });
    return runJson(run);
  });

  app.get<{ Params: { dagId: string; runId: string } }>(
    '/v1/dags/:dagId/runs/:runId/taskInstances',
    async (request, reply) => {
      const run = await runOf(request.params.dagId, request.params.runId);
      if (run === undefined)
        return reply
          .code(404)
          .send({ error: 'not found', message: `${request.params.dagId} has no run ${request.params.runId}` });
      const tasks = await store.listTaskInstances(run.dagId, [run.logicalDate]);
      return { task_instances: tasks.map(taskJson), total_entries: tasks.length };
    },
  );

  app.post<{ Params: { dagId: string }; Body: unknown }>('/v1/dags/:dagId/clearTaskInstances', async (request) => {
    const dag = scheduler.dag(request.params.dagId);
    const body = (request.body ?? {}) as Record<string, unknown>;
    const from = parseDateField('start_date', body.start_date);
    const to = parseDateField('end_date', body.end_date);
    if (to < from) throw new BadRequest('end_date: must not be before start_date');
    const taskIds = body.task_ids;
    if (taskIds !== undefined && (!Array.isArray(taskIds) || taskIds.length !== 1 || typeof taskIds[0] !== 'string'))
      throw new BadRequest('task_ids: expected one task id in a list, e.g. ["recalculate"]');
    // end_date is inclusive, as in Airflow.
    const runs = await scheduler.clear(dag.id, from, to + 1, taskIds?.[0] as string | undefined, {
      downstream: body.include_downstream === true,
    });
    return { dag_runs: runs.map(runJson), total_entries: runs.length };
  });

  // Duration history: every finished try of the DAG's tasks, for trends and a Gantt view.
  app.get<{ Params: { dagId: string }; Querystring: Record<string, string | undefined> }>(
    '/v1/dags/:dagId/taskTries',
    async (request) => {
      const dag = scheduler.dag(request.params.dagId);
      const q = request.query;
      const limit = q.limit === undefined ? 1000 : Number(q.limit);
      if (!Number.isSafeInteger(limit) || limit < 1 || limit > 100_000)
        throw new BadRequest('limit: expected 1 to 100000');
      const tries = await store.listTries({
        dagId: dag.id,
        ...(q.task_id !== undefined ? { taskId: q.task_id } : {}),
        limit,
      });
      return {
        task_tries: tries.map((t) => ({
          task_id: t.taskId,
          logical_date: isoOrNull(t.logicalDate),
          try_number: t.tryNumber,
          state: t.state,
          start_date: isoOrNull(t.startedAt),
          end_date: isoOrNull(t.endedAt),
          duration: t.durationMs / 1000,
          hostname: t.owner,
          error: t.error,
        })),
        total_entries: tries.length,
      };
    },
  );

  /** A window of whole past UTC days, `from` and `to` inclusive, as [start, end). */
  const windowOf = (fromRaw: unknown, toRaw: unknown): { start: number; end: number } => {
    const day = (name: string, raw: unknown) => {
      if (typeof raw !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(raw))
        throw new BadRequest(`${name}: expected a UTC day like 2026-11-01, got ${JSON.stringify(raw)}`);
      return parseDateField(name, raw);
    };
    const start = day('from', fromRaw);
    const end = day('to', toRaw) + DAY_MS;
    if (end <= start) throw new BadRequest('to: must not be before from');
    if (end - start > MAX_WINDOW_DAYS * DAY_MS)
      throw new BadRequest(`the window is longer than ${MAX_WINDOW_DAYS} days`);
    return { start, end };
  };

  /** One day of a window: its run (if any) and task instances, for progress. */
  const windowState = async (dagId: string, start: number, end: number) => {
    const runs = await store.listRuns({ dagId, from: start, to: end });
    const tasks = await store.listTaskInstances(
      dagId,
      runs.map((r) => r.logicalDate),
    );
    const ended = (r: DagRunRecord) => (r.state === 'success' || r.state === 'failed') && r.pendingClear === null;
    return {
      dag_id: dagId,
      from: isoOrNull(start),
      to: isoOrNull(end),
      total: runs.length,
      done: runs.filter(ended).length,
      failed: runs.filter((r) => r.state === 'failed' && r.pendingClear === null).length,
      runs: runs.map((r) => ({
        ...runJson(r),
        task_instances: tasks.filter((t) => t.logicalDate === r.logicalDate).map(taskJson),
      })),
    };
  };

  // Recalculate a past window (the dashboard's form, `reckon recalc --detach`): every interval of
  // the DAG in the window runs once more (created, or cleared if it had ended); a scheduler runs them.
  app.post<{ Params: { dagId: string }; Body: unknown }>('/v1/dags/:dagId/recalculations', async (request, reply) => {
    const dag = scheduler.dag(request.params.dagId);
    const body = (request.body ?? {}) as Record<string, unknown>;
    if (typeof body !== 'object' || Array.isArray(body)) throw new BadRequest('body: expected a JSON object');
    const { start, end } = windowOf(body.from, body.to);
    const today = Math.floor(Date.now() / DAY_MS) * DAY_MS;
    if (end > today)
      throw new BadRequest(
        `to: ${isoOrNull(end - DAY_MS)?.slice(0, 10)} has not ended yet; a day can be recalculated once it is over`,
      );
    const plan = await scheduler.rerunWindow(dag.id, start, end);
    return reply.code(202).send({
      dag_id: dag.id,
      from: isoOrNull(start),
      to: isoOrNull(end),
      runs: plan.map((p) => ({ ...runJson(p.run), action: p.action })),
    });
  });

  app.get<{ Params: { dagId: string }; Querystring: Record<string, string | undefined> }>(
    '/v1/dags/:dagId/recalculations',
    async (request) => {
      const dag = scheduler.dag(request.params.dagId);
      const { start, end } = windowOf(request.query.from, request.query.to);
      return windowState(dag.id, start, end);
    },
  );

  app.get<{ Querystring: Record<string, string | undefined> }>('/v1/alerts', async (request) => {
    const alerts = await store.listAlerts({
      ...(request.query.kind !== undefined ? { kind: request.query.kind } : {}),
      limit: 1000,
    });
    return {
      alerts: alerts.map((a) => ({
        id: a.key,
        kind: a.kind,
        source: a.source,
        message: a.message,
        details: a.details,
        created_at: isoOrNull(a.createdAt),
        state: a.state,
        attempts: a.attempts,
        delivered_at: isoOrNull(a.deliveredAt),
        last_error: a.lastError,
      })),
    };
  });
};
