/**
 * The speed layer's process is SIGKILLed 20 times during a stream; afterwards its rows equal the
 * exact ones, every column of every row: nothing counted twice, nothing lost, no waiting click
 * given up twice. CHUNKS=80 streams in smaller pieces with twice as many restarts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openEmbeddedLog } from '../../src/log/index.ts';
import { DEFAULT_SIMULATION, expectedStatistics, NO_FAULTS, SeededRandom, simulate } from '../../src/sim/index.ts';
import { openSqliteStatsStore } from '../../src/stats/index.ts';
import { appendLines, describeRowDifference, sortRows, storeRows } from '../support/speed.ts';
import { waitFor } from '../support/wait.ts';

const DAY = 86_400_000;
const KILLS = 20;
const TSX = import.meta.resolve('tsx');
const WORKER = new URL('../support/speed-worker.ts', import.meta.url).pathname;

describe('SpeedLayer under SIGKILL', () => {
  it('ends with the statistics of a run without kills, across 20 SIGKILLs of its process during a stream', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'reckon-speed-kill-'));
    const log = await openEmbeddedLog({ dir: join(dir, 'log'), retentionIntervalMs: 0 });
    const dbPath = join(dir, 'reckon.sqlite');
    const options = { ...DEFAULT_SIMULATION, seed: 9, emissions: 8_000, faults: NO_FAULTS };
    const sim = simulate(options);
    const expected = expectedStatistics(sim.events, options.rules);
    await log.createTopic({ name: 'emissions', partitions: 4 });
    await log.createTopic({ name: 'clicks', partitions: 4 });
    const rng = new SeededRandom(20);
    const chunks = Number(process.env.CHUNKS ?? 40);
    const per = Math.ceil(sim.lines.length / chunks);
    let appended = 0;
    let kills = 0;
    try {
      for (let round = 0; round < chunks || kills < KILLS; round++) {
        const child = spawn(process.execPath, ['--import', TSX, WORKER, join(dir, 'log'), dbPath], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        const exited = new Promise((r) => child.once('exit', r));
        let ready = false;
        child.stdout?.on('data', (c: Buffer) => {
          if (c.toString().includes('ready')) ready = true;
        });
        await waitFor('the speed process to start', () => ready, 30_000);
        // Stream two chunks of events while it runs, then kill it at a random moment.
        for (let i = 0; i < 2 && appended < sim.lines.length; i++) {
          await appendLines(log, sim.lines.slice(appended, appended + per));
          appended += per;
        }
        if (kills < KILLS) {
          await new Promise((r) => setTimeout(r, rng.int(60)));
          child.kill('SIGKILL');
          kills++;
          await exited;
          continue;
        }
        const store = await openSqliteStatsStore(dbPath);
        const caughtUp = async () => {
          for (const topic of ['emissions', 'clicks']) {
            const recorded = await store.speedOffsets('speed', topic);
            for (let p = 0; p < 4; p++) if (recorded.get(p) !== (await log.latestOffset(topic, p))) return false;
          }
          return true;
        };
        if (appended >= sim.lines.length) {
          await waitFor('the speed layer to catch up', caughtUp, 60_000, 50);
          child.kill('SIGTERM');
          await exited;
          const from = options.start;
          const to = options.start + 2 * DAY;
          const minute = sortRows(await storeRows(store, from, to, 'minute'));
          assert.ok(
            JSON.stringify(minute) === JSON.stringify(expected.minute),
            describeRowDifference(expected.minute, minute),
          );
          assert.deepEqual(sortRows(await storeRows(store, from, to, 'day')), expected.day);
          await store.close();
          break;
        }
        await store.close();
        child.kill('SIGKILL');
        kills++;
        await exited;
      }
      assert.ok(kills >= KILLS, `${kills} kills`);
      t.diagnostic(
        `${kills} SIGKILLs; ${sim.lines.length} lines streamed in ${chunks} chunks; final rows equal the exact ones`,
      );
    } finally {
      await log.close();
    }
  });
});
