/** Sensors the built-in DAGs wait with: conditions a run needs before its work can start. */
import type { SchedulerStore } from '../store/index.ts';
import type { Dag, TaskRunContext } from './dag.ts';
import { logicalDatesWithin } from './scheduler.ts';

/**
 * True once every run of `upstream` whose interval lies inside the poking run's interval has
 * succeeded (the daily recalculation waits for the day's hourly ones this way).
 */
export function upstreamRunsSucceeded(
  store: SchedulerStore,
  upstream: Dag,
): (context: TaskRunContext) => Promise<boolean> {
  return async ({ interval }) => {
    const expected = logicalDatesWithin(upstream, interval.start, interval.end);
    const done = new Set(
      (await store.listRuns({ dagId: upstream.id, from: interval.start, to: interval.end, states: ['success'] })).map(
        (r) => r.logicalDate,
      ),
    );
    return expected.every((ld) => done.has(ld));
  };
}
