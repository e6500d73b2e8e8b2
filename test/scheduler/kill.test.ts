/**
 * A scheduler process SIGKILLed while a try runs leaves the instance `running` under its dead
 * owner; the next scheduler started on the same SQLite file sees that the owner's process is
 * gone (not that its heartbeat is stale), fails the lost try and retries it, and the run
 * succeeds with every other task run exactly once.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createDagRun, defineDag, ownerProcessGone } from '../../src/scheduler/index.ts';
import { openSqliteSchedulerStore } from '../../src/store/index.ts';
import { CHILD_T0, RESUME_DAG_ID, resumeDag } from '../support/scheduler-child-dags.ts';
import { type SchedulerProcess, spawnScheduler } from '../support/scheduler-process.ts';
import { waitFor } from '../support/wait.ts';

const DAY = 86_400_000;
const CYCLES = 3;
const CHILD = new URL('../support/scheduler-kill-child.ts', import.meta.url);

describe('Scheduler under SIGKILL', () => {
  it(`a scheduler SIGKILLed mid-run resumes: the lost try is taken over and retried (${CYCLES} kill/restart cycles)`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reckon-sched-kill-'));
    const file = join(dir, 'reckon.sqlite');
    const store = await openSqliteSchedulerStore(file);
    const children: SchedulerProcess[] = [];
    const spawnChild = async (markerDir: string) => {
      const p = await spawnScheduler(CHILD, [file, markerDir]);
      children.push(p);
      return p;
    };
    try {
      for (let cycle = 0; cycle < CYCLES; cycle++) {
        const ld = CHILD_T0 + cycle * DAY;
        const day = new Date(ld).toISOString();
        const markerDir = join(dir, `cycle-${cycle}`);
        mkdirSync(markerDir);
        const created = await createDagRun(store, defineDag(resumeDag(markerDir)), ld, 'manual', Date.now());
        assert.equal(created.created, true);
        const slow = async () => (await store.listTaskInstances(RESUME_DAG_ID, [ld])).find((t) => t.taskId === 'slow');

        // The first scheduler runs `first`, starts `slow` and is killed while `slow` runs.
        const killed = await spawnChild(markerDir);
        await waitFor('slow to start', () => existsSync(join(markerDir, 'slow-started')), 30_000).catch((e: Error) => {
          throw new Error(`${e.message}\n${killed.output()}`);
        });
        assert.equal(await killed.kill(), 'SIGKILL');
        const lost = await slow();
        assert.equal(lost?.state, 'running', 'the killed try is still running in the store');
        assert.equal(lost?.tryNumber, 1);
        const deadOwner = lost?.owner ?? '';
        assert.equal(deadOwner.split(':')[1], String(killed.pid), 'owned by the killed process');
        assert.ok(ownerProcessGone(deadOwner), 'whose process is gone');
        assert.ok(
          Date.now() - (lost?.heartbeatAt ?? 0) < 30_000,
          'its heartbeat is recent: only the dead-pid check can take it over',
        );

        // A second scheduler on the same file takes the lost try over, retries it and finishes the run.
        const resumed = await spawnChild(markerDir);
        await waitFor(
          'the run to succeed',
          async () => {
            const run = await store.getRun(RESUME_DAG_ID, ld);
            if (run?.state === 'failed') throw new Error('the run failed');
            return run?.state === 'success';
          },
          15_000,
          50,
        ).catch((e: Error) => {
          throw new Error(`${e.message}\n${resumed.output()}`);
        });
        assert.equal(await resumed.stop(), 0, 'the second scheduler stops cleanly');
        const owner = (await store.listTries({ dagId: RESUME_DAG_ID, logicalDate: ld, taskId: 'last' }))[0]?.owner;
        assert.equal(owner?.split(':')[1], String(resumed.pid));

        const tries = async (taskId: string) =>
          (await store.listTries({ dagId: RESUME_DAG_ID, logicalDate: ld, taskId })).map((t) => ({
            try: t.tryNumber,
            state: t.state,
            owner: t.owner,
          }));
        const slowTries = await store.listTries({ dagId: RESUME_DAG_ID, logicalDate: ld, taskId: 'slow' });
        assert.deepEqual(
          slowTries.map((t) => [t.tryNumber, t.state, t.owner]),
          [
            [1, 'failed', deadOwner],
            [2, 'success', owner],
          ],
          `${day}: slow's lost try failed and its retry succeeded`,
        );
        assert.match(
          slowTries[0]?.error ?? '',
          new RegExp(`try 1 was lost: its scheduler process ${escapeRegExp(deadOwner)} died`),
          'the lost try names the dead scheduler process',
        );
        assert.deepEqual(await tries('first'), [{ try: 1, state: 'success', owner: deadOwner }]);
        assert.deepEqual(await tries('last'), [{ try: 1, state: 'success', owner }]);
        assert.deepEqual(
          readFileSync(join(markerDir, 'runs.log'), 'utf8').trim().split('\n'),
          [
            `${day} first 1 ${killed.pid}`,
            `${day} slow 1 ${killed.pid}`,
            `${day} slow 2 ${resumed.pid}`,
            `${day} last 1 ${resumed.pid}`,
          ],
          'every task ran once, and slow twice',
        );
        assert.match(resumed.output(), new RegExp(`resume\\.slow ${day}: try 1 taken over \\(its scheduler process`));
        const retryAlerts = (await store.listAlerts({ kind: 'task_retry' })).filter((a) => a.key.includes(day));
        assert.equal(retryAlerts.length, 1, 'the lost try raised one retry alert');
      }
      const runs = await store.listRuns({ dagId: RESUME_DAG_ID });
      assert.deepEqual(
        runs.map((r) => r.state),
        Array<string>(CYCLES).fill('success'),
      );
    } finally {
      await Promise.all(children.map((c) => c.kill()));
      await store.close();
    }
  });
});

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
