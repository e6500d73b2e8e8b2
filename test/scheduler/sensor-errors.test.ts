import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type PokeResult, pipelineDags, type TaskRunContext } from '../../src/scheduler/index.ts';
import { DEFAULT_SIMULATION } from '../../src/sim/index.ts';
import { openSqliteStatsStore } from '../../src/stats/index.ts';
import { openSqliteSchedulerStore } from '../../src/store/index.ts';

const DAY = 86_400_000;

describe('lake input sensors', () => {
  it('wait and look again when the log cannot answer now (a frozen broker), instead of failing the run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reckon-sensor-'));
    const stats = await openSqliteStatsStore(join(dir, 'stats.sqlite'));
    const store = await openSqliteSchedulerStore(join(dir, 'scheduler.sqlite'));
    let broken = true;
    const log = {
      partitionCount: async () => 1,
      latestOffset: async () => {
        if (broken) throw new Error("Cannot destructure property 'partitions' of 'low.pop(...)' as it is undefined.");
        return 0;
      },
    };
    const day = Date.UTC(2026, 10, 2);
    const dags = pipelineDags({
      lakeDir: join(dir, 'lake'),
      stats,
      rules: DEFAULT_SIMULATION.rules,
      checks: { discrepancy: async () => {}, anomaly: async () => {} },
      log,
      clock: () => day + 3 * DAY,
    });
    const sensor = dags.find((d) => d.id === 'recalculate-daily')?.tasks.find((t) => t.id === 'wait-for-hours');
    assert.ok(sensor?.poke !== undefined);
    const context: TaskRunContext = {
      dagId: 'recalculate-daily',
      taskId: 'wait-for-hours',
      runId: 'manual__test',
      logicalDate: day,
      interval: { start: day, end: day + DAY },
      attempt: 1,
      clearCount: 0,
      signal: new AbortController().signal,
    };
    const first = (await sensor.poke(context)) as PokeResult;
    assert.ok(typeof first === 'object' && !first.met && 'waitingFor' in first, JSON.stringify(first));
    assert.match(first.waitingFor, /could not be checked now \(Cannot destructure/);
    broken = false;
    // The log answers again: the next poke checks the lake (whose hours are not sealed here).
    const second = (await sensor.poke(context)) as PokeResult;
    assert.ok(typeof second === 'object' && !second.met && 'waitingFor' in second, JSON.stringify(second));
    assert.match(second.waitingFor, /are not sealed/);
    await stats.close();
    await store.close();
  });
});
