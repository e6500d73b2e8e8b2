/**
 * The planner: given a DAG and what the store holds of its active runs, decides which runs start
 * (within their run type's limit), which task instances become runnable or fail upstream, and
 * which runs are done. A pure function: the store applies its changes under the DAG's lock.
 */
import type { DagPlanView, RunChange, TaskChange, TaskInstanceRecord, TaskState } from '../store/index.ts';
import type { Dag } from './dag.ts';

const TERMINAL: ReadonlySet<TaskState> = new Set(['success', 'failed', 'upstream_failed']);

/** The changes that bring a DAG's active runs forward at `now`. */
export function planDagRuns(dag: Dag, view: DagPlanView, now: number): { runs: RunChange[]; tasks: TaskChange[] } {
  const runs: RunChange[] = [];
  const tasks: TaskChange[] = [];
  const active = { ...view.activeByType };
  const upstreamOf = new Map(dag.tasks.map((t) => [t.id, t.upstream]));
  const byRun = new Map<number, TaskInstanceRecord[]>();
  for (const t of view.tasks) {
    const list = byRun.get(t.logicalDate) ?? [];
    list.push({ ...t });
    byRun.set(t.logicalDate, list);
  }
  for (const run of view.runs) {
    const instances = byRun.get(run.logicalDate) ?? [];
    let state = run.state;
    let change: RunChange | undefined;
    if (run.pendingClear !== null) {
      // A clear waits until nothing of the run is running: a try still running must not race its rerun.
      if (instances.some((t) => t.state === 'running')) continue;
      const cleared = new Set(run.pendingClear);
      for (const t of instances) if (cleared.has(t.taskId)) t.state = 'none';
      if (state === 'running') active[run.runType] = (active[run.runType] ?? 1) - 1;
      change = {
        runId: run.runId,
        from: state,
        state: 'queued',
        clear: run.pendingClear,
        dropPendingClear: true,
        endedAt: null,
      };
      state = 'queued';
    }
    if (state === 'queued') {
      const running = active[run.runType] ?? 0;
      if (running >= run.maxActive) {
        if (change !== undefined) runs.push(change);
        continue;
      }
      active[run.runType] = running + 1;
      change = { ...(change ?? { runId: run.runId, from: run.state }), state: 'running', startedAt: now };
      state = 'running';
    }
    if (state !== 'running') continue;
    const stateOf = new Map(instances.map((t) => [t.taskId, t.state]));
    // Instances come in dependency order, so a failure cascades downstream in one pass.
    for (const t of instances) {
      let next: TaskState | undefined;
      if (t.state === 'none') {
        const ups = (upstreamOf.get(t.taskId) ?? []).map((u) => stateOf.get(u));
        if (ups.some((s) => s === 'failed' || s === 'upstream_failed')) next = 'upstream_failed';
        else if (ups.every((s) => s === 'success' || s === undefined)) next = 'scheduled';
      } else if ((t.state === 'up_for_retry' || t.state === 'up_for_reschedule') && (t.nextTryAt ?? 0) <= now) {
        next = 'scheduled';
      }
      if (next === undefined) continue;
      tasks.push({
        logicalDate: t.logicalDate,
        taskId: t.taskId,
        from: t.state,
        state: next,
        ...(next === 'upstream_failed' ? { endedAt: now, error: 'an upstream task failed' } : {}),
      });
      stateOf.set(t.taskId, next);
    }
    const states = [...stateOf.values()];
    let end: 'success' | 'failed' | undefined;
    if (states.every((s) => s === 'success')) end = 'success';
    else if (states.every((s) => TERMINAL.has(s))) end = 'failed';
    if (end !== undefined) {
      change = { ...(change ?? { runId: run.runId, from: run.state }), state: end, endedAt: now };
      active[run.runType] = (active[run.runType] ?? 1) - 1;
    }
    if (change !== undefined) runs.push(change);
  }
  return { runs, tasks };
}
