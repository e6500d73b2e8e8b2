import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  AlertDispatcher,
  type DagDefinition,
  type PokeResult,
  defineDag,
  logAlertSink,
  Scheduler,
  upstreamRunsSucceeded,
} from '../../src/scheduler/index.ts';
import { openSqliteSchedulerStore } from '../../src/store/index.ts';
import { schedulerHarness, T0 } from '../support/scheduler.ts';

const HOUR = 3_600_000;
const DAY = 86_400_000;

/** A task that records its runs in `log` and succeeds. */
const recorded = (log: string[], id: string, upstream: string[] = [], more = {}) => ({
  id,
  upstream,
  run: async ({ logicalDate, attempt }: { logicalDate: number; attempt: number }) => {
    log.push(`${new Date(logicalDate).toISOString()} ${id} ${attempt}`);
  },
  ...more,
});

describe('Scheduler', () => {
  it('runs a triggered run task by task in dependency order, and the run succeeds', async () => {
    const log: string[] = [];
    const h = await schedulerHarness([
      {
        id: 'chain',
        schedule: '@daily',
        tasks: [recorded(log, 'c', ['b']), recorded(log, 'b', ['a']), recorded(log, 'a')],
      },
    ]);
    await h.scheduler.createRun('chain', T0, 'manual');
    const steps = await h.settle();
    const day = new Date(T0).toISOString();
    assert.deepEqual(log, [`${day} a 1`, `${day} b 1`, `${day} c 1`]);
    assert.equal(steps, 4, 'one task per step, and a step to see the run done');
    const [run] = await h.store.listRuns({ dagId: 'chain' });
    assert.equal(run?.state, 'success');
    assert.equal(run?.runId, `manual__${day}`);
    await h.close();
  });

  it('retries with exponential back-off, then fails the task, fails everything downstream and alerts once per event', async () => {
    const tries: number[] = [];
    const log: string[] = [];
    const h = await schedulerHarness([
      {
        id: 'flaky',
        schedule: '@daily',
        tasks: [
          {
            id: 'always-fails',
            retries: 2,
            retryDelayMs: 1000,
            run: async ({ attempt }) => {
              tries.push(attempt);
              throw new Error(`boom ${attempt}`);
            },
          },
          recorded(log, 'after', ['always-fails']),
        ],
      },
    ]);
    await h.scheduler.createRun('flaky', T0, 'manual');
    await h.step(T0);
    assert.deepEqual(tries, [1]);
    const ti = async () => (await h.store.listTaskInstances('flaky')).find((t) => t.taskId === 'always-fails');
    assert.equal((await ti())?.state, 'up_for_retry');
    assert.equal((await ti())?.nextTryAt, T0 + 1000);
    await h.step(T0 + 999);
    assert.deepEqual(tries, [1], 'not before the back-off has passed');
    await h.step(T0 + 1000);
    assert.deepEqual(tries, [1, 2]);
    assert.equal((await ti())?.nextTryAt, T0 + 1000 + 2000, 'the second wait is twice the first');
    await h.step(T0 + 2999);
    assert.deepEqual(tries, [1, 2]);
    await h.step(T0 + 3000);
    assert.deepEqual(tries, [1, 2, 3]);
    await h.settle();
    assert.equal((await ti())?.state, 'failed');
    assert.equal((await ti())?.error, 'boom 3');
    const after = (await h.store.listTaskInstances('flaky')).find((t) => t.taskId === 'after');
    assert.equal(after?.state, 'upstream_failed');
    assert.deepEqual(log, [], 'nothing downstream ran');
    assert.equal((await h.store.listRuns({ dagId: 'flaky' }))[0]?.state, 'failed');
    const alerts = await h.store.listAlerts();
    assert.deepEqual(
      alerts.map((a) => [a.kind, a.details.try]),
      [
        ['task_retry', 1],
        ['task_retry', 2],
        ['task_failed', 3],
      ],
    );
    const history = await h.store.listTries({ dagId: 'flaky' });
    assert.deepEqual(
      history.map((t) => [t.tryNumber, t.state, t.error]),
      [
        [1, 'failed', 'boom 1'],
        [2, 'failed', 'boom 2'],
        [3, 'failed', 'boom 3'],
      ],
    );
    // Delivered once to the log sink, however often the dispatcher looks.
    const lines: string[] = [];
    const dispatcher = new AlertDispatcher({
      store: h.store,
      sinks: [logAlertSink((l) => lines.push(l))],
      owner: 'd1',
      clock: h.now,
    });
    assert.equal(await dispatcher.deliverDue(), 3);
    assert.equal(await dispatcher.deliverDue(), 0);
    assert.equal(lines.length, 3);
    assert.match(lines[2] as string, /"kind":"task_failed"/);
    await h.close();
  });

  it('a task that fails once and then succeeds lets the run succeed', async () => {
    const h = await schedulerHarness([
      {
        id: 'once',
        schedule: '@daily',
        tasks: [
          {
            id: 't',
            retries: 1,
            retryDelayMs: 10,
            run: async ({ attempt }) => {
              if (attempt === 1) throw new Error('transient');
            },
          },
        ],
      },
    ]);
    await h.scheduler.createRun('once', T0, 'manual');
    await h.settle(10);
    assert.equal((await h.store.listRuns({}))[0]?.state, 'success');
    assert.deepEqual(
      (await h.store.listTries({})).map((t) => t.state),
      ['failed', 'success'],
    );
    await h.close();
  });

  it('aborts a try that runs past its execution timeout and fails it', async () => {
    let aborted = false;
    const h = await schedulerHarness([
      {
        id: 'slow',
        schedule: '@daily',
        tasks: [
          {
            id: 'hangs',
            executionTimeoutMs: 50,
            run: ({ signal }) =>
              new Promise<void>((resolve) => {
                signal.addEventListener('abort', () => {
                  aborted = true;
                  setTimeout(resolve, 5_000).unref();
                });
              }),
          },
        ],
      },
    ]);
    await h.scheduler.createRun('slow', T0, 'manual');
    await h.settle();
    const [ti] = await h.store.listTaskInstances('slow');
    assert.equal(ti?.state, 'failed');
    assert.match(ti?.error ?? '', /execution timeout: still running after 50 ms/);
    assert.ok(aborted, 'the task saw its signal abort');
    await h.close();
  });

  it('a sensor pokes in reschedule mode until its timeout, then fails without retries', async () => {
    let pokes = 0;
    const h = await schedulerHarness([
      {
        id: 'sensing',
        schedule: '@daily',
        tasks: [
          {
            id: 'wait',
            retries: 3,
            pokeIntervalMs: 1000,
            sensorTimeoutMs: 5000,
            poke: async () => {
              pokes++;
              return false;
            },
          },
          { id: 'work', upstream: ['wait'], run: async () => undefined },
        ],
      },
    ]);
    await h.scheduler.createRun('sensing', T0, 'manual');
    await h.step(T0);
    const wait = async () => (await h.store.listTaskInstances('sensing')).find((t) => t.taskId === 'wait');
    assert.equal((await wait())?.state, 'up_for_reschedule');
    assert.equal((await wait())?.tryNumber, 0, 'a "not yet" is no try');
    assert.equal(h.scheduler.runningCount, 0, 'no slot held between pokes');
    await h.step(T0 + 500);
    assert.equal(pokes, 1, 'not poked before its interval');
    for (let t = 1; t <= 5; t++) await h.step(T0 + t * 1000);
    assert.equal(pokes, 6);
    assert.equal((await wait())?.state, 'failed');
    assert.match((await wait())?.error ?? '', /sensor timed out/);
    await h.settle();
    assert.equal(pokes, 6, 'no retries after a sensor timeout');
    const work = (await h.store.listTaskInstances('sensing')).find((t) => t.taskId === 'work');
    assert.equal(work?.state, 'upstream_failed');
    assert.deepEqual(
      (await h.store.listAlerts()).map((a) => a.kind),
      ['task_failed'],
    );
    await h.close();
  });

  it('a waiting sensor records what it waits for and since when; one whose condition can never hold fails at once with its reason', async () => {
    let answer: PokeResult = { met: false, waitingFor: 'the lake hours 00:00..05:00' };
    const h = await schedulerHarness([
      {
        id: 'sensing',
        schedule: '@daily',
        tasks: [
          { id: 'wait', retries: 3, pokeIntervalMs: 1000, sensorTimeoutMs: 60_000, poke: async () => answer },
          { id: 'work', upstream: ['wait'], run: async () => undefined },
        ],
      },
    ]);
    await h.scheduler.createRun('sensing', T0, 'manual');
    await h.step(T0);
    const wait = async () => (await h.store.listTaskInstances('sensing')).find((t) => t.taskId === 'wait');
    assert.equal((await wait())?.state, 'up_for_reschedule');
    assert.equal((await wait())?.waitingFor, 'the lake hours 00:00..05:00');
    assert.equal((await wait())?.firstPokeAt, T0);
    answer = { met: false, waitingFor: 'the lake hour 05:00' };
    await h.step(T0 + 1000);
    assert.equal((await wait())?.waitingFor, 'the lake hour 05:00', 'the newest poke says what is left');
    answer = { met: false, never: 'the events of that day were dropped by retention' };
    await h.step(T0 + 2000);
    const failed = await wait();
    assert.equal(failed?.state, 'failed', 'fails long before its 60 s timeout');
    assert.equal(failed?.waitingFor, null);
    assert.match(failed?.error ?? '', /sensor cannot be satisfied: the events of that day were dropped by retention/);
    await h.settle();
    assert.equal((await wait())?.tryNumber, 1, 'no retries: waiting longer cannot help');
    assert.equal((await h.store.listRuns({}))[0]?.state, 'failed');
    await h.close();
  });

  it('a sensor on upstream runs fails at once when they do not exist and nothing will create them; a trigger creates them', async () => {
    const hourly: DagDefinition = {
      id: 'hours',
      schedule: '@hourly',
      tasks: [{ id: 'a', run: async () => undefined }],
    };
    const daily = (id: string): DagDefinition => ({
      id,
      schedule: '@daily',
      upstreamDags: ['hours'],
      tasks: [
        {
          id: 'hours-done',
          pokeIntervalMs: 1000,
          poke: (c) => upstreamRunsSucceeded(h.store, defineDag(hourly))(c),
        },
      ],
    });
    const h = await schedulerHarness([hourly, daily('days'), daily('days2')]);
    // A run made without its upstream runs (as a trigger did before): its sensor fails with the reason.
    await h.scheduler.createRun('days', T0, 'manual');
    await h.step(T0);
    const [sensor] = await h.store.listTaskInstances('days');
    assert.equal(sensor?.state, 'failed');
    assert.match(
      sensor?.error ?? '',
      /hours has no run for 2026-11-\d\dT00:00:00.000Z, .* and 20 more and none will be scheduled \(it has no start date\): trigger or backfill them/,
    );
    // A trigger makes the day's hourly runs too, and the day waits for them, saying so.
    const t = await h.scheduler.trigger('days2', T0 + DAY);
    assert.equal(t.created, true);
    assert.equal(t.upstream.length, 24);
    await h.settle();
    const runs = await h.store.listRuns({ dagId: 'days2' });
    assert.equal(runs[0]?.state, 'success');
    await h.close();
  });

  it('rerunWindow creates missing runs, clears ended ones and leaves running ones; repeating it reruns again', async () => {
    let runs = 0;
    const h = await schedulerHarness([
      {
        id: 'daily',
        schedule: '@daily',
        maxActiveRuns: 3,
        tasks: [
          {
            id: 'work',
            run: async () => {
              runs++;
            },
          },
        ],
      },
    ]);
    await h.scheduler.createRun('daily', T0 + DAY, 'manual');
    await h.settle();
    assert.equal(runs, 1);
    const plan = await h.scheduler.rerunWindow('daily', T0, T0 + 3 * DAY);
    assert.deepEqual(
      plan.map((p) => [p.run.logicalDate, p.action]),
      [
        [T0, 'created'],
        [T0 + DAY, 'cleared'],
        [T0 + 2 * DAY, 'created'],
      ],
    );
    await h.settle();
    assert.equal(runs, 4);
    const again = await h.scheduler.rerunWindow('daily', T0, T0 + 3 * DAY);
    assert.deepEqual(
      again.map((p) => p.action),
      ['cleared', 'cleared', 'cleared'],
    );
    await h.settle();
    assert.equal(runs, 7);
    assert.deepEqual(
      (await h.store.listRuns({})).map((r) => [r.state, r.clearCount]),
      [
        ['success', 1],
        ['success', 2],
        ['success', 1],
      ],
    );
    await assert.rejects(h.scheduler.rerunWindow('daily', T0 + 1, T0 + DAY), /no interval of daily/);
    await h.close();
  });

  it('a sensor whose condition comes true lets its downstream run', async () => {
    let ready = false;
    let worked = 0;
    const h = await schedulerHarness([
      {
        id: 'sensing',
        schedule: '@daily',
        tasks: [
          { id: 'wait', pokeIntervalMs: 1000, poke: async () => ready },
          {
            id: 'work',
            upstream: ['wait'],
            run: async () => {
              worked++;
            },
          },
        ],
      },
    ]);
    await h.scheduler.createRun('sensing', T0, 'manual');
    await h.step(T0);
    await h.step(T0 + 1000);
    assert.equal(worked, 0);
    ready = true;
    await h.settle();
    assert.equal(worked, 1);
    assert.equal((await h.store.listRuns({}))[0]?.state, 'success');
    await h.close();
  });

  it('fires an SLA miss exactly once, across ticks and two schedulers on one store, delivered once by two dispatchers', async () => {
    const definition: DagDefinition = {
      id: 'hourly',
      schedule: '@hourly',
      startDate: T0,
      tasks: [
        {
          id: 'late-work',
          slaMs: 10 * 60_000,
          retries: 100,
          retryDelayMs: 60_000,
          run: async () => {
            throw new Error('not yet');
          },
        },
      ],
    };
    const h = await schedulerHarness([definition]);
    const other = await openSqliteSchedulerStore(h.file);
    let now = T0;
    const second = new Scheduler({ store: other, dags: [defineDag(definition)], clock: () => now });
    // The first interval [T0, T0+1h) is due at T0+1h; its SLA deadline is T0+1h10m.
    for (let t = T0 + HOUR; t <= T0 + HOUR + 30 * 60_000; t += 60_000) {
      now = t;
      await h.step(t);
      await second.tick();
      await second.drain();
    }
    const misses = await h.store.listAlerts({ kind: 'sla_miss' });
    assert.equal(misses.length, 1);
    assert.equal(misses[0]?.details.deadline, new Date(T0 + HOUR + 10 * 60_000).toISOString());
    assert.equal(misses[0]?.details.taskId, 'late-work');
    const lines: string[] = [];
    const sink = logAlertSink((l) => lines.push(l));
    const d1 = new AlertDispatcher({ store: h.store, sinks: [sink], owner: 'd1', clock: () => now });
    const d2 = new AlertDispatcher({ store: other, sinks: [sink], owner: 'd2', clock: () => now });
    await Promise.all([d1.deliverDue(), d2.deliverDue(), d1.deliverDue()]);
    assert.equal(lines.filter((l) => l.includes('"kind":"sla_miss"')).length, 1);
    await other.close();
    await h.close();
  });

  it('a pool never runs more of its tasks at once than it has slots', async () => {
    let running = 0;
    let most = 0;
    let runs = 0;
    const h = await schedulerHarness(
      [
        {
          id: 'pooled',
          schedule: '@hourly',
          tasks: [
            {
              id: 'narrow-task',
              pool: 'narrow',
              run: async () => {
                running++;
                most = Math.max(most, running);
                await new Promise((r) => setTimeout(r, 20));
                running--;
                runs++;
              },
            },
          ],
        },
      ],
      { pools: { narrow: 2 }, parallelism: 8 },
    );
    for (let i = 0; i < 6; i++) await h.scheduler.createRun('pooled', T0 + i * HOUR, 'manual', 6);
    await h.scheduler.tick();
    assert.equal(h.scheduler.runningCount, 2, 'two claimed at once, four wait');
    await h.scheduler.drain();
    await h.settle();
    assert.equal(runs, 6);
    assert.equal(most, 2);
    await h.close();
  });

  it('a backfill of 7 days runs 168 hourly and 7 daily runs, each day after its hours, within the concurrency limit', async () => {
    let seq = 0;
    const ended = new Map<string, number>();
    const started = new Map<string, number>();
    const task = (id: string, upstream: string[] = []) => ({
      id,
      upstream,
      run: async ({ dagId, logicalDate }: { dagId: string; logicalDate: number }) => {
        started.set(`${dagId} ${logicalDate} ${id}`, ++seq);
        ended.set(`${dagId} ${logicalDate} ${id}`, ++seq);
      },
    });
    const hourly: DagDefinition = { id: 'hours', schedule: '@hourly', tasks: [task('a'), task('b', ['a'])] };
    let activeMax = 0;
    const h = await schedulerHarness(
      [
        hourly,
        {
          id: 'days',
          schedule: '@daily',
          upstreamDags: ['hours'],
          tasks: [
            {
              id: 'hours-done',
              pokeIntervalMs: 1000,
              poke: (c) => upstreamRunsSucceeded(h.store, defineDag(hourly))(c),
            },
            task('c', ['hours-done']),
          ],
        },
      ],
      { parallelism: 16 },
    );
    const runs = await h.scheduler.backfill('days', Date.UTC(2026, 10, 1), Date.UTC(2026, 10, 8), 4);
    assert.equal(runs.length, 168 + 7);
    for (let i = 0; i < 2000; i++) {
      await h.step(h.now() + 1000);
      const active = await h.store.listRuns({ dagId: 'hours', states: ['running'] });
      activeMax = Math.max(activeMax, active.length);
      if ((await h.store.listRuns({ states: ['queued', 'running'], limit: 1 })).length === 0) break;
    }
    const all = await h.store.listRuns({});
    assert.equal(all.filter((r) => r.dagId === 'hours' && r.state === 'success').length, 168);
    assert.equal(all.filter((r) => r.dagId === 'days' && r.state === 'success').length, 7);
    assert.ok(activeMax <= 4, `at most 4 hourly backfill runs active at once, saw ${activeMax}`);
    for (let d = 0; d < 7; d++) {
      const day = Date.UTC(2026, 10, 1 + d);
      const c = started.get(`days ${day} c`) as number;
      for (let hr = 0; hr < 24; hr++) {
        const at = day + hr * HOUR;
        assert.ok((ended.get(`hours ${at} a`) as number) < (started.get(`hours ${at} b`) as number));
        assert.ok((ended.get(`hours ${at} b`) as number) < c, `day ${d} ran after hour ${hr}`);
      }
    }
    assert.equal(started.size, 168 * 2 + 7);
    await h.close();
  });

  it('clear --downstream reruns a task and everything after it for the window only', async () => {
    const log: string[] = [];
    const h = await schedulerHarness([
      {
        id: 'pipeline',
        schedule: '@daily',
        tasks: [
          recorded(log, 'extract'),
          recorded(log, 'transform', ['extract']),
          recorded(log, 'load', ['transform']),
          recorded(log, 'report', ['extract']),
        ],
      },
    ]);
    for (let d = 0; d < 3; d++) await h.scheduler.createRun('pipeline', T0 + d * DAY, 'manual', 3);
    await h.settle();
    assert.equal(log.length, 12);
    log.length = 0;
    const cleared = await h.scheduler.clear('pipeline', T0 + DAY, T0 + 2 * DAY, 'transform', { downstream: true });
    assert.deepEqual(
      cleared.map((r) => r.logicalDate),
      [T0 + DAY],
    );
    await h.settle();
    const day = new Date(T0 + DAY).toISOString();
    assert.deepEqual(log, [`${day} transform 2`, `${day} load 2`]);
    const runs = await h.store.listRuns({});
    assert.deepEqual(
      runs.map((r) => [r.state, r.clearCount]),
      [
        ['success', 0],
        ['success', 1],
        ['success', 0],
      ],
    );
    await h.close();
  });

  it('creates scheduled runs for every missed interval after downtime (catch-up), and only the latest without catch-up', async () => {
    const noop = async () => undefined;
    const h = await schedulerHarness([
      { id: 'catching-up', schedule: '@hourly', startDate: T0, tasks: [{ id: 't', run: noop }], maxActiveRuns: 2 },
      { id: 'latest-only', schedule: '@hourly', startDate: T0, catchup: false, tasks: [{ id: 't', run: noop }] },
    ]);
    await h.step(T0 + 5 * HOUR + 1);
    await h.settle();
    const runs = await h.store.listRuns({ states: ['success'] });
    assert.deepEqual(
      runs.filter((r) => r.dagId === 'catching-up').map((r) => (r.logicalDate - T0) / HOUR),
      [0, 1, 2, 3, 4],
    );
    assert.deepEqual(
      runs.filter((r) => r.dagId === 'latest-only').map((r) => (r.logicalDate - T0) / HOUR),
      [4],
    );
    await h.close();
  });

  it('late data for a finished run reruns it exactly once, however often it is reported and by whom', async () => {
    let runs = 0;
    const arrivals = [{ key: 'clicks/0/10-12/h5', hourStart: T0 + 5 * HOUR, at: T0 - 60_000 }];
    const definition: DagDefinition = {
      id: 'recalc',
      schedule: '@daily',
      rerunOnLateData: true,
      tasks: [
        {
          id: 'r',
          run: async () => {
            runs++;
          },
        },
      ],
    };
    let report = false;
    const h = await schedulerHarness([definition], { lateData: async () => (report ? arrivals : []) });
    const second = new Scheduler({
      store: await openSqliteSchedulerStore(h.file),
      dags: [defineDag(definition)],
      clock: h.now,
      lateData: async () => (report ? arrivals : []),
    });
    await h.scheduler.createRun('recalc', T0, 'manual');
    await h.scheduler.createRun('recalc', T0 + DAY, 'manual');
    await h.settle();
    assert.equal(runs, 2);
    report = true;
    for (let i = 0; i < 5; i++) {
      await h.step(h.now() + 1000);
      await second.tick();
      await second.drain();
    }
    await h.settle();
    assert.equal(runs, 3, 'one rerun');
    const all = await h.store.listRuns({});
    assert.deepEqual(
      all.map((r) => [r.state, r.clearCount]),
      [
        ['success', 1],
        ['success', 0],
      ],
    );
    await h.close();
  });

  it("acts on an hour's late arrivals together once the newest has settled: one burst, one rerun", async () => {
    let runs = 0;
    const arrivals: { key: string; hourStart: number; at: number }[] = [];
    const h = await schedulerHarness(
      [
        {
          id: 'recalc',
          schedule: '@daily',
          rerunOnLateData: true,
          tasks: [
            {
              id: 'r',
              run: async () => {
                runs++;
              },
            },
          ],
        },
      ],
      { lateData: async () => arrivals, lateSettleMs: 5000 },
    );
    await h.scheduler.createRun('recalc', T0, 'manual');
    await h.settle();
    const t = h.now();
    arrivals.push({ key: 'emissions/1/5-5/h3', hourStart: T0 + 3 * HOUR, at: t });
    await h.step(t + 3000);
    arrivals.push({ key: 'clicks/2/9-9/h3', hourStart: T0 + 3 * HOUR, at: t + 3000 });
    for (let s = 4; s <= 20; s++) await h.step(t + s * 1000);
    await h.settle();
    assert.equal(runs, 2, 'the first run and one rerun for both arrivals');
    assert.equal((await h.store.listRuns({}))[0]?.clearCount, 1);
    await h.close();
  });

  it('refuses a task in a pool that is not configured, naming it', async () => {
    await assert.rejects(
      schedulerHarness([
        { id: 'x', schedule: '@daily', tasks: [{ id: 't', pool: 'gpu', run: async () => undefined }] },
      ]),
      /task t uses pool "gpu", which is not configured/,
    );
  });
});
