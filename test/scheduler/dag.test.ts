import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type DagDefinition, defineDag, downstreamOf, retryDelayOf } from '../../src/scheduler/index.ts';

const noop = async (): Promise<void> => undefined;
const task = (id: string, upstream: string[] = [], more = {}) => ({ id, upstream, run: noop, ...more });

describe('DAG definitions', () => {
  it('orders tasks upstream first, keeping definition order among ready ones, and fills defaults', () => {
    const dag = defineDag({
      id: 'recalculate-daily',
      schedule: '@daily',
      tasks: [
        task('anomaly-check', ['recalculate-day']),
        task('discrepancy-check', ['recalculate-day']),
        task('recalculate-day', ['hours-sealed']),
        task('hours-sealed'),
      ],
    });
    assert.deepEqual(
      dag.tasks.map((t) => t.id),
      ['hours-sealed', 'recalculate-day', 'anomaly-check', 'discrepancy-check'],
    );
    assert.deepEqual(
      [dag.tasks[0]?.retries, dag.tasks[0]?.retryDelayMs, dag.tasks[0]?.pool, dag.maxActiveRuns],
      [0, 30_000, 'default', 1],
    );
  });

  it('reruns a task and everything after it on clear --downstream, and nothing before or beside it', () => {
    const dag = defineDag({
      id: 'd',
      schedule: '@hourly',
      tasks: [task('a'), task('b', ['a']), task('c', ['b']), task('x', ['a']), task('y', ['x', 'c'])],
    });
    assert.deepEqual(downstreamOf(dag, 'b'), ['b', 'c', 'y']);
    assert.deepEqual(downstreamOf(dag, 'a'), ['a', 'b', 'x', 'c', 'y']);
    assert.deepEqual(downstreamOf(dag, 'y'), ['y']);
    assert.throws(() => downstreamOf(dag, 'zz'), /DAG "d": it has no task zz/);
  });

  it('backs retries off exponentially up to a cap', () => {
    const [t] = defineDag({
      id: 'd',
      schedule: '@hourly',
      tasks: [task('a', [], { retries: 5, retryDelayMs: 1000, maxRetryDelayMs: 5000 })],
    }).tasks;
    assert.deepEqual(
      [1, 2, 3, 4].map((n) => retryDelayOf(t as NonNullable<typeof t>, n)),
      [1000, 2000, 4000, 5000],
    );
  });

  it('refuses cycles, unknown upstream tasks, duplicates and bad numbers, naming them', () => {
    const refused = (definition: DagDefinition, pattern: RegExp) =>
      assert.throws(
        () => defineDag(definition),
        (e: Error & { code?: string }) => {
          assert.equal(e.code, 'RECKON_SCHEDULER_BAD_DAG');
          assert.match(e.message, pattern);
          return true;
        },
      );
    refused(
      { id: 'd', schedule: '@daily', tasks: [task('a', ['c']), task('b', ['a']), task('c', ['b'])] },
      /tasks a, b, c depend on each other in a cycle/,
    );
    refused(
      { id: 'd', schedule: '@daily', tasks: [task('a', ['ghost'])] },
      /task a names upstream task ghost, which is not defined/,
    );
    refused({ id: 'd', schedule: '@daily', tasks: [task('a'), task('a')] }, /task a is defined twice/);
    refused(
      { id: 'd', schedule: '@daily', tasks: [task('a', [], { retries: -1 })] },
      /task a: retries must be a non-negative integer, got -1/,
    );
    refused({ id: 'd', schedule: '@daily', tasks: [] }, /it has no tasks/);
    refused({ id: 'Bad Id', schedule: '@daily', tasks: [task('a')] }, /ids are lower-case/);
    assert.throws(() => defineDag({ id: 'd', schedule: 'every day', tasks: [task('a')] }), /RECKON|expected 5 fields/);
  });
});
