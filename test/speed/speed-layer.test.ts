import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openEmbeddedLog } from '../../src/log/index.ts';
import { DEFAULT_SIMULATION, expectedStatistics, NO_FAULTS, SeededRandom, simulate } from '../../src/sim/index.ts';
import { SpeedLayer } from '../../src/speed/index.ts';
import { openSqliteStatsStore } from '../../src/store/index.ts';
import { appendLines, plainDecoder, sortRows, storeRows } from '../support/speed.ts';
import { waitFor } from '../support/wait.ts';

const DAY = 86_400_000;
const KILLS = 20;
const TSX = import.meta.resolve('tsx');
const WORKER = new URL('../support/speed-worker.ts', import.meta.url).pathname;

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
    const chunks = 40;
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
          assert.deepEqual(sortRows(await storeRows(store, from, to, 'minute')), expected.minute);
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
