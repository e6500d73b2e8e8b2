/**
 * DAGs shared by the scheduler tests that run schedulers in child processes and the child
 * scripts themselves (`scheduler-pg-child.ts`, `scheduler-kill-child.ts`): the test creates the
 * runs from the same definition the children run.
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DagDefinition, TaskRunContext } from '../../src/scheduler/index.ts';

/** 2026-11-21T00:00:00Z: logical dates of the child-process tests start here. */
export const CHILD_T0 = Date.UTC(2026, 10, 21);

/** Id of the DAG the PostgreSQL schedulers share. */
export const SHARED_DAG_ID = 'shared';
/** Its tasks, in dependency order (`a` -> `b` -> `c`). */
export const SHARED_TASKS = ['a', 'b', 'c'] as const;

/** An hourly DAG of three chained tasks, each of which calls `run` (triggered runs only: no start date). */
export function sharedDag(run: (context: TaskRunContext) => Promise<void>): DagDefinition {
  return {
    id: SHARED_DAG_ID,
    schedule: '@hourly',
    tasks: SHARED_TASKS.map((id, i) => ({ id, upstream: i === 0 ? [] : [SHARED_TASKS[i - 1] as string], run })),
  };
}

/** Id of the DAG of the kill test. */
export const RESUME_DAG_ID = 'resume';

/**
 * `first` -> `slow` -> `last`, daily, triggered runs only. Every try appends
 * `<ISO logical date> <task> <attempt> <pid>` to `<markerDir>/runs.log`. `slow` has one retry
 * without delay; its first attempt writes `<markerDir>/slow-started` and then never ends (until
 * its signal aborts it), its second succeeds.
 */
export function resumeDag(markerDir: string): DagDefinition {
  const record = ({ logicalDate, taskId, attempt }: TaskRunContext) =>
    appendFileSync(
      join(markerDir, 'runs.log'),
      `${new Date(logicalDate).toISOString()} ${taskId} ${attempt} ${process.pid}\n`,
    );
  return {
    id: RESUME_DAG_ID,
    schedule: '@daily',
    tasks: [
      { id: 'first', run: async (c) => record(c) },
      {
        id: 'slow',
        upstream: ['first'],
        retries: 1,
        retryDelayMs: 0,
        run: async (c) => {
          record(c);
          if (c.attempt > 1) return;
          writeFileSync(join(markerDir, 'slow-started'), `${process.pid}\n`);
          await new Promise<never>((_, reject) => {
            c.signal.addEventListener('abort', () => reject(c.signal.reason), { once: true });
          });
        },
      },
      { id: 'last', upstream: ['slow'], run: async (c) => record(c) },
    ],
  };
}
