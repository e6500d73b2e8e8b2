/**
 * The `StatsStore` contract: one suite, run against every implementation (SQLite files, and a
 * real PostgreSQL cluster started by the test).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import {
  type BatchRows,
  type Granularity,
  type MinuteStats,
  type MinuteStatsColumns,
  type StatsColumns,
  type StatsQuery,
  type StatsResultRow,
  type StatsStore,
  zeroColumns,
} from '../../src/stats/index.ts';
import { waitFor } from '../support/wait.ts';

/** How the suite gets stores of one implementation. */
export interface StatsStoreHarness {
  /** Creates an empty database and returns what `open` needs to reach it. */
  createDatabase(): Promise<string>;
  /** Opens a store on a database (again): a reopen must see everything committed before. */
  open(database: string): Promise<StatsStore>;
  /**
   * Installs triggers (through a connection of its own) that fail, inside the writing
   * transaction, any write of an offset of topic `poison` and any batch row of offer `poison`.
   */
  injectFailures(database: string): Promise<void>;
  teardown(): Promise<void>;
}

const MIN = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
/** 2026-11-21T00:00:00Z. */
const D = Date.UTC(2026, 10, 21);
const at = (hh: number, mm = 0) => D + hh * HOUR + mm * MIN;

const ZERO: StatsColumns = zeroColumns();
const COLUMN_NAMES = Object.keys(ZERO) as (keyof StatsColumns)[];

/** A minute row (or delta) with every column not given zero. */
function row(
  bucketStart: number,
  offerId: string,
  placement: string,
  columns: Partial<StatsColumns> = {},
): MinuteStats {
  return { bucketStart, offerId, placement, ...ZERO, ...columns };
}

const keyOf = (r: MinuteStats) => `${r.bucketStart}|${r.offerId}|${r.placement}`;

function addColumns(into: StatsColumns, r: StatsColumns): void {
  into.emissions += r.emissions;
  into.clicks += r.clicks;
  into.clickCost += r.clickCost;
  into.duplicateClicks += r.duplicateClicks;
  into.fraudClicks += r.fraudClicks;
  into.fraudCost += r.fraudCost;
  into.invalidClicks += r.invalidClicks;
}

const isZero = (c: StatsColumns) => COLUMN_NAMES.every((n) => c[n] === 0 || c[n] === 0n);

const compareRows = (a: MinuteStats, b: MinuteStats) =>
  a.bucketStart - b.bucketStart ||
  (a.offerId < b.offerId ? -1 : a.offerId > b.offerId ? 1 : 0) ||
  (a.placement < b.placement ? -1 : a.placement > b.placement ? 1 : 0);

/** Every row of a query, following cursors; checks that pages are full until the last. */
async function queryAll(store: StatsStore, q: Omit<StatsQuery, 'limit' | 'cursor'>, limit = 1000) {
  const rows: StatsResultRow[] = [];
  let cursor: string | undefined;
  for (let pages = 0; ; pages++) {
    assert.ok(pages < 10_000, 'pagination ends');
    const page = await store.query({ ...q, limit, ...(cursor !== undefined ? { cursor } : {}) });
    rows.push(...page.rows);
    if (page.nextCursor === undefined) return rows;
    assert.equal(page.rows.length, limit, 'a page before the last is full');
    cursor = page.nextCursor;
  }
}

/** Rows as compact tuples for readable assertions: [bucket, offer, placement, clicks, clickCost, source, final]. */
const brief = (rows: StatsResultRow[]) =>
  rows.map((r) => [
    new Date(r.bucketStart).toISOString(),
    r.offerId,
    r.placement,
    r.clicks,
    r.clickCost,
    r.source,
    r.final,
  ]);

/** Rows (in the order given) as column batches of `size` rows, as the batch layer hands them over. */
function columnsOf(rows: readonly MinuteStats[], size: number): BatchRows {
  const batches: MinuteStatsColumns[] = [];
  for (let i = 0; i < rows.length; i += size) {
    const part = rows.slice(i, i + size);
    batches.push({
      length: part.length,
      bucketStart: Float64Array.from(part, (r) => r.bucketStart),
      offerId: part.map((r) => r.offerId),
      placement: part.map((r) => r.placement),
      emissions: Int32Array.from(part, (r) => r.emissions),
      clicks: part.map((r) => r.clicks),
      clickCost: BigInt64Array.from(part, (r) => r.clickCost),
      duplicateClicks: Int32Array.from(part, (r) => r.duplicateClicks),
      fraudClicks: part.map((r) => r.fraudClicks),
      fraudCost: part.map((r) => r.fraudCost),
      invalidClicks: Int32Array.from(part, (r) => r.invalidClicks),
    });
  }
  return { columns: batches };
}

const TSX = import.meta.resolve('tsx');
const CHILD = new URL('./writer-child.ts', import.meta.url).pathname;

/** Runs the contract against one implementation; `extra` adds implementation-specific tests inside the suite. */
export function statsStoreContract(
  name: string,
  kind: 'sqlite' | 'postgres',
  harness: () => Promise<StatsStoreHarness>,
  extra?: (h: () => StatsStoreHarness, open: (database: string) => Promise<StatsStore>) => void,
): void {
  describe(`StatsStore contract: ${name}`, () => {
    let h: StatsStoreHarness;
    const opened: StatsStore[] = [];
    const open = async (database: string) => {
      const store = await h.open(database);
      opened.push(store);
      return store;
    };
    const fresh = async () => open(await h.createDatabase());
    before(async () => {
      h = await harness();
    });
    after(async () => {
      for (const s of opened) await s.close();
      await h?.teardown();
    });

    it(`is the ${kind} store`, async () => {
      assert.equal((await fresh()).kind, kind);
    });

    it('adds deltas up exactly, negative ones included, with bigint money beyond 2^53 micros', async () => {
      const store = await fresh();
      const big = 2n ** 60n + 7n; // far beyond Number.MAX_SAFE_INTEGER
      await store.applySpeedDeltas(
        'speed',
        [
          row(at(10), 'of-1', 'home', { clicks: 2, clickCost: big, emissions: 5 }),
          row(at(10), 'of-1', 'home', { clicks: 1, clickCost: big, fraudCost: big }),
          row(at(10, 1), 'of-1', 'home', { invalidClicks: 1 }),
        ],
        [],
      );
      // The speed layer retracts a click it learned was a duplicate.
      await store.applySpeedDeltas(
        'speed',
        [row(at(10), 'of-1', 'home', { clicks: -1, clickCost: -big, duplicateClicks: 1, fraudClicks: 3 })],
        [],
      );
      const [first, second, ...rest] = await queryAll(store, { from: D, to: D + DAY, granularity: 'minute' });
      assert.deepEqual(rest, []);
      assert.deepEqual(first, {
        ...row(at(10), 'of-1', 'home', {
          emissions: 5,
          clicks: 2,
          clickCost: 2n * big - big,
          duplicateClicks: 1,
          fraudClicks: 3,
          fraudCost: big,
        }),
        source: 'speed',
        final: false,
      });
      assert.equal(first?.clickCost, 2n ** 60n + 7n);
      assert.equal(second?.invalidClicks, 1);
      // Sums over an hour and a day stay exact too.
      const [hour] = await queryAll(store, { from: D, to: D + DAY, granularity: 'hour' });
      assert.equal(hour?.clickCost, big);
      assert.equal(hour?.fraudCost, big);
      await store.applySpeedDeltas('speed', [row(at(10, 2), 'of-1', 'home', { clickCost: big })], []);
      const [day] = await queryAll(store, { from: D, to: D + DAY, granularity: 'day' });
      assert.equal(day?.clickCost, 2n * big);
    });

    it('commits deltas and offsets together: a failure inside the transaction leaves neither', async () => {
      const db = await h.createDatabase();
      const store = await open(db);
      await store.applySpeedDeltas(
        'speed',
        [row(at(10), 'of-1', 'home', { clicks: 1 })],
        [{ topic: 'clicks', partition: 0, offset: 10 }],
      );
      await h.injectFailures(db);
      // The deltas are written first; the offset of topic `poison` then fails in the same transaction.
      const many = Array.from({ length: 3000 }, (_, i) =>
        row(at(11) + (i % 50) * MIN, `of-${i}`, 'home', { clicks: 1 }),
      );
      await assert.rejects(
        store.applySpeedDeltas(
          'speed',
          [row(at(10), 'of-1', 'home', { clicks: 5 }), ...many],
          [
            { topic: 'clicks', partition: 0, offset: 99 },
            { topic: 'poison', partition: 0, offset: 1 },
          ],
        ),
      );
      assert.deepEqual(
        brief(await queryAll(store, { from: D, to: D + DAY, granularity: 'minute' })),
        [[new Date(at(10)).toISOString(), 'of-1', 'home', 1, 0n, 'speed', false]],
        'no delta of the failed call is visible',
      );
      assert.deepEqual(await store.speedOffsets('speed', 'clicks'), new Map([[0, 10]]), 'nor its offsets');
      assert.deepEqual(await store.speedOffsets('speed', 'poison'), new Map());
      // The store keeps working after the rollback.
      await store.applySpeedDeltas(
        'speed',
        [row(at(10), 'of-1', 'home', { clicks: 5 })],
        [{ topic: 'clicks', partition: 0, offset: 11 }],
      );
      assert.equal((await queryAll(store, { from: D, to: D + DAY, granularity: 'minute' }))[0]?.clicks, 6);
      assert.deepEqual(await store.speedOffsets('speed', 'clicks'), new Map([[0, 11]]));
    });

    it('leaves deltas and offsets consistent when the writing process is killed (SIGKILL) mid-stream', async () => {
      const db = await h.createDatabase();
      const reader = await open(db);
      const keys = 2000;
      for (let round = 0; round < 3; round++) {
        const before = (await reader.speedOffsets('killed', 'clicks')).get(0) ?? 0;
        const child = spawn(process.execPath, ['--import', TSX, CHILD, kind, db, String(keys), String(D)], {
          stdio: ['ignore', 'ignore', 'inherit'],
        });
        const exited = new Promise((resolve) => child.once('exit', resolve));
        try {
          // Kill at a different point of a transaction each round.
          const target = before + 3 + round * 2;
          await waitFor(
            'the writer to commit some calls',
            async () => ((await reader.speedOffsets('killed', 'clicks')).get(0) ?? 0) >= target,
            30_000,
            round + 1,
          );
        } finally {
          child.kill('SIGKILL');
          await exited;
        }
      }
      const offset = (await reader.speedOffsets('killed', 'clicks')).get(0) ?? 0;
      assert.ok(offset >= 9, `the writer committed calls (offset ${offset})`);
      const rows = await queryAll(reader, { from: D, to: D + HOUR, granularity: 'minute' });
      assert.equal(rows.length, keys);
      for (const r of rows) {
        assert.equal(r.clicks, offset, `${keyOf(r)}: one click per recorded offset, no more and no fewer`);
        assert.equal(r.clickCost, BigInt(offset));
      }
    });

    it('answers exactly after SIGKILLs at seeded moments of flushes, compactions and batch switches (20 of each)', async () => {
      const KILLS = 20;
      const keys = 400;
      // A seeded sequence of kill delays (ms): the same moments every run of the test.
      let seed = 20261207;
      const nextDelay = (): number => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return seed % 40;
      };
      const db = await h.createDatabase();
      const reader = await open(db);
      const killDuring = async (mode: 'flush' | 'compact' | 'switch'): Promise<void> => {
        const child = spawn(process.execPath, ['--import', TSX, CHILD, kind, db, String(keys), String(D), mode], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        const exited = new Promise((resolve) => child.once('exit', resolve));
        try {
          let out = '';
          child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
          // Killed once it has finished an iteration, at a seeded moment of a later one.
          await waitFor('the writer to finish an iteration', () => out.includes('.'), 30_000, 2);
          await new Promise((r) => setTimeout(r, nextDelay()));
        } finally {
          child.kill('SIGKILL');
          await exited;
        }
      };
      for (const mode of ['flush', 'compact'] as const) {
        for (let k = 0; k < KILLS; k++) {
          await killDuring(mode);
          // Offsets say exactly which runs are in: one click per recorded offset, in every row.
          const offset = (await reader.speedOffsets('killed', 'clicks')).get(0) ?? 0;
          const rows = await queryAll(reader, { from: D, to: D + HOUR, granularity: 'minute' });
          assert.equal(rows.length, offset === 0 ? 0 : keys, `${mode} kill ${k}: every key or none`);
          for (const r of rows) {
            assert.equal(r.clicks, offset, `${mode} kill ${k}, ${keyOf(r)}: one click per recorded offset`);
            assert.equal(r.clickCost, BigInt(offset));
          }
          const days = await queryAll(reader, { from: D, to: D + DAY, granularity: 'day' });
          const dayClicks = days.reduce((n, r) => n + r.clicks, 0);
          assert.equal(dayClicks, offset * keys, `${mode} kill ${k}: the day rollup agrees`);
        }
      }
      const speedOffset = (await reader.speedOffsets('killed', 'clicks')).get(0) ?? 0;
      assert.ok(speedOffset >= 2 * KILLS, `every writer committed calls (offset ${speedOffset})`);
      for (let k = 0; k < KILLS; k++) {
        await killDuring('switch');
        // The old generation or the new one, whole: every key batch, all 1 click or all 2.
        const rows = await queryAll(reader, { from: D, to: D + HOUR, granularity: 'minute' });
        const intervals = await reader.batchIntervals();
        if (intervals.length === 0) {
          assert.ok(
            rows.every((r) => r.source === 'speed'),
            `switch kill ${k}: nothing switched in yet`,
          );
          continue;
        }
        assert.deepEqual(
          intervals.map((i) => [i.from, i.to]),
          [[D, D + HOUR]],
          `switch kill ${k}: one interval`,
        );
        assert.equal(rows.length, keys, `switch kill ${k}: every key`);
        const clicks = new Set(rows.map((r) => r.clicks));
        assert.equal(clicks.size, 1, `switch kill ${k}: one generation, never a mix (${[...clicks].join(', ')})`);
        assert.ok(
          rows.every((r) => r.source === 'batch' && r.final),
          `switch kill ${k}: batch rows, final`,
        );
        const hours = await queryAll(reader, { from: D, to: D + HOUR, granularity: 'hour' });
        const hourClicks = hours.reduce((n, r) => n + r.clicks, 0);
        assert.equal(
          hourClicks,
          (rows[0]?.clicks ?? 0) * keys,
          `switch kill ${k}: the hour rollup is the same generation`,
        );
      }
      // A write after all that succeeds and leaves exactly its rows.
      const again = Array.from({ length: 3 }, (_, i) =>
        row(D + i * MIN, 'of-after', 'home', { clicks: 7, clickCost: 7n }),
      );
      await reader.replaceBatchInterval(D, D + HOUR, again, 'after');
      assert.deepEqual(
        (await queryAll(reader, { from: D, to: D + HOUR, granularity: 'minute' })).map((r) => [r.offerId, r.clicks]),
        [
          ['of-after', 7],
          ['of-after', 7],
          ['of-after', 7],
        ],
      );
    });

    it('round-trips speed offsets per group and topic; the last offset recorded wins', async () => {
      const store = await fresh();
      assert.deepEqual(await store.speedOffsets('speed', 'clicks'), new Map());
      await store.applySpeedDeltas(
        'speed',
        [],
        [
          { topic: 'clicks', partition: 0, offset: 5 },
          { topic: 'clicks', partition: 3, offset: 2 ** 40 },
          { topic: 'emissions', partition: 0, offset: 7 },
        ],
      );
      await store.applySpeedDeltas('other', [], [{ topic: 'clicks', partition: 0, offset: 1 }]);
      assert.deepEqual(
        await store.speedOffsets('speed', 'clicks'),
        new Map([
          [0, 5],
          [3, 2 ** 40],
        ]),
      );
      await store.applySpeedDeltas(
        'speed',
        [row(at(1), 'of-1', 'home', { emissions: 1 })],
        [
          { topic: 'clicks', partition: 0, offset: 9 },
          { topic: 'clicks', partition: 0, offset: 12 },
        ],
      );
      assert.equal((await store.speedOffsets('speed', 'clicks')).get(0), 12);
      assert.equal((await store.speedOffsets('speed', 'clicks')).get(3), 2 ** 40);
      assert.deepEqual(await store.speedOffsets('speed', 'emissions'), new Map([[0, 7]]));
      assert.deepEqual(await store.speedOffsets('other', 'clicks'), new Map([[0, 1]]));
      assert.deepEqual(await store.speedOffsets('nobody', 'clicks'), new Map());
    });

    it('fences a hand-over: deltas whose expected offsets were moved on by another writer are refused whole', async () => {
      const store = await fresh();
      const c3 = (offset: number) => [{ topic: 'clicks', partition: 3, offset }];
      // The first owner: nothing recorded yet (-1), then its own positions.
      await store.applySpeedDeltas('speed', [row(at(1), 'of-1', 'home', { clicks: 2 })], c3(10), c3(-1));
      await store.applySpeedDeltas('speed', [row(at(1), 'of-1', 'home', { clicks: 1 })], c3(15), c3(10));
      // A second owner that read 10 before the first wrote 15 would count 10..14 again: refused.
      await assert.rejects(
        store.applySpeedDeltas('speed', [row(at(1), 'of-1', 'home', { clicks: 5 })], c3(20), c3(10)),
        (e: Error & { code?: string }) =>
          e.code === 'RECKON_STATS_OFFSETS_MOVED' && /clicks\/3 is at 15, this writer expected 10/.test(e.message),
      );
      assert.equal((await store.speedOffsets('speed', 'clicks')).get(3), 15, 'offsets unchanged');
      const rows = await queryAll(store, { from: at(0), to: at(2), granularity: 'minute' });
      assert.deepEqual(
        rows.map((r) => r.clicks),
        [3],
        'the refused deltas were not added',
      );
      // Expecting none where an offset is recorded is refused too; the right expectation goes in.
      await assert.rejects(store.applySpeedDeltas('speed', [], c3(20), c3(-1)), { code: 'RECKON_STATS_OFFSETS_MOVED' });
      await store.applySpeedDeltas('speed', [row(at(1), 'of-1', 'home', { clicks: 5 })], c3(20), c3(15));
      assert.equal((await store.speedOffsets('speed', 'clicks')).get(3), 20);
    });

    it('replaces batch intervals: a rerun gives identical results, and replaces, never adds', async () => {
      const store = await fresh();
      const run1 = [
        row(at(10), 'of-1', 'home', { clicks: 3, clickCost: 900_000n }),
        row(at(10, 30), 'of-2', 'home', { clicks: 1, clickCost: 100_000n }),
      ];
      await store.replaceBatchInterval(at(10), at(11), run1, 'run-1');
      const q = { from: D, to: D + DAY, granularity: 'minute' as Granularity };
      const once = await queryAll(store, q);
      await store.replaceBatchInterval(at(10), at(11), run1, 'run-1');
      assert.deepEqual(await queryAll(store, q), once, 'the same run twice: identical rows');
      for (const g of ['hour', 'day'] as const) {
        assert.deepEqual(
          (await queryAll(store, { ...q, granularity: g })).map((r) => [r.offerId, r.clicks, r.clickCost]),
          [
            ['of-1', 3, 900_000n],
            ['of-2', 1, 100_000n],
          ],
          `${g}: each row counted once`,
        );
      }
      assert.deepEqual(
        (await store.batchIntervals()).map(({ from, to, runId }) => ({ from, to, runId })),
        [{ from: at(10), to: at(11), runId: 'run-1' }],
      );
      // A rerun with other results: of-2's row is gone, of-1's replaced.
      await store.replaceBatchInterval(at(10), at(11), [row(at(10), 'of-1', 'home', { clicks: 2 })], 'run-2');
      assert.deepEqual(brief(await queryAll(store, q)), [
        [new Date(at(10)).toISOString(), 'of-1', 'home', 2, 0n, 'batch', true],
      ]);
      const intervals = await store.batchIntervals();
      assert.equal(intervals.length, 1);
      assert.equal(intervals[0]?.runId, 'run-2');
      assert.ok(Number.isSafeInteger(intervals[0]?.writtenAt));
      // An empty result is a result too: the interval stays covered and holds nothing.
      await store.applySpeedDeltas('speed', [row(at(10, 5), 'of-9', 'home', { clicks: 50 })], []);
      await store.replaceBatchInterval(at(10), at(11), [], 'run-3');
      assert.deepEqual(await queryAll(store, q), []);
    });

    it('serves rows of incomplete input as batch but never final, and a complete rerun makes them final', async () => {
      const store = await fresh();
      await store.applySpeedDeltas('speed', [row(at(3), 'of-1', 'home', { clicks: 9 })], []);
      await store.replaceBatchInterval(D, D + DAY, [row(at(3), 'of-1', 'home', { clicks: 2 })], 'forced', {
        complete: false,
      });
      const q = { from: D, to: D + DAY, granularity: 'minute' as Granularity };
      for (const granularity of ['minute', 'hour', 'day'] as const) {
        const page = await store.query({ ...q, granularity, limit: 100 });
        assert.deepEqual(
          page.rows.map((r) => [r.clicks, r.source, r.final]),
          [[2, 'batch', false]],
          `${granularity}: the forced rows are served, marked not final`,
        );
        assert.equal(page.exactUntil, null, 'incomplete input does not count as exact');
      }
      assert.deepEqual(
        (await store.batchIntervals()).map(({ runId, complete }) => [runId, complete]),
        [['forced', false]],
      );
      // Hours recalculated from complete input inside the forced day are final; the rest of the day is not.
      await store.replaceBatchInterval(at(3), at(4), [row(at(3), 'of-1', 'home', { clicks: 3 })], 'hour');
      assert.deepEqual(
        (await store.query({ ...q, granularity: 'hour', limit: 100 })).rows.map((r) => [r.clicks, r.final]),
        [[3, true]],
      );
      assert.deepEqual(
        (await store.query({ ...q, granularity: 'day', limit: 100 })).rows.map((r) => [r.clicks, r.final]),
        [[3, false]],
      );
      await store.replaceBatchInterval(D, D + DAY, [row(at(3), 'of-1', 'home', { clicks: 3 })], 'complete');
      const page = await store.query({ ...q, granularity: 'day', limit: 100 });
      assert.deepEqual(
        page.rows.map((r) => [r.clicks, r.source, r.final]),
        [[3, 'batch', true]],
      );
      assert.equal(page.exactUntil, D + DAY);
      assert.deepEqual(
        (await store.batchIntervals()).map(({ runId, complete }) => [runId, complete]),
        [['complete', true]],
      );
    });

    it('rolls a failed batch replacement back whole: the previous rows and interval stay', async () => {
      const db = await h.createDatabase();
      const store = await open(db);
      await store.replaceBatchInterval(at(10), at(11), [row(at(10), 'of-1', 'home', { clicks: 3 })], 'good');
      await h.injectFailures(db);
      await assert.rejects(
        store.replaceBatchInterval(
          at(0),
          at(24),
          [row(at(1), 'of-1', 'home', { clicks: 1 }), row(at(2), 'poison', 'home', { clicks: 1 })],
          'bad',
        ),
      );
      assert.deepEqual(
        (await store.batchIntervals()).map(({ from, to, runId }) => ({ from, to, runId })),
        [{ from: at(10), to: at(11), runId: 'good' }],
      );
      assert.deepEqual(brief(await queryAll(store, { from: D, to: D + DAY, granularity: 'minute' })), [
        [new Date(at(10)).toISOString(), 'of-1', 'home', 3, 0n, 'batch', true],
      ]);
    });

    it('takes rows as column batches in key order, by code point, and rejects them out of order, twice or outside the interval, writing nothing', async () => {
      const store = await fresh();
      const good = [
        row(at(1), 'of-1', 'home', { clicks: 2, clickCost: 2n ** 62n }),
        row(at(1), 'of-1', 'search', { emissions: 1 }),
        // U+FFFD before U+1F600 by code point, though not by UTF-16 code unit.
        row(at(1), 'of-\uFFFD', 'home', { invalidClicks: 1 }),
        row(at(1), 'of-\u{1F600}', 'home', { fraudClicks: 1, fraudCost: 5n }),
        row(at(2, 59), 'of-1', 'home', { duplicateClicks: 3 }),
      ];
      await store.replaceBatchInterval(D, D + DAY, columnsOf(good, 2), 'columns');
      const q = { from: D, to: D + DAY, granularity: 'minute' as Granularity };
      const written = await queryAll(store, q);
      assert.deepEqual(
        written.map(({ source: _s, final: _f, ...r }) => r),
        good,
      );
      const days = await queryAll(store, { ...q, granularity: 'day' });
      assert.deepEqual(
        days.map((r) => [r.offerId, r.placement, r.clicks, r.duplicateClicks, r.invalidClicks, r.fraudCost]),
        [
          ['of-1', 'home', 2, 3, 0, 0n],
          ['of-1', 'search', 0, 0, 0, 0n],
          ['of-\uFFFD', 'home', 0, 0, 1, 0n],
          ['of-\u{1F600}', 'home', 0, 0, 0, 5n],
        ],
        'the day rollup of a whole day',
      );
      const rejects = async (rows: BatchRows, code: string, pattern: RegExp) => {
        await assert.rejects(store.replaceBatchInterval(D, D + DAY, rows, 'bad'), (err: Error & { code?: string }) => {
          assert.equal(err.name, 'ReckonError');
          assert.equal(err.code, code);
          assert.match(err.message, pattern);
          return true;
        });
        assert.deepEqual(await queryAll(store, q), written, 'nothing written');
        assert.deepEqual(
          (await store.batchIntervals()).map((i) => i.runId),
          ['columns'],
        );
      };
      const swapped = [good[0], good[2], good[1]] as MinuteStats[];
      await rejects(columnsOf(swapped, 2), 'RECKON_STATS_INVALID_ROW', /rows\[2\]: .* before the row above it/);
      const twice = [good[0], good[1], good[1]] as MinuteStats[];
      await rejects(columnsOf(twice, 2), 'RECKON_STATS_INVALID_ROW', /rows\[2\]: .* a second time/);
      const late = [...good, row(D + DAY, 'of-1', 'home', { clicks: 1 })];
      await rejects(columnsOf(late, 3), 'RECKON_STATS_INVALID_INTERVAL', /rows\[5\]\.bucketStart: .* lies outside/);
      const fractional = [good[0] as MinuteStats, { ...(good[1] as MinuteStats), clicks: 1.5 }];
      await rejects(columnsOf(fractional, 1), 'RECKON_STATS_INVALID_ROW', /rows\[1\]\.clicks: expected an integer/);
      const unaligned = [{ ...(good[0] as MinuteStats), bucketStart: at(1) + 1 }];
      await rejects(columnsOf(unaligned, 1), 'RECKON_STATS_INVALID_ROW', /rows\[0\]\.bucketStart: expected the epoch/);
    });

    it('replaces interval records lying inside a new interval and keeps the others', async () => {
      const store = await fresh();
      const ranges = async () => (await store.batchIntervals()).map((i) => [i.from, i.to, i.runId]);
      await store.replaceBatchInterval(at(10), at(11), [row(at(10, 10), 'of-1', 'home', { clicks: 1 })], 'h10');
      await store.replaceBatchInterval(at(11), at(12), [row(at(11, 10), 'of-1', 'home', { clicks: 2 })], 'h11');
      await store.replaceBatchInterval(at(13), at(14), [], 'h13');
      // Overlapping [11:30, 13:30): neither neighbour lies inside it, so both stay; rows of the overlap are replaced.
      await store.replaceBatchInterval(at(11, 30), at(13, 30), [row(at(12), 'of-1', 'home', { clicks: 4 })], 'x');
      assert.deepEqual(await ranges(), [
        [at(10), at(11), 'h10'],
        [at(11), at(12), 'h11'],
        [at(11, 30), at(13, 30), 'x'],
        [at(13), at(14), 'h13'],
      ]);
      assert.deepEqual(
        (await queryAll(store, { from: D, to: D + DAY, granularity: 'minute' })).map((r) => [r.bucketStart, r.clicks]),
        [
          [at(10, 10), 1],
          [at(11, 10), 2],
          [at(12), 4],
        ],
      );
      // The day's run contains all of them: one record remains.
      await store.replaceBatchInterval(D, D + DAY, [row(at(5), 'of-1', 'home', { clicks: 8 })], 'day');
      assert.deepEqual(await ranges(), [[D, D + DAY, 'day']]);
      // An hour rerun inside the day is recorded beside it; the day's rows of that hour are replaced.
      await store.replaceBatchInterval(at(5), at(6), [row(at(5), 'of-1', 'home', { clicks: 9 })], 'h5');
      assert.deepEqual(await ranges(), [
        [D, D + DAY, 'day'],
        [at(5), at(6), 'h5'],
      ]);
      assert.deepEqual(
        (await queryAll(store, { from: D, to: D + DAY, granularity: 'day' })).map((r) => [r.clicks, r.final]),
        [[9, true]],
      );
    });

    it('prefers batch rows inside covered intervals and speed rows outside, with final and source at minute, hour and day', async () => {
      const store = await fresh();
      const iso = (ms: number) => new Date(ms).toISOString();
      await store.applySpeedDeltas(
        'speed',
        [
          row(at(10), 'of-1', 'home', { clicks: 1 }),
          row(at(10, 5), 'of-1', 'home', { clicks: 2 }), // covered by a batch run that found nothing there
          row(at(10, 45), 'of-1', 'home', { clicks: 4 }),
          row(at(11, 10), 'of-1', 'home', { clicks: 8 }),
          row(at(24), 'of-1', 'home', { clicks: 16 }),
        ],
        [],
      );
      await store.replaceBatchInterval(
        at(10),
        at(10, 30),
        [row(at(10), 'of-1', 'home', { clicks: 100 }), row(at(10, 20), 'of-1', 'home', { clicks: 200 })],
        'half-hour',
      );
      await store.replaceBatchInterval(at(11), at(12), [row(at(11, 10), 'of-1', 'home', { clicks: 800 })], 'hour');
      const q = (granularity: Granularity) => queryAll(store, { from: D, to: D + 2 * DAY, granularity });
      assert.deepEqual(brief(await q('minute')), [
        [iso(at(10)), 'of-1', 'home', 100, 0n, 'batch', true],
        [iso(at(10, 20)), 'of-1', 'home', 200, 0n, 'batch', true],
        [iso(at(10, 45)), 'of-1', 'home', 4, 0n, 'speed', false],
        [iso(at(11, 10)), 'of-1', 'home', 800, 0n, 'batch', true],
        [iso(at(24)), 'of-1', 'home', 16, 0n, 'speed', false],
      ]);
      assert.deepEqual(brief(await q('hour')), [
        // Half covered: batch minutes and speed minutes summed; neither final nor batch.
        [iso(at(10)), 'of-1', 'home', 304, 0n, 'speed', false],
        [iso(at(11)), 'of-1', 'home', 800, 0n, 'batch', true],
        [iso(at(24)), 'of-1', 'home', 16, 0n, 'speed', false],
      ]);
      assert.deepEqual(brief(await q('day')), [
        [iso(D), 'of-1', 'home', 1104, 0n, 'speed', false],
        [iso(D + DAY), 'of-1', 'home', 16, 0n, 'speed', false],
      ]);
      // A query of only the covered half hour reads only batch minutes, but the hour is not final.
      assert.deepEqual(brief(await queryAll(store, { from: at(10), to: at(10, 30), granularity: 'hour' })), [
        [iso(at(10)), 'of-1', 'home', 300, 0n, 'batch', false],
      ]);
      // Minutes are read when they start inside [from, to): 10:00:30 excludes the minute 10:00.
      assert.deepEqual(
        brief(await queryAll(store, { from: at(10) + 30_000, to: at(10, 20) + 1, granularity: 'minute' })),
        [[iso(at(10, 20)), 'of-1', 'home', 200, 0n, 'batch', true]],
      );
      // The day's run covers it all: every bucket of the day is final.
      await store.replaceBatchInterval(D, D + DAY, [row(at(10), 'of-1', 'home', { clicks: 1000 })], 'day');
      assert.deepEqual(brief(await q('hour')), [
        [iso(at(10)), 'of-1', 'home', 1000, 0n, 'batch', true],
        [iso(at(24)), 'of-1', 'home', 16, 0n, 'speed', false],
      ]);
      assert.deepEqual(brief(await q('day')), [
        [iso(D), 'of-1', 'home', 1000, 0n, 'batch', true],
        [iso(D + DAY), 'of-1', 'home', 16, 0n, 'speed', false],
      ]);
      // Speed deltas into a covered minute never show.
      await store.applySpeedDeltas('speed', [row(at(10), 'of-1', 'home', { clicks: 5 })], []);
      assert.equal((await q('day'))[0]?.clicks, 1000);
    });

    it('filters by offerId and placement', async () => {
      const store = await fresh();
      const deltas: MinuteStats[] = [];
      for (const offer of ['of-1', 'of-2', 'of-3'])
        for (const placement of ['home', 'search'])
          for (const m of [0, 1, 90]) deltas.push(row(at(8) + m * MIN, offer, placement, { emissions: 1, clicks: 1 }));
      await store.applySpeedDeltas('speed', deltas, []);
      await store.replaceBatchInterval(
        at(8),
        at(9),
        deltas.filter((d) => d.bucketStart < at(9)).map((d) => ({ ...d, clicks: 10 })),
        'run',
      );
      const base = { from: D, to: D + DAY };
      const offer2 = await queryAll(store, { ...base, granularity: 'minute', offerId: 'of-2' });
      assert.equal(offer2.length, 6);
      assert.ok(offer2.every((r) => r.offerId === 'of-2'));
      const search = await queryAll(store, { ...base, granularity: 'hour', placement: 'search' });
      assert.deepEqual(
        search.map((r) => [r.bucketStart, r.offerId, r.placement, r.clicks]),
        [
          [at(8), 'of-1', 'search', 20],
          [at(8), 'of-2', 'search', 20],
          [at(8), 'of-3', 'search', 20],
          [at(9), 'of-1', 'search', 1],
          [at(9), 'of-2', 'search', 1],
          [at(9), 'of-3', 'search', 1],
        ],
      );
      const both = await queryAll(store, { ...base, granularity: 'day', offerId: 'of-3', placement: 'home' });
      assert.deepEqual(
        both.map((r) => [r.offerId, r.placement, r.clicks, r.emissions]),
        [['of-3', 'home', 21, 3]],
      );
      assert.deepEqual(await queryAll(store, { ...base, granularity: 'day', offerId: 'of-404' }), []);
    });

    it('returns every row exactly once across pages, in key order, for any page size', async () => {
      const store = await fresh();
      // Offer ids that order differently by UTF-16 code unit and by code point, and by case.
      const offers = ['A', 'a', 'b', 'é', '\uFF61', '\u{1F600}', 'of-10', 'of-9'];
      const deltas: MinuteStats[] = [];
      for (const [i, offer] of offers.entries())
        for (const placement of ['home', 'Home', 'search'])
          for (const m of [0, 59, 60, 61, 24 * 60 + 1])
            deltas.push(row(D + m * MIN, offer, placement, { clicks: i + 1 }));
      await store.applySpeedDeltas('speed', deltas, []);
      await store.replaceBatchInterval(
        D,
        D + HOUR,
        deltas.filter((d) => d.bucketStart < D + HOUR),
        'run',
      );
      for (const granularity of ['minute', 'hour', 'day'] as const) {
        const all = await queryAll(store, { from: D, to: D + 2 * DAY, granularity }, 100_000);
        const keys = all.map(keyOf);
        assert.equal(new Set(keys).size, keys.length, 'no key twice');
        // Ordered by bucket, then offer and placement by code point.
        const byCodePoint = (a: string, b: string) => {
          const x = [...a].map((c) => c.codePointAt(0) as number);
          const y = [...b].map((c) => c.codePointAt(0) as number);
          for (let i = 0; i < Math.min(x.length, y.length); i++)
            if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
          return x.length - y.length;
        };
        const sorted = [...all].sort(
          (a, b) =>
            a.bucketStart - b.bucketStart || byCodePoint(a.offerId, b.offerId) || byCodePoint(a.placement, b.placement),
        );
        assert.deepEqual(keys, sorted.map(keyOf), `${granularity}: key order`);
        for (const limit of [1, 2, 3, 7, 24, all.length - 1, all.length, all.length + 1]) {
          const paged = await queryAll(store, { from: D, to: D + 2 * DAY, granularity }, limit);
          assert.deepEqual(paged, all, `${granularity}, pages of ${limit}`);
        }
      }
      const last = await store.query({ from: D, to: D + 2 * DAY, granularity: 'day', limit: 1000 });
      assert.equal(last.nextCursor, undefined, 'the last page has no cursor');
    });

    it('omits rows whose columns are all zero, at every granularity', async () => {
      const store = await fresh();
      await store.applySpeedDeltas(
        'speed',
        [
          row(at(1), 'of-1', 'home', { clicks: 1, clickCost: 5n }),
          row(at(1), 'of-2', 'home', { clicks: 1 }),
          row(at(2), 'of-3', 'home', { emissions: 2 }),
          row(at(2, 1), 'of-3', 'home', { emissions: -2 }),
          row(at(3), 'of-4', 'home'),
        ],
        [],
      );
      // Retractions bring of-1 at 01:00 back to zero in every column.
      await store.applySpeedDeltas('speed', [row(at(1), 'of-1', 'home', { clicks: -1, clickCost: -5n })], []);
      await store.replaceBatchInterval(at(5), at(6), [row(at(5), 'of-5', 'home')], 'run');
      assert.deepEqual(
        (await queryAll(store, { from: D, to: D + DAY, granularity: 'minute' })).map((r) => [r.bucketStart, r.offerId]),
        [
          [at(1), 'of-2'],
          [at(2), 'of-3'],
          [at(2, 1), 'of-3'],
        ],
      );
      // of-3's hour and day sums are zero: omitted too.
      assert.deepEqual(
        (await queryAll(store, { from: D, to: D + DAY, granularity: 'hour' })).map((r) => [r.bucketStart, r.offerId]),
        [[at(1), 'of-2']],
      );
      assert.deepEqual(
        (await queryAll(store, { from: D, to: D + DAY, granularity: 'day' })).map((r) => r.offerId),
        ['of-2'],
      );
    });

    it('answers exactUntil: the end of contiguous batch coverage from the earliest interval', async () => {
      const store = await fresh();
      const exact = async () => (await store.query({ from: D, to: D + DAY, granularity: 'hour', limit: 1 })).exactUntil;
      assert.equal(await exact(), null);
      await store.replaceBatchInterval(at(2), at(3), [], 'h2');
      assert.equal(await exact(), at(3));
      await store.replaceBatchInterval(at(4), at(5), [], 'h4');
      assert.equal(await exact(), at(3), 'a gap ends the contiguous coverage');
      await store.replaceBatchInterval(at(3), at(4), [], 'h3');
      assert.equal(await exact(), at(5), 'touching intervals are contiguous');
      await store.replaceBatchInterval(at(4, 30), at(7), [], 'overlap');
      assert.equal(await exact(), at(7), 'overlapping intervals are contiguous');
      await store.replaceBatchInterval(at(0), at(1), [], 'earlier');
      assert.equal(await exact(), at(1), 'coverage counts from the earliest interval');
      // The same for any query range: exactUntil does not depend on the query.
      assert.equal(
        (await store.query({ from: D + 5 * DAY, to: D + 6 * DAY, granularity: 'minute', limit: 5 })).exactUntil,
        at(1),
      );
    });

    it('rejects nonsense with typed errors and writes nothing', async () => {
      const store = await fresh();
      const rejects = async (promise: Promise<unknown>, code: string, pattern: RegExp) =>
        assert.rejects(promise, (err: Error & { code?: string; retriable?: boolean }) => {
          assert.equal(err.name, 'ReckonError');
          assert.equal(err.code, code);
          assert.equal(err.retriable, false);
          assert.match(err.message, pattern);
          return true;
        });
      const ok = { from: D, to: D + DAY, granularity: 'hour' as Granularity, limit: 10 };
      await rejects(store.query({ ...ok, from: D + DAY }), 'RECKON_STATS_INVALID_QUERY', /from .* must be before to/);
      await rejects(store.query({ ...ok, limit: 0 }), 'RECKON_STATS_INVALID_QUERY', /limit: expected an integer >= 1/);
      await rejects(store.query({ ...ok, limit: 1.5 }), 'RECKON_STATS_INVALID_QUERY', /limit/);
      await rejects(store.query({ ...ok, from: -60_000 }), 'RECKON_STATS_INVALID_QUERY', /from: expected epoch/);
      await rejects(
        store.query({ ...ok, granularity: 'week' as Granularity }),
        'RECKON_STATS_INVALID_QUERY',
        /granularity: expected minute, hour or day/,
      );
      await rejects(store.query({ ...ok, cursor: 'not-a-cursor' }), 'RECKON_STATS_INVALID_CURSOR', /cursor/);
      await rejects(
        store.applySpeedDeltas(
          'speed',
          [row(at(1), 'of-1', 'home', { clicks: 1 }), row(at(1) + 1, 'of-1', 'home')],
          [],
        ),
        'RECKON_STATS_INVALID_ROW',
        /deltas\[1\]\.bucketStart: expected the epoch milliseconds of a UTC minute start/,
      );
      await rejects(
        store.applySpeedDeltas('speed', [row(at(1), 'of-1', 'home', { clickCost: 5 as unknown as bigint })], []),
        'RECKON_STATS_INVALID_ROW',
        /deltas\[0\]\.clickCost: expected a bigint count of micros/,
      );
      await rejects(
        store.applySpeedDeltas('speed', [row(at(1), 'of-1', 'home', { clicks: 0.5 })], []),
        'RECKON_STATS_INVALID_ROW',
        /deltas\[0\]\.clicks: expected an integer/,
      );
      await rejects(
        store.applySpeedDeltas(
          'speed',
          [row(at(1), 'of-1', 'home', { clicks: 1 })],
          [{ topic: 'clicks', partition: -1, offset: 3 }],
        ),
        'RECKON_STATS_INVALID_OFFSET',
        /offsets\[0\]\.partition/,
      );
      await rejects(
        store.replaceBatchInterval(at(1), at(2), [row(at(2), 'of-1', 'home', { clicks: 1 })], 'run'),
        'RECKON_STATS_INVALID_INTERVAL',
        /rows\[0\]\.bucketStart: .* lies outside the batch interval/,
      );
      await rejects(
        store.replaceBatchInterval(at(1), at(1), [], 'run'),
        'RECKON_STATS_INVALID_INTERVAL',
        /0 <= from < to/,
      );
      await rejects(
        store.replaceBatchInterval(at(1), at(1) + 1, [], 'run'),
        'RECKON_STATS_INVALID_INTERVAL',
        /minute-aligned/,
      );
      await rejects(
        store.replaceBatchInterval(at(1), at(2), [row(at(1), 'of-1', 'home'), row(at(1), 'of-1', 'home')], 'run'),
        'RECKON_STATS_INVALID_ROW',
        /rows\[1\]: a second row/,
      );
      assert.deepEqual(await store.query(ok), { rows: [], exactUntil: null });
      assert.deepEqual(await store.speedOffsets('speed', 'clicks'), new Map());
      assert.deepEqual(await store.batchIntervals(), []);
    });

    it('keeps rows, offsets and intervals across close and reopen', async () => {
      const db = await h.createDatabase();
      const first = await open(db);
      await first.applySpeedDeltas(
        'speed',
        [row(at(3), 'of-1', 'home', { clicks: 2, clickCost: 2n ** 62n })],
        [{ topic: 'clicks', partition: 1, offset: 77 }],
      );
      await first.replaceBatchInterval(at(1), at(2), [row(at(1, 5), 'of-1', 'home', { emissions: 4 })], 'run-1');
      const q = { from: D, to: D + DAY, granularity: 'minute' as Granularity };
      const rows = await queryAll(first, q);
      const intervals = await first.batchIntervals();
      assert.equal(rows.length, 2);
      await first.close();
      await first.close(); // closing twice is harmless

      const again = await open(db);
      assert.deepEqual(await queryAll(again, q), rows);
      assert.deepEqual(await again.batchIntervals(), intervals);
      assert.deepEqual(await again.speedOffsets('speed', 'clicks'), new Map([[1, 77]]));
      await again.applySpeedDeltas('speed', [row(at(3), 'of-1', 'home', { clicks: 1 })], []);
      assert.equal((await queryAll(again, { ...q, granularity: 'day' }))[0]?.clicks, 3);
    });

    it('answers, after any interleaving of flushes, compactions, batch switches and queries, what a plain sum of the applied deltas and the latest batch rows would (property)', async () => {
      /** Minute rows summed into buckets of `size` ms, per offer and placement. */
      const bucketSums = (minutes: readonly MinuteStats[], size: number): MinuteStats[] => {
        const sums = new Map<string, MinuteStats>();
        for (const m of minutes) {
          const bucket = m.bucketStart - (m.bucketStart % size);
          const k = `${bucket}|${m.offerId}|${m.placement}`;
          const sum = sums.get(k) ?? row(bucket, m.offerId, m.placement);
          addColumns(sum, m);
          sums.set(k, sum);
        }
        return [...sums.values()];
      };
      const offers = ['of-1', 'of-2', 'é'];
      const placements = ['home', 'search'];
      // Minutes within two days, clustered so that keys repeat and hours have several minutes.
      const minute = fc
        .tuple(fc.integer({ min: 0, max: 47 }), fc.constantFrom(0, 1, 29, 30, 59))
        .map(([hh, mm]) => at(hh, mm));
      const columns = fc.record({
        emissions: fc.integer({ min: -3, max: 5 }),
        clicks: fc.integer({ min: -2, max: 5 }),
        clickCost: fc.bigInt({ min: -(2n ** 60n), max: 2n ** 60n }),
        duplicateClicks: fc.integer({ min: 0, max: 2 }),
        fraudClicks: fc.integer({ min: 0, max: 2 }),
        fraudCost: fc.bigInt({ min: 0n, max: 10n ** 12n }),
        invalidClicks: fc.integer({ min: 0, max: 2 }),
      });
      const minuteRow = fc
        .tuple(minute, fc.constantFrom(...offers), fc.constantFrom(...placements), columns)
        .map(([b, o, p, c]) => row(b, o, p, c));
      const speedOp = fc.record({
        kind: fc.constant('speed' as const),
        deltas: fc.array(minuteRow, { maxLength: 25 }),
      });
      /** The rows moved into [from, to), one per key (the first). */
      const rowsInside = (rows: readonly MinuteStats[], from: number, to: number): MinuteStats[] => {
        const seen = new Set<string>();
        return rows
          .map((r) => ({ ...r, bucketStart: from + ((r.bucketStart - D) % (to - from)) }))
          .filter((r) => {
            const fresh = !seen.has(keyOf(r));
            seen.add(keyOf(r));
            return fresh;
          });
      };
      // Half-hour-aligned intervals, so that hours end up partly and wholly covered.
      const batchOp = fc
        .record({
          kind: fc.constant('batch' as const),
          start: fc.integer({ min: 0, max: 95 }),
          length: fc.integer({ min: 1, max: 6 }),
          rows: fc.array(minuteRow, { maxLength: 15 }),
          batchSize: fc.option(fc.integer({ min: 1, max: 4 })),
        })
        .map(({ kind, start, length, rows, batchSize }) => {
          const from = D + start * 30 * MIN;
          const to = Math.min(from + length * 30 * MIN, D + 2 * DAY);
          const inside = rowsInside(rows, from, to);
          return { kind, from, to, rows: inside, batchSize };
        });
      // Whole days too, which day queries read from the day rollups.
      const dayBatchOp = fc
        .record({
          day: fc.constantFrom(0, 1),
          days: fc.constantFrom(1, 2),
          rows: fc.array(minuteRow, { maxLength: 15 }),
          batchSize: fc.option(fc.integer({ min: 1, max: 4 })),
        })
        .map(({ day, days, rows, batchSize }) => {
          const from = D + day * DAY;
          const to = Math.min(from + days * DAY, D + 2 * DAY);
          const inside = rowsInside(rows, from, to);
          return { kind: 'batch' as const, from, to, rows: inside, batchSize };
        });
      const compactOp = fc.constant({ kind: 'compact' as const });
      const queryOp = fc.constant({ kind: 'query' as const });
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.oneof(speedOp, batchOp, dayBatchOp, compactOp, queryOp), { minLength: 1, maxLength: 12 }),
          fc.integer({ min: 1, max: 40 }),
          async (ops, limit) => {
            const store = await fresh();
            // The model: speed sums per key, batch rows per key, covered minutes.
            const speed = new Map<string, MinuteStats>();
            const batch = new Map<string, MinuteStats>();
            let intervals: { from: number; to: number }[] = [];
            const covered = (ms: number) => intervals.some((i) => i.from <= ms && ms < i.to);
            /** Minute rows the model expects now. */
            const expectedNow = () =>
              [...speed.values()]
                .filter((r) => !covered(r.bucketStart))
                .concat([...batch.values()].filter((r) => covered(r.bucketStart)))
                .filter((r) => !isZero(r))
                .sort(compareRows)
                .map((r) => ({
                  ...r,
                  source: covered(r.bucketStart) ? 'batch' : 'speed',
                  final: covered(r.bucketStart),
                }));
            for (const op of ops) {
              if (op.kind === 'compact') {
                await store.compact();
                assert.equal((await store.pendingRuns()).runs, 0, 'a compaction leaves no run waiting');
              } else if (op.kind === 'query') {
                const now = await queryAll(store, { from: D, to: D + 2 * DAY, granularity: 'minute' }, limit);
                assert.deepEqual(now, expectedNow(), 'a query between writes');
                const totals = zeroColumns();
                for (const r of speed.values()) addColumns(totals, r);
                assert.deepEqual(await store.speedTotals(D, D + 2 * DAY), totals, 'speed totals');
              } else if (op.kind === 'speed') {
                await store.applySpeedDeltas('speed', op.deltas, []);
                for (const d of op.deltas) {
                  const sum = speed.get(keyOf(d)) ?? row(d.bucketStart, d.offerId, d.placement);
                  addColumns(sum, d);
                  speed.set(keyOf(d), sum);
                }
              } else {
                // Rows as given, or as column batches in key order.
                const given = op.batchSize === null ? op.rows : columnsOf([...op.rows].sort(compareRows), op.batchSize);
                await store.replaceBatchInterval(op.from, op.to, given, 'run');
                for (const [k, r] of batch) if (r.bucketStart >= op.from && r.bucketStart < op.to) batch.delete(k);
                for (const r of op.rows) batch.set(keyOf(r), { ...r });
                intervals = intervals.filter((i) => !(i.from >= op.from && i.to <= op.to));
                intervals.push({ from: op.from, to: op.to });
              }
            }
            const coveredRange = (from: number, to: number) => {
              for (let m = from; m < to; m += MIN) if (!covered(m)) return false;
              return true;
            };
            const expectedMinutes = expectedNow();
            const range = { from: D, to: D + 2 * DAY };
            const minutes = await queryAll(store, { ...range, granularity: 'minute' }, limit);
            assert.deepEqual(minutes, expectedMinutes);
            for (const [granularity, size] of [
              ['hour', HOUR],
              ['day', DAY],
            ] as const) {
              const expected = bucketSums(minutes, size)
                .filter((r) => !isZero(r))
                .sort(compareRows)
                .map((r) => {
                  const whole = coveredRange(r.bucketStart, r.bucketStart + size);
                  return { ...r, source: whole ? 'batch' : 'speed', final: whole };
                });
              assert.deepEqual(await queryAll(store, { ...range, granularity }, limit), expected, granularity);
            }
            // Days cut by the query's range: only the minutes inside count, and label the rows.
            const cut = { from: D + 90 * MIN, to: D + 2 * DAY - 30 * MIN };
            const inCut = minutes.filter((m) => m.bucketStart >= cut.from && m.bucketStart < cut.to);
            const expectedCut = bucketSums(inCut, DAY)
              .filter((r) => !isZero(r))
              .sort(compareRows)
              .map((r) => ({
                ...r,
                source: coveredRange(Math.max(r.bucketStart, cut.from), Math.min(r.bucketStart + DAY, cut.to))
                  ? 'batch'
                  : 'speed',
                final: coveredRange(r.bucketStart, r.bucketStart + DAY),
              }));
            assert.deepEqual(await queryAll(store, { ...cut, granularity: 'day' }, limit), expectedCut, 'cut days');
          },
        ),
        { numRuns: kind === 'postgres' ? 15 : 40 },
      );
    });

    it('sums speed rows of an interval and records speed-versus-batch totals per column, a rerun replacing them', async () => {
      const store = await fresh();
      const big = 2n ** 60n;
      await store.applySpeedDeltas(
        'speed',
        [
          row(D, 'of-1', 'home', { emissions: 3, clicks: 2, clickCost: big }),
          row(D + 60_000, 'of-2', 'home', { clicks: 1, clickCost: 5n, invalidClicks: 4 }),
          row(D + HOUR, 'of-1', 'home', { clicks: 100 }),
        ],
        [],
      );
      const speed = await store.speedTotals(D, D + HOUR);
      assert.deepEqual(speed, { ...ZERO, emissions: 3, clicks: 3, clickCost: big + 5n, invalidClicks: 4 });
      assert.deepEqual(await store.speedTotals(D + 2 * HOUR, D + 3 * HOUR), ZERO);
      const batch = { ...speed, clicks: 4, clickCost: big + 9n };
      await store.recordDiscrepancies(D, D + HOUR, 'run-1', speed, batch);
      await store.recordDiscrepancies(D, D + HOUR, 'run-2', speed, { ...batch, clicks: 5 });
      const got = await store.discrepancies(D, D + DAY);
      assert.deepEqual(
        got.map((x) => [x.column, x.speed, x.batch, x.runId]),
        [
          ['emissions', 3n, 3n, 'run-2'],
          ['clicks', 3n, 5n, 'run-2'],
          ['clickCost', big + 5n, big + 9n, 'run-2'],
          ['duplicateClicks', 0n, 0n, 'run-2'],
          ['fraudClicks', 0n, 0n, 'run-2'],
          ['fraudCost', 0n, 0n, 'run-2'],
          ['invalidClicks', 4n, 4n, 'run-2'],
        ],
      );
      assert.deepEqual(await store.discrepancies(D + HOUR, D + DAY), [], 'intervals that do not overlap are left out');
      await assert.rejects(store.recordDiscrepancies(D + HOUR, D, 'run-3', speed, batch), /not a valid interval/);
    });

    it('sums each side on its own per bucket for the dashboard series, filtered by offer and placement', async () => {
      const store = await fresh();
      await store.applySpeedDeltas(
        'speed',
        [
          row(at(1, 5), 'of-1', 'home', { clicks: 2, clickCost: 7n }),
          row(at(1, 59), 'of-2', 'home', { clicks: 1 }),
          row(at(2, 0), 'of-1', 'side', { emissions: 4 }),
        ],
        [],
      );
      await store.replaceBatchInterval(
        at(1),
        at(2),
        [row(at(1, 5), 'of-1', 'home', { clicks: 3, clickCost: 9n })],
        'run',
      );
      const speed = await store.sideSeries('speed', { from: D, to: D + DAY, granularity: 'hour' });
      assert.deepEqual(speed, [
        { bucketStart: at(1), columns: { ...ZERO, clicks: 3, clickCost: 7n } },
        { bucketStart: at(2), columns: { ...ZERO, emissions: 4 } },
      ]);
      assert.deepEqual(await store.sideSeries('batch', { from: D, to: D + DAY, granularity: 'day' }), [
        { bucketStart: D, columns: { ...ZERO, clicks: 3, clickCost: 9n } },
      ]);
      assert.deepEqual(
        await store.sideSeries('speed', {
          from: D,
          to: D + DAY,
          granularity: 'minute',
          offerId: 'of-1',
          placement: 'home',
        }),
        [{ bucketStart: at(1, 5), columns: { ...ZERO, clicks: 2, clickCost: 7n } }],
      );
      await assert.rejects(store.sideSeries('speed', { from: D, to: D, granularity: 'hour' }), /not a valid interval/);
    });

    extra?.(() => h, open);
  });
}
