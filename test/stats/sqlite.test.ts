/** The StatsStore contract against SQLite files in a temp dir, plus what only the SQLite store promises. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import Database from 'better-sqlite3';
import { openSqliteSchemaStore } from '../../src/store/index.ts';
import { openSqliteStatsStore, openStatsWriterThread, RunColumnsBuilder } from '../../src/stats/index.ts';
import { SQLITE_MIGRATIONS } from '../../src/store/migrations.ts';
import { statsStoreContract } from './store-contract.ts';

statsStoreContract(
  'SQLite',
  'sqlite',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reckon-sqlite-stats-'));
    let n = 0;
    return {
      createDatabase: async () => join(dir, `db-${n++}`, 'reckon.sqlite'),
      open: (path) => openSqliteStatsStore(path),
      async injectFailures(path) {
        const db = new Database(path);
        try {
          db.exec(`
            CREATE TRIGGER poison_offset_insert BEFORE INSERT ON stats_speed_offsets WHEN NEW.topic = 'poison'
              BEGIN SELECT RAISE(ABORT, 'injected failure'); END;
            CREATE TRIGGER poison_offset_update BEFORE UPDATE ON stats_speed_offsets WHEN NEW.topic = 'poison'
              BEGIN SELECT RAISE(ABORT, 'injected failure'); END;
            CREATE TRIGGER poison_batch_row BEFORE INSERT ON stats_batch_gen_minute WHEN NEW.offer_id = 'poison'
              BEGIN SELECT RAISE(ABORT, 'injected failure'); END;
          `);
        } finally {
          db.close();
        }
      },
      teardown: async () => rmSync(dir, { recursive: true, force: true }),
    };
  },
  (h, open) => {
    it('answers through a store thread as in process, batches of columns from a generator included', async () => {
      const path = await h().createDatabase();
      const thread = await openStatsWriterThread({ kind: 'sqlite', path });
      const day = Date.UTC(2026, 10, 21);
      function* batches() {
        for (let b = 0; b < 3; b++) {
          const rows = new RunColumnsBuilder();
          rows.push(day + b * 60_000, 'of-1', 'home', 1, 2, 3n, 0, 0, 0n, 0);
          yield rows.take();
        }
      }
      try {
        await thread.replaceBatchInterval(day, day + 3_600_000, { columns: batches() }, 'run');
        const page = await thread.query({ from: day, to: day + 3_600_000, granularity: 'hour', limit: 10 });
        assert.deepEqual(
          page.rows.map((r) => [r.bucketStart, r.emissions, r.clicks, r.clickCost, r.source, r.final]),
          [[day, 3, 6, 9n, 'batch', true]],
        );
      } finally {
        await thread.close();
      }
    });

    it('shares one file with the schema registry, each opener applying the migrations once', async () => {
      const path = await h().createDatabase();
      const stats = await open(path);
      const registry = await openSqliteSchemaStore(path);
      try {
        await stats.applySpeedDeltas('speed', [], [{ topic: 'clicks', partition: 0, offset: 1 }]);
        assert.equal(await registry.compatibility(null), undefined);
        await registry.setCompatibility(null, 'FULL');
        assert.equal(await registry.compatibility(null), 'FULL');
        assert.deepEqual(await stats.speedOffsets('speed', 'clicks'), new Map([[0, 1]]));
      } finally {
        await registry.close();
      }
      const db = new Database(path, { readonly: true });
      try {
        assert.deepEqual(
          db.prepare('SELECT version FROM schema_migrations ORDER BY version').all(),
          SQLITE_MIGRATIONS.map((m) => ({ version: m.version })),
        );
        const tables = db
          .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'stats_%' ORDER BY name")
          .all();
        assert.deepEqual(tables, [
          { name: 'stats_batch_gen_day' },
          { name: 'stats_batch_gen_hour' },
          { name: 'stats_batch_gen_minute' },
          { name: 'stats_batch_generations' },
          { name: 'stats_batch_intervals' },
          { name: 'stats_discrepancies' },
          { name: 'stats_speed_day' },
          { name: 'stats_speed_hour' },
          { name: 'stats_speed_minute' },
          { name: 'stats_speed_offsets' },
          { name: 'stats_speed_run_rows' },
          { name: 'stats_speed_runs' },
        ]);
        assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
      } finally {
        db.close();
      }
    });

    it('stores money as 64-bit integers and refuses non-integer values at the table (STRICT)', async () => {
      const path = await h().createDatabase();
      const stats = await open(path);
      await stats.applySpeedDeltas(
        'speed',
        [
          {
            bucketStart: 0,
            offerId: 'of-1',
            placement: 'home',
            emissions: 0,
            clicks: 1,
            clickCost: 2n ** 62n,
            duplicateClicks: 0,
            fraudClicks: 0,
            fraudCost: -(2n ** 62n),
            invalidClicks: 0,
          },
        ],
        [],
      );
      await stats.compact();
      const db = new Database(path);
      try {
        const stored = db
          .prepare('SELECT typeof(click_cost) AS type, click_cost, fraud_cost FROM stats_speed_minute')
          .safeIntegers(true)
          .get();
        assert.deepEqual(stored, { type: 'integer', click_cost: 2n ** 62n, fraud_cost: -(2n ** 62n) });
        assert.throws(
          () =>
            db.prepare(`INSERT INTO stats_batch_gen_minute VALUES (1, 0, 'of-1', 'home', 0, 1, 0.5, 0, 0, 0, 0)`).run(),
          /cannot store REAL value in INTEGER column/,
        );
      } finally {
        db.close();
      }
    });
  },
);
