import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openEmbeddedLog } from '../../src/log/index.ts';
import { DEFAULT_SIMULATION, expectedStatistics, NO_FAULTS, simulate } from '../../src/sim/index.ts';
import { SpeedLayer } from '../../src/speed/index.ts';
import { openSqliteStatsStore } from '../../src/store/index.ts';
import { appendLines, plainDecoder, sortRows, storeRows } from '../support/speed.ts';
import { waitFor } from '../support/wait.ts';

const DAY = 86_400_000;

describe('SpeedLayer', () => {
  it('writes statistics equal to the expected ones on clean input, at minute, hour and day, with offsets in the store', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'reckon-speed-'));
    const log = await openEmbeddedLog({ dir: join(dir, 'log'), retentionIntervalMs: 0 });
    const store = await openSqliteStatsStore(join(dir, 'reckon.sqlite'));
    const options = { ...DEFAULT_SIMULATION, seed: 8, emissions: 10_000, faults: NO_FAULTS };
    const sim = simulate(options);
    const expected = expectedStatistics(sim.events, options.rules);
    await log.createTopic({ name: 'emissions', partitions: 4 });
    await log.createTopic({ name: 'clicks', partitions: 4 });
    const events = await appendLines(log, sim.lines);
    const speed = new SpeedLayer({
      log,
      sink: store,
      decoder: plainDecoder,
      rules: options.rules,
      allowedLatenessMs: 3_600_000,
      flushIntervalMs: 50,
    });
    try {
      await speed.start();
      const ends = async (topic: string) => Promise.all([0, 1, 2, 3].map((p) => log.latestOffset(topic, p)));
      const caughtUp = async () => {
        for (const topic of ['emissions', 'clicks']) {
          const recorded = await store.speedOffsets('speed', topic);
          const end = await ends(topic);
          if (!end.every((o, p) => recorded.get(p) === o)) return false;
        }
        return true;
      };
      await waitFor('the speed layer to record every offset', caughtUp, 60_000, 50);
      await speed.stop();
      const from = options.start;
      const to = options.start + 2 * DAY;
      assert.deepEqual(sortRows(await storeRows(store, from, to, 'minute')), expected.minute);
      assert.deepEqual(sortRows(await storeRows(store, from, to, 'hour')), expected.hour);
      assert.deepEqual(sortRows(await storeRows(store, from, to, 'day')), expected.day);
      t.diagnostic(`${events} events; ${speed.figures.flushes} flushes, ${speed.figures.deltas} deltas`);
    } finally {
      await speed.stop().catch(() => undefined);
      await store.close();
      await log.close();
    }
  });
});
