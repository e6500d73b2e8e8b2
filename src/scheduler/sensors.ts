/** Sensors a DAG can wait with: conditions a run needs before its work can start. */
import { formatTimestamp } from '../events/index.ts';
import type { SchedulerStore } from '../store/index.ts';
import type { Dag, PokeResult, TaskRunContext } from './dag.ts';
import { logicalDatesWithin } from './scheduler.ts';

/** At most this many logical dates are named in what a sensor waits for. */
const NAMED = 4;

const named = (dates: readonly number[]): string =>
  dates.length <= NAMED
    ? dates.map(formatTimestamp).join(', ')
    : `${dates.slice(0, NAMED).map(formatTimestamp).join(', ')} and ${dates.length - NAMED} more`;

/**
 * True once every run of `upstream` whose interval lies inside the poking run's interval has
 * succeeded. While not, it says which runs it waits for; when some of them do not exist and
 * nothing will create them (their logical dates are before the upstream DAG's start date, or it
 * has none, so only a trigger or a backfill could), it fails with that reason at once.
 */
export function upstreamRunsSucceeded(
  store: SchedulerStore,
  upstream: Dag,
): (context: TaskRunContext) => Promise<PokeResult> {
  return async ({ interval }) => {
    const expected = logicalDatesWithin(upstream, interval.start, interval.end);
    const runs = await store.listRuns({ dagId: upstream.id, from: interval.start, to: interval.end });
    const state = new Map(runs.map((r) => [r.logicalDate, r.state]));
    const notDone = expected.filter((ld) => state.get(ld) !== 'success');
    if (notDone.length === 0) return { met: true };
    const missing = notDone.filter((ld) => !state.has(ld));
    const start = upstream.startDate;
    const never = missing.filter((ld) => start === undefined || ld < start);
    if (never.length > 0)
      return {
        met: false,
        never: `${upstream.id} has no run for ${named(never)} and none will be scheduled (${
          start === undefined ? 'it has no start date' : `its start date is ${formatTimestamp(start)}`
        }): trigger or backfill them, e.g. \`reckon dags backfill ${upstream.id} --from … --to …\``,
      };
    const failed = notDone.filter((ld) => state.get(ld) === 'failed');
    const parts = [
      ...(missing.length > 0
        ? [`${missing.length} scheduled run(s) of ${upstream.id} not created yet (${named(missing)})`]
        : []),
      ...(failed.length > 0
        ? [`${failed.length} failed run(s) of ${upstream.id} to be cleared (${named(failed)})`]
        : []),
    ];
    const running = notDone.length - missing.length - failed.length;
    if (running > 0) parts.push(`${running} run(s) of ${upstream.id} to succeed`);
    return { met: false, waitingFor: parts.join('; ') };
  };
}
