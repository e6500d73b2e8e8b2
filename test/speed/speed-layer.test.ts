import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type Log, openEmbeddedLog } from '../../src/log/index.ts';
import { DEFAULT_SIMULATION, expectedStatistics, NO_FAULTS, simulate } from '../../src/sim/index.ts';
import { SpeedLayer, type SpeedLayerOptions } from '../../src/speed/index.ts';
import { ReckonError } from '../../src/events/index.ts';
import { openSqliteStatsStore, type StatsStore } from '../../src/stats/index.ts';
import { appendLines, plainDecoder, sortRows, storeRows, type TopicOf } from '../support/speed.ts';
import { waitFor } from '../support/wait.ts';

const DAY = 86_400_000;

/** Whether the store records, for every partition of `topics`, the end of the log as the speed layer's next offset. */
async function caughtUp(log: Log, store: StatsStore, topics = ['emissions', 'clicks']): Promise<boolean> {
  for (const topic of topics) {
    const recorded = await store.speedOffsets('speed', topic);
    for (let p = 0; p < 4; p++) if (recorded.get(p) !== (await log.latestOffset(topic, p))) return false;
  }
  return true;
}

/** A log with `emissions` and `clicks` (4 partitions each), a SQLite store, and clean simulated traffic with its exact statistics. */
async function cleanSetUp(name: string, seed: number, emissions: number) {
  const dir = mkdtempSync(join(tmpdir(), `reckon-speed-${name}-`));
  const log = await openEmbeddedLog({ dir: join(dir, 'log'), retentionIntervalMs: 0 });
  const store = await openSqliteStatsStore(join(dir, 'reckon.sqlite'));
  const options = { ...DEFAULT_SIMULATION, seed, emissions, faults: NO_FAULTS };
  const sim = simulate(options);
  await log.createTopic({ name: 'emissions', partitions: 4 });
  await log.createTopic({ name: 'clicks', partitions: 4 });
  /** A speed layer on them, flushing every 50 ms. */
  const layer = (extra: Partial<SpeedLayerOptions> = {}) =>
    new SpeedLayer({
      log,
      sink: store,
      decoder: plainDecoder,
      rules: options.rules,
      allowedLatenessMs: 3_600_000,
      flushIntervalMs: 50,
      ...extra,
    });
  return { log, store, options, sim, layer, expected: expectedStatistics(sim.events, options.rules) };
}

/** Asserts that the store's speed rows over the simulated two days equal the expected ones at each grain. */
async function assertExactRows(
  store: StatsStore,
  start: number,
  expected: ReturnType<typeof expectedStatistics>,
  grains: readonly ('minute' | 'hour' | 'day')[],
): Promise<void> {
  for (const grain of grains)
    assert.deepEqual(sortRows(await storeRows(store, start, start + 2 * DAY, grain)), expected[grain], grain);
}

describe('SpeedLayer', () => {
  it('writes statistics equal to the expected ones on clean input, at minute, hour and day, with offsets in the store', async (t) => {
    const { log, store, options, sim, expected, layer } = await cleanSetUp('clean', 8, 10_000);
    const events = await appendLines(log, sim.lines);
    const speed = layer();
    try {
      await speed.start();
      await waitFor('the speed layer to record every offset', () => caughtUp(log, store), 60_000, 50);
      await speed.stop();
      await assertExactRows(store, options.start, expected, ['minute', 'hour', 'day']);
      t.diagnostic(`${events} events; ${speed.figures.flushes} flushes, ${speed.figures.deltas} deltas`);
    } finally {
      await speed.stop().catch(() => undefined);
      await store.close();
      await log.close();
    }
  });

  it('two speed processes of a group hand partitions over both ways without counting a record twice or losing one', async (t) => {
    const { log, store, options, sim, expected, layer } = await cleanSetUp('group', 28, 6_000);
    const a = layer({ groupMembership: true });
    const b = layer({ groupMembership: true });
    const third = Math.ceil(sim.lines.length / 3);
    try {
      await a.start();
      await appendLines(log, sim.lines.slice(0, third), 50);
      // B joins while A is busy: half of A's partitions move to B.
      await b.start();
      await appendLines(log, sim.lines.slice(third, 2 * third), 50);
      // A leaves: every partition moves to B.
      await a.stop();
      await appendLines(log, sim.lines.slice(2 * third), 50);
      await waitFor('the group to record every offset', () => caughtUp(log, store), 60_000, 50);
      await b.stop();
      await assertExactRows(store, options.start, expected, ['minute', 'day']);
      t.diagnostic(`${sim.lines.length} lines; flushes: A ${a.figures.flushes}, B ${b.figures.flushes}`);
    } finally {
      await a.stop().catch(() => undefined);
      await b.stop().catch(() => undefined);
      await store.close();
      await log.close();
    }
  });

  it('keeps what a flush could not write when the store is busy and writes it with a later flush, exactly', async (t) => {
    const { log, store, options, sim, expected } = await cleanSetUp('busy', 18, 5_000);
    await appendLines(log, sim.lines);
    // The first three writes of deltas find the database locked, as during a long batch write.
    let calls = 0;
    let refused = 0;
    const busy: StatsStore = Object.create(store) as StatsStore;
    busy.applySpeedDeltas = async (group, deltas, offsets, expected) => {
      if (group === 'speed' && calls++ < 3) {
        refused++;
        throw new ReckonError('RECKON_STORE_BUSY', 'the SQLite database is locked by another writer: retry', {
          retriable: true,
        });
      }
      return store.applySpeedDeltas(group, deltas, offsets, expected);
    };
    const speed = new SpeedLayer({
      log,
      sink: busy,
      decoder: plainDecoder,
      rules: options.rules,
      allowedLatenessMs: 3_600_000,
      flushIntervalMs: 20,
      onError: () => undefined,
    });
    try {
      await speed.start();
      await waitFor('the speed layer to record every offset', () => caughtUp(log, store), 60_000, 50);
      await speed.stop();
      assert.deepEqual([refused, speed.figures.retriedFlushes], [3, 3]);
      await assertExactRows(store, options.start, expected, ['minute', 'day']);
      t.diagnostic(`${refused} writes refused, ${speed.figures.flushes} flushes written`);
    } finally {
      await speed.stop().catch(() => undefined);
      await store.close();
      await log.close();
    }
  });

  it('merges per-DC topics into one stream ordered by event time per partition, with one DC lagging, and still equals the expected statistics', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'reckon-speed-dc-'));
    const log = await openEmbeddedLog({ dir: join(dir, 'log'), retentionIntervalMs: 0 });
    const store = await openSqliteStatsStore(join(dir, 'reckon.sqlite'));
    const options = { ...DEFAULT_SIMULATION, seed: 11, emissions: 6_000, dataCenters: 3, faults: NO_FAULTS };
    const sim = simulate(options);
    const expected = expectedStatistics(sim.events, options.rules);
    const dcs = ['dc1', 'dc2', 'dc3'];
    const topicOf: TopicOf = (kind, dc) => `${kind === 'emission' ? 'emissions' : 'clicks'}.${dc ?? 'dc1'}`;
    for (const dc of dcs) {
      await log.createTopic({ name: `emissions.${dc}`, partitions: 4 });
      await log.createTopic({ name: `clicks.${dc}`, partitions: 4 });
    }
    const order = new Map<string, { topic: string; ts: number }[]>();
    const speed = new SpeedLayer({
      log,
      sink: store,
      decoder: plainDecoder,
      rules: options.rules,
      allowedLatenessMs: 3_600_000,
      flushIntervalMs: 50,
      idleSourceMs: 5_000,
      emissionsTopics: dcs.map((dc) => `emissions.${dc}`),
      clicksTopics: dcs.map((dc) => `clicks.${dc}`),
      observe: (e) => {
        const key = `${e.partition}/${e.kind}`;
        let seen = order.get(key);
        if (seen === undefined) order.set(key, (seen = []));
        seen.push({ topic: e.topic, ts: e.ts });
      },
    });
    try {
      await speed.start();
      // dc2 lags one chunk behind the others: without the merger its events would come in late.
      const chunks = 12;
      const per = Math.ceil(sim.lines.length / chunks);
      const dcOf = (line: string) => (JSON.parse(line) as { dc?: string }).dc;
      for (let i = 0; i <= chunks; i++) {
        const now = sim.lines.slice(i * per, (i + 1) * per).filter((l) => dcOf(l) !== 'dc2');
        const lagging = i === 0 ? [] : sim.lines.slice((i - 1) * per, i * per).filter((l) => dcOf(l) === 'dc2');
        await appendLines(log, [...now, ...lagging], 1000, topicOf);
      }
      const topics = dcs.flatMap((dc) => [`emissions.${dc}`, `clicks.${dc}`]);
      await waitFor('the speed layer to record every offset', () => caughtUp(log, store, topics), 60_000, 50);
      await speed.stop();
      // The simulator's DCs are sorted by event time but for a little jitter: the merged stream
      // may keep those inversions and must add none.
      const inversions = (ts: number[]) => {
        let n = 0;
        let max = Number.NEGATIVE_INFINITY;
        for (const x of ts) {
          if (x < max) n++;
          max = Math.max(max, x);
        }
        return n;
      };
      let events = 0;
      let within = 0;
      for (const [key, seen] of order) {
        events += seen.length;
        const input = dcs
          .map((dc) => inversions(seen.filter((e) => e.topic.endsWith(`.${dc}`)).map((e) => e.ts)))
          .reduce((a, b) => a + b, 0);
        within += input;
        assert.ok(
          inversions(seen.map((e) => e.ts)) <= input,
          `${key}: the merged stream is out of event-time order beyond its inputs`,
        );
      }
      await assertExactRows(store, options.start, expected, ['minute', 'day']);
      t.diagnostic(
        `${events} events from 3 DCs merged in event-time order per partition and kind (${within} inversions within a DC kept)`,
      );
    } finally {
      await speed.stop().catch(() => undefined);
      await store.close();
      await log.close();
    }
  });
});
