/**
 * The StatsStore contract against a real PostgreSQL cluster started by the test, plus what
 * several processes sharing one database rely on: concurrent speed writers lose no update,
 * concurrent reruns of one batch interval serialise, and racing openers migrate once.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import pg from 'pg';
import { type MinuteStats, openPostgresStatsStore, type StatsStore } from '../../src/stats/index.ts';
import { POSTGRES_MIGRATIONS } from '../../src/store/migrations.ts';
import { startPostgres } from '../support/postgres.ts';
import { statsStoreContract } from './store-contract.ts';

const D = Date.UTC(2026, 10, 21);
const MIN = 60_000;

function delta(bucketStart: number, offerId: string, clicks: number, clickCost: bigint): MinuteStats {
  return {
    bucketStart,
    offerId,
    placement: 'home',
    emissions: 1,
    clicks,
    clickCost,
    duplicateClicks: 0,
    fraudClicks: 0,
    fraudCost: 0n,
    invalidClicks: 0,
  };
}

/** A deterministic shuffle, so each writer touches the rows in its own order. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

async function withClient<T>(connectionString: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(connectionString);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

statsStoreContract(
  'PostgreSQL 15 (temporary cluster)',
  'postgres',
  async () => {
    const server = await startPostgres();
    const admin = new pg.Client(server.connectionString);
    await admin.connect();
    let n = 0;
    return {
      async createDatabase() {
        const name = `reckon_stats_${n++}`;
        await admin.query(`CREATE DATABASE ${name}`);
        const url = new URL(server.connectionString);
        url.pathname = `/${name}`;
        return url.toString();
      },
      open: (connectionString) => openPostgresStatsStore(connectionString),
      async injectFailures(connectionString) {
        await withClient(connectionString, async (client) => {
          await client.query(`
            CREATE FUNCTION reckon_test_poison() RETURNS trigger LANGUAGE plpgsql AS
              $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$;
            CREATE TRIGGER poison_offset BEFORE INSERT OR UPDATE ON stats_speed_offsets
              FOR EACH ROW WHEN (NEW.topic = 'poison') EXECUTE FUNCTION reckon_test_poison();
            CREATE TRIGGER poison_batch_row BEFORE INSERT ON stats_batch_gen_minute
              FOR EACH ROW WHEN (NEW.offer_id = 'poison') EXECUTE FUNCTION reckon_test_poison();
          `);
        });
      },
      async teardown() {
        await admin.end();
        await server.stop();
      },
    };
  },
  (h, open) => {
    it('loses no update when three store instances (three pools) add deltas to the same rows at once', async () => {
      const db = await h().createDatabase();
      const stores = await Promise.all([0, 1, 2].map(() => open(db)));
      const offers = Array.from({ length: 40 }, (_, i) => `of-${i}`);
      const minutes = [0, 1, 2].map((m) => D + m * MIN);
      const calls = 25;
      // Beyond 2^53 (no double holds it), while the day rollup's sum of 450 of them fits 64 bits.
      const big = 2n ** 53n + 1n;
      // Every call adds 1 click and `big` micros to each of the 120 rows, twice over (so the
      // same row appears twice in one call), in an order of its own.
      const rows = minutes.flatMap((m) => offers.map((o) => delta(m, o, 1, big)));
      await Promise.all(
        stores.map(async (store, s) => {
          for (let c = 0; c < calls; c++) {
            await store.applySpeedDeltas('speed', shuffled([...rows, ...rows], s * 1000 + c), [
              { topic: 'clicks', partition: s, offset: c + 1 },
            ]);
          }
        }),
      );
      const reader = stores[0] as StatsStore;
      const page = await reader.query({ from: D, to: D + 3 * MIN, granularity: 'minute', limit: 1000 });
      assert.equal(page.rows.length, rows.length);
      for (const r of page.rows) {
        assert.equal(r.clicks, 3 * calls * 2, `${r.offerId} at ${r.bucketStart}: every click counted`);
        assert.equal(r.emissions, 3 * calls * 2);
        assert.equal(r.clickCost, big * BigInt(3 * calls * 2));
      }
      assert.deepEqual(
        await reader.speedOffsets('speed', 'clicks'),
        new Map([
          [0, calls],
          [1, calls],
          [2, calls],
        ]),
      );
    });

    it('serialises concurrent reruns of one batch interval from several pools: the last one wins whole', async () => {
      const db = await h().createDatabase();
      const stores = await Promise.all([0, 1, 2].map(() => open(db)));
      const runs = Array.from({ length: 9 }, (_, r) =>
        Array.from({ length: 300 }, (_, i) => delta(D + (i % 60) * MIN, `of-${Math.floor(i / 60)}`, r + 1, 1n)),
      );
      await Promise.all(
        runs.map((rows, r) => (stores[r % 3] as StatsStore).replaceBatchInterval(D, D + 60 * MIN, rows, `run-${r}`)),
      );
      const reader = stores[0] as StatsStore;
      const intervals = await reader.batchIntervals();
      assert.equal(intervals.length, 1);
      const winner = Number(intervals[0]?.runId.slice('run-'.length)) + 1;
      const page = await reader.query({ from: D, to: D + 60 * MIN, granularity: 'minute', limit: 1000 });
      assert.equal(page.rows.length, 300, 'one run, not a mix or a sum');
      assert.ok(page.rows.every((r) => r.clicks === winner && r.source === 'batch' && r.final));
    });

    it('creates the stats_ tables once when three processes start on an empty database at the same time', async () => {
      const db = await h().createDatabase();
      await Promise.all([0, 1, 2].map(() => open(db)));
      await withClient(db, async (client) => {
        const migrations = await client.query('SELECT version FROM schema_migrations ORDER BY version');
        assert.deepEqual(
          migrations.rows,
          POSTGRES_MIGRATIONS.map((m) => ({ version: m.version })),
        );
        const tables = await client.query(
          "SELECT tablename FROM pg_tables WHERE tablename LIKE 'stats\\_%' ORDER BY tablename",
        );
        assert.deepEqual(
          tables.rows.map((r) => r.tablename),
          [
            'stats_batch_gen_day',
            'stats_batch_gen_hour',
            'stats_batch_gen_minute',
            'stats_batch_generations',
            'stats_batch_intervals',
            'stats_discrepancies',
            'stats_speed_day',
            'stats_speed_hour',
            'stats_speed_minute',
            'stats_speed_offsets',
            'stats_speed_run_rows',
            'stats_speed_runs',
          ],
        );
        const types = await client.query(
          `SELECT column_name, data_type FROM information_schema.columns
           WHERE table_name = 'stats_speed_minute' AND column_name IN ('click_cost', 'fraud_cost') ORDER BY column_name`,
        );
        assert.deepEqual(types.rows, [
          { column_name: 'click_cost', data_type: 'bigint' },
          { column_name: 'fraud_cost', data_type: 'bigint' },
        ]);
      });
    });

    it('answers a connection lost inside a transaction with a retriable RECKON_STORE_UNAVAILABLE, and nothing is written', async () => {
      const db = await h().createDatabase();
      const store = await open(db);
      // The server ends the writing session mid-transaction, as a failover or an operator would.
      await withClient(db, async (client) => {
        await client.query(`
          CREATE FUNCTION reckon_test_terminate() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$;
          CREATE TRIGGER terminate_offset BEFORE INSERT OR UPDATE ON stats_speed_offsets
            FOR EACH ROW WHEN (NEW.topic = 'terminate') EXECUTE FUNCTION reckon_test_terminate();
        `);
      });
      await assert.rejects(
        store.applySpeedDeltas('speed', [delta(D, 'of-1', 1, 1n)], [{ topic: 'terminate', partition: 0, offset: 1 }]),
        (err: Error & { code?: string; retriable?: boolean }) => {
          assert.equal(err.code, 'RECKON_STORE_UNAVAILABLE');
          assert.equal(err.retriable, true);
          return true;
        },
      );
      // The pool replaced the lost connection; the failed call left nothing behind.
      const page = await store.query({ from: D, to: D + MIN, granularity: 'minute', limit: 10 });
      assert.deepEqual(page.rows, []);
      assert.deepEqual(await store.speedOffsets('speed', 'terminate'), new Map());
    });
  },
);
