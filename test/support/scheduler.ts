/**
 * Test helper: a scheduler on a temporary SQLite store with a clock the test moves, and a way to
 * run ticks until the runs it cares about are done.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DagDefinition, defineDag, Scheduler, type SchedulerOptions } from '../../src/scheduler/index.ts';
import { openSqliteSchedulerStore, type SchedulerStore } from '../../src/store/index.ts';

/** 2026-11-21T00:00:00Z, where test clocks start. */
export const T0 = Date.UTC(2026, 10, 21);

/** A scheduler, its store and its clock. */
export interface SchedulerHarness {
  scheduler: Scheduler;
  store: SchedulerStore;
  /** The SQLite file, for a second store or scheduler on the same state. */
  file: string;
  now(): number;
  setNow(t: number): void;
  /** One tick, then waits for the tries it started. */
  step(at?: number): Promise<void>;
  /** Steps (advancing the clock by `advanceMs` each time) until no run is queued or running. */
  settle(advanceMs?: number, maxSteps?: number): Promise<number>;
  close(): Promise<void>;
}

/** Opens a harness; `dags` are defined here, options go to the scheduler. */
export async function schedulerHarness(
  dags: DagDefinition[],
  options: Partial<SchedulerOptions> & { file?: string } = {},
): Promise<SchedulerHarness> {
  const file = options.file ?? join(mkdtempSync(join(tmpdir(), 'reckon-sched-')), 'reckon.sqlite');
  const store = options.store ?? (await openSqliteSchedulerStore(file));
  let now = T0;
  const scheduler = new Scheduler({ clock: () => now, ...options, store, dags: dags.map(defineDag) });
  const step = async (at?: number) => {
    if (at !== undefined) now = at;
    await scheduler.tick();
    await scheduler.drain();
  };
  return {
    scheduler,
    store,
    file,
    now: () => now,
    setNow: (t) => {
      now = t;
    },
    step,
    async settle(advanceMs = 1000, maxSteps = 10_000) {
      for (let i = 0; i < maxSteps; i++) {
        await step(now + advanceMs);
        const open = await store.listRuns({ states: ['queued', 'running'], limit: 1 });
        const pending = (await store.listRuns({})).some((r) => r.pendingClear !== null);
        if (open.length === 0 && !pending) return i + 1;
      }
      throw new Error(`runs still open after ${maxSteps} steps`);
    },
    close: () => store.close(),
  };
}
