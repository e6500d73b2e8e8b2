/**
 * The scheduler on a real PostgreSQL cluster started by the test: three scheduler processes
 * sharing one database split the work and never run one task instance twice, and the store
 * keeps its idempotence promises (runs, tries, SLA misses, alerts, late arrivals) on PostgreSQL,
 * also when several store instances (several pools) call at once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createDagRun, defineDag, planDagRuns, runIdOf } from '../../src/scheduler/index.ts';
import { type NewAlert, openPostgresSchedulerStore, type SchedulerStore } from '../../src/store/index.ts';
import { startPostgres, type TemporaryPostgres } from '../support/postgres.ts';
import { CHILD_T0, SHARED_DAG_ID, SHARED_TASKS, sharedDag } from '../support/scheduler-child-dags.ts';
import { type SchedulerProcess, spawnScheduler } from '../support/scheduler-process.ts';
import { waitFor } from '../support/wait.ts';

const HOUR = 3_600_000;
const CHILD = new URL('../support/scheduler-pg-child.ts', import.meta.url);

describe('Scheduler on PostgreSQL', () => {
  let server: TemporaryPostgres | undefined;
  let admin: pg.Client | undefined;
  const stores: SchedulerStore[] = [];
  let databases = 0;

  /** A fresh database of the cluster. */
  const createDatabase = async (): Promise<string> => {
    const name = `reckon_sched_${databases++}`;
    await admin?.query(`CREATE DATABASE ${name}`);
    const url = new URL(server?.connectionString ?? '');
    url.pathname = `/${name}`;
    return url.toString();
  };
  const open = async (connectionString: string): Promise<SchedulerStore> => {
    const store = await openPostgresSchedulerStore(connectionString);
    stores.push(store);
    return store;
  };

  before(async () => {
    server = await startPostgres();
    admin = new pg.Client(server.connectionString);
    await admin.connect();
  });
  after(async () => {
    for (const s of stores) await s.close();
    await admin?.end();
    await server?.stop();
  });

  it('three scheduler processes on one PostgreSQL never run one task instance twice, and share the work', async () => {
    const db = await createDatabase();
    const store = await open(db);
    const client = new pg.Client(db);
    await client.connect();
    const children: SchedulerProcess[] = [];
    try {
      // No unique constraint on (logical date, task): a second execution would show as a second row.
      await client.query(`CREATE TABLE executions (
        seq bigserial, dag_id text NOT NULL, logical_date bigint NOT NULL, task_id text NOT NULL,
        attempt integer NOT NULL, pid integer NOT NULL)`);
      const dag = defineDag(sharedDag(async () => undefined));
      for (let i = 0; i < 3; i++) children.push(await spawnScheduler(CHILD, [db]));
      const outputs = () => children.map((c) => `--- pid ${c.pid}\n${c.output()}`).join('\n');

      // The runs appear once all three poll, so that every process competes for every run.
      const RUNS = 40;
      const dates = Array.from({ length: RUNS }, (_, i) => CHILD_T0 + i * HOUR);
      for (const ld of dates) assert.ok((await createDagRun(store, dag, ld, 'manual', Date.now(), 100)).created);

      await waitFor(
        'every run to succeed',
        async () => {
          const runs = await store.listRuns({ dagId: SHARED_DAG_ID });
          const failed = runs.filter((r) => r.state === 'failed');
          if (failed.length > 0) throw new Error(`runs failed: ${failed.map((r) => r.runId).join(', ')}`);
          return runs.length === RUNS && runs.every((r) => r.state === 'success');
        },
        40_000,
        50,
      ).catch((e: Error) => {
        throw new Error(`${e.message}\n${outputs()}`);
      });
      for (const c of children) assert.equal(await c.stop(), 0, `process ${c.pid} stops cleanly on SIGTERM`);

      const rows = (
        await client.query<{ logical_date: string; task_id: string; attempt: number; pid: number }>(
          'SELECT logical_date, task_id, attempt, pid FROM executions ORDER BY seq',
        )
      ).rows;
      const byKey = new Map<string, number>();
      for (const r of rows) {
        const key = `${new Date(Number(r.logical_date)).toISOString()} ${r.task_id}`;
        byKey.set(key, (byKey.get(key) ?? 0) + 1);
      }
      for (const ld of dates) {
        for (const task of SHARED_TASKS) {
          const key = `${new Date(ld).toISOString()} ${task}`;
          assert.equal(byKey.get(key), 1, `${key} executed exactly once\n${outputs()}`);
        }
      }
      assert.equal(rows.length, RUNS * SHARED_TASKS.length, 'no execution outside the runs');
      assert.ok(
        rows.every((r) => r.attempt === 1),
        'no task needed a second try',
      );
      const pids = new Set(rows.map((r) => r.pid));
      assert.ok(pids.size >= 2, `the work was shared (executions per pid: ${JSON.stringify(countBy(rows, 'pid'))})`);
      for (const pid of pids)
        assert.ok(
          children.some((c) => c.pid === pid),
          `pid ${pid} is one of the schedulers`,
        );

      // Within each run, the executions happened in dependency order (seq is assigned at insert).
      for (const ld of dates) {
        const order = rows.filter((r) => Number(r.logical_date) === ld).map((r) => r.task_id);
        assert.deepEqual(order, [...SHARED_TASKS], `${new Date(ld).toISOString()}: tasks ran in order`);
      }

      // The store agrees: one successful try per task instance, owned by the pid that executed it.
      const tries = await store.listTries({ dagId: SHARED_DAG_ID });
      assert.equal(tries.length, RUNS * SHARED_TASKS.length);
      assert.ok(tries.every((t) => t.state === 'success' && t.tryNumber === 1));
      for (const r of rows) {
        const t = tries.find((x) => x.logicalDate === Number(r.logical_date) && x.taskId === r.task_id);
        assert.equal(t?.owner.split(':')[1], String(r.pid), 'the try belongs to the process that executed it');
      }
      assert.doesNotMatch(outputs(), /tick failed|taken over/, 'no tick failed and no try was taken as lost');
    } finally {
      await Promise.all(children.map((c) => c.kill()));
      await client.end();
    }
  });

  it('keeps the store contract on PostgreSQL: idempotent runs, owned tries, one SLA miss, one alert per key, late arrivals once', async () => {
    const db = await createDatabase();
    // Two store instances (two pools), as two scheduler processes would have.
    const [a, b] = [await open(db), await open(db)] as [SchedulerStore, SchedulerStore];
    const slaDag = defineDag({
      id: 'contract',
      schedule: '@hourly',
      tasks: [
        { id: 'x', slaMs: 60_000, run: async () => undefined },
        { id: 'y', upstream: ['x'], slaMs: 120_000, run: async () => undefined },
      ],
    });
    const now = CHILD_T0 + 10 * HOUR;

    // createRun: the same logical date twice (also at once, from both stores) is one run.
    const first = await createDagRun(a, slaDag, CHILD_T0, 'scheduled', now);
    assert.equal(first.created, true);
    assert.equal(first.run.state, 'queued');
    const again = await Promise.all([
      createDagRun(a, slaDag, CHILD_T0, 'manual', now + 1),
      createDagRun(b, slaDag, CHILD_T0, 'scheduled', now + 2),
    ]);
    for (const r of again) {
      assert.equal(r.created, false, 'a second create of the logical date creates nothing');
      assert.deepEqual(r.run, first.run, 'and returns the existing run as it is');
    }
    assert.equal((await a.listRuns({ dagId: 'contract' })).length, 1);
    assert.deepEqual(
      (await a.listTaskInstances('contract')).map((t) => [t.taskId, t.state, t.tryNumber]),
      [
        ['x', 'none', 0],
        ['y', 'none', 0],
      ],
    );
    const racing = await Promise.all(
      [a, b, a, b].map((s, i) => createDagRun(s, slaDag, CHILD_T0 + HOUR, 'manual', now + i)),
    );
    assert.equal(racing.filter((r) => r.created).length, 1, 'of four racing creates, one creates the run');
    assert.equal(new Set(racing.map((r) => r.run.runId)).size, 1);
    assert.equal((await a.listTaskInstances('contract', [CHILD_T0 + HOUR])).length, 2);

    // finishTry: only the owner of the current try ends it.
    await a.planDag('contract', (view) => planDagRuns(slaDag, view, now));
    const claimedA = await a.claimTasks('owner-a', now, 1, { runIds: [runIdOf('scheduled', CHILD_T0)] });
    const claimedB = await b.claimTasks('owner-b', now, 1, { runIds: [runIdOf('scheduled', CHILD_T0)] });
    assert.deepEqual(
      claimedA.map((t) => [t.taskId, t.tryNumber, t.owner]),
      [['x', 1, 'owner-a']],
    );
    assert.deepEqual(claimedB, [], 'a claimed instance is not handed out again');
    const finish = (store: SchedulerStore, owner: string, tryNumber: number) =>
      store.finishTry({
        dagId: 'contract',
        logicalDate: CHILD_T0,
        taskId: 'x',
        tryNumber,
        owner,
        now: now + 5,
        outcome: { state: 'success' },
      });
    assert.equal(await finish(b, 'owner-b', 1), false, 'another owner cannot end the try');
    assert.equal(await finish(a, 'owner-a', 2), false, 'the owner cannot end a try it does not hold');
    const [x] = await a.listTaskInstances('contract', [CHILD_T0]);
    assert.equal(x?.state, 'running');
    assert.equal(x?.owner, 'owner-a');
    assert.deepEqual(await a.listTries({ dagId: 'contract' }), [], 'a refused finish records no try');
    const ends = await Promise.all([finish(a, 'owner-a', 1), finish(b, 'owner-a', 1)]);
    assert.deepEqual(ends.sort(), [false, true], 'of two racing finishes of one try, one ends it');
    assert.deepEqual(
      (await a.listTries({ dagId: 'contract' })).map((t) => [t.taskId, t.tryNumber, t.state, t.owner, t.durationMs]),
      [['x', 1, 'success', 'owner-a', 5]],
    );

    // recordSlaMisses: `x` succeeded after its deadline (interval end + 60 s) and `y` has not
    // succeeded: one miss each, however often (and from however many stores) it is called.
    const alertOf = (m: { dagId: string; logicalDate: number; taskId: string }): NewAlert => ({
      key: `sla_miss:${m.dagId}:${m.logicalDate}:${m.taskId}`,
      kind: 'sla_miss',
      source: 'test',
      message: `SLA missed: ${m.taskId}`,
      details: {},
    });
    const calls = await Promise.all([a, b, a, b].map((s) => s.recordSlaMisses(now + 10, alertOf)));
    const misses = calls.flat().map((m) => [m.taskId, m.deadline, m.state]);
    assert.deepEqual(misses.sort(), [
      ['x', CHILD_T0 + HOUR + 60_000, 'success'],
      ['y', CHILD_T0 + HOUR + 120_000, 'none'],
    ]);
    assert.deepEqual(await a.recordSlaMisses(now + 20, alertOf), [], 'a later call finds no new miss');
    assert.equal((await a.listAlerts({ kind: 'sla_miss' })).length, 2, 'one alert per miss');

    // raiseAlert: one alert per key, also when two stores raise it at once.
    const alert: NewAlert = { key: 'k-1', kind: 'anomaly', source: 'test', message: 'm', details: { n: 1 } };
    assert.equal(await a.raiseAlert(alert, now), true);
    assert.equal(await a.raiseAlert({ ...alert, message: 'other' }, now + 1), false, 'the same key again is ignored');
    const raced = await Promise.all([a, b].map((s) => s.raiseAlert({ ...alert, key: 'k-2' }, now)));
    assert.deepEqual(raced.sort(), [false, true]);
    const anomalies = await b.listAlerts({ kind: 'anomaly' });
    assert.deepEqual(
      anomalies.map((x) => [x.key, x.message, x.state]),
      [
        ['k-1', 'm', 'pending'],
        ['k-2', 'm', 'pending'],
      ],
    );
    assert.deepEqual(anomalies[0]?.details, { n: 1 });

    // markLateArrivals: a key is new once; its clears are requested once.
    const arrival = {
      key: 'late-1',
      hourStart: CHILD_T0,
      clears: [{ dagId: 'contract', logicalDate: CHILD_T0, taskIds: ['x'] }],
    };
    assert.deepEqual(await a.markLateArrivals([arrival], now), ['late-1']);
    assert.deepEqual(await a.markLateArrivals([arrival], now + 1), [], 'a known arrival is not new');
    const lateRace = await Promise.all(
      [a, b].map((s) => s.markLateArrivals([{ ...arrival, key: 'late-2', clears: [] }], now)),
    );
    assert.deepEqual(lateRace.flat(), ['late-2'], 'of two racing marks, one sees the arrival as new');
    assert.deepEqual((await a.getRun('contract', CHILD_T0))?.pendingClear, ['x']);
  });

  it('loses no clear requested by another process while a planner applies an earlier clear of the same run', async () => {
    const db = await createDatabase();
    const [planner, requester] = [await open(db), await open(db)] as [SchedulerStore, SchedulerStore];
    const dag = defineDag({
      id: 'clears',
      schedule: '@hourly',
      tasks: [
        { id: 'x', run: async () => undefined },
        { id: 'y', upstream: ['x'], run: async () => undefined },
      ],
    });
    let now = CHILD_T0 + HOUR;
    const plan = () => planner.planDag('clears', (view) => planDagRuns(dag, view, now));
    await createDagRun(planner, dag, CHILD_T0, 'manual', now);
    // Run x, then y, by hand.
    for (let i = 0; i < 2; i++) {
      await plan();
      const [t] = await planner.claimTasks('owner', now, 1);
      assert.ok(t !== undefined);
      await planner.finishTry({ ...t, owner: 'owner', now: ++now, outcome: { state: 'success' } });
    }
    await plan();
    assert.equal((await planner.getRun('clears', CHILD_T0))?.state, 'success');
    await planner.requestClear('clears', [CHILD_T0], ['x']);

    const client = new pg.Client(db);
    await client.connect();
    try {
      // The planner's clear of x waits inside its transaction (a trigger waits for an advisory
      // lock the test holds) while the other process asks for a clear of y.
      await client.query(`
        CREATE FUNCTION reckon_test_hold() RETURNS trigger LANGUAGE plpgsql AS
          $$ BEGIN PERFORM pg_advisory_xact_lock(4242); RETURN NEW; END $$;
        CREATE TRIGGER hold_clear BEFORE UPDATE ON sched_task_instances
          FOR EACH ROW WHEN (OLD.state = 'success' AND NEW.state = 'none') EXECUTE FUNCTION reckon_test_hold();
        SELECT pg_advisory_lock(4242);
      `);
      const planning = plan();
      const waitingOn = async (wait: string) =>
        Number(
          (
            await client.query<{ n: string }>(
              `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database()
                 AND wait_event_type = 'Lock' AND wait_event = $1`,
              [wait],
            )
          ).rows[0]?.n,
        ) > 0;
      await waitFor('the planner to wait inside its clear', () => waitingOn('advisory'));
      let requested = false;
      const requesting = requester.requestClear('clears', [CHILD_T0], ['y']).then((runs) => {
        requested = true;
        return runs;
      });
      // Either the request went through, or it waits for the planner's row lock.
      await waitFor(
        'the request to finish or wait for the planner',
        async () => requested || (await waitingOn('transactionid')) || (await waitingOn('tuple')),
      );
      await client.query('SELECT pg_advisory_unlock(4242)');
      await Promise.all([planning, requesting]);
    } finally {
      await client.end();
    }

    // Whatever the interleaving, y's clear is either applied or still pending: never dropped.
    const run = await planner.getRun('clears', CHILD_T0);
    assert.deepEqual(run?.pendingClear, ['y'], 'the clear of y is still asked for');
    assert.equal(run?.state, 'running', 'x was cleared and the run runs again');
    assert.equal(run?.clearCount, 1);
    await plan();
    const after = await planner.getRun('clears', CHILD_T0);
    assert.equal(after?.pendingClear, null);
    assert.equal(after?.clearCount, 2, 'the next plan applies the clear of y');
    assert.deepEqual(
      (await planner.listTaskInstances('clears', [CHILD_T0])).map((t) => [t.taskId, t.state]),
      [
        ['x', 'scheduled'],
        ['y', 'none'],
      ],
    );
  });
});

function countBy<T, K extends keyof T>(items: readonly T[], key: K): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of items) out[String(item[key])] = (out[String(item[key])] ?? 0) + 1;
  return out;
}
