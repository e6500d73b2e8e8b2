/**
 * A data directory written by the release before the rollup store (schema version 6: speed and
 * batch minute tables upserted in place, day rollups, intervals without generations) opens with
 * this one, is migrated once, and answers exactly what it answered before, then takes new writes.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { openSqliteStatsStore, type StatsResultRow } from '../../src/stats/index.ts';
import { SQLITE_MIGRATIONS } from '../../src/store/migrations.ts';

const MIN = 60_000;
const DAY = 86_400_000;
const D = Date.UTC(2026, 10, 21);

const dir = mkdtempSync(join(tmpdir(), 'reckon-stats-migration-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A file as the release of schema version 6 left it, with speed rows, batch rows and an interval. */
function releaseSixFile(path: string): void {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.exec(`CREATE TABLE schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL,
    applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))`);
  for (const m of SQLITE_MIGRATIONS.filter((x) => x.version <= 6)) {
    db.exec(m.sql);
    db.prepare('INSERT INTO schema_migrations (version, name) VALUES (?, ?)').run(m.version, m.name);
  }
  const row = (table: string, bucket: number, offer: string, clicks: number) =>
    db
      .prepare(`INSERT INTO ${table} VALUES (?, ?, 'home', 1, ?, ?, 0, 0, 0, 0)`)
      .run(bucket, offer, clicks, BigInt(clicks) * 1_000_000n);
  // Speed rows on both days, batch rows on day one, which a batch interval covers.
  for (let m = 0; m < 3; m++) {
    row('stats_speed_minute', D + m * MIN, 'of-1', 1);
    row('stats_speed_minute', D + DAY + m * MIN, 'of-1', 2);
    row('stats_batch_minute', D + m * MIN, 'of-1', 5);
  }
  db.exec(`INSERT INTO stats_speed_day SELECT bucket_start - bucket_start % ${DAY}, offer_id, placement, sum(emissions),
    sum(clicks), sum(click_cost), sum(duplicate_clicks), sum(fraud_clicks), sum(fraud_cost), sum(invalid_clicks)
    FROM stats_speed_minute GROUP BY 1, 2, 3`);
  db.exec(`INSERT INTO stats_batch_day SELECT bucket_start - bucket_start % ${DAY}, offer_id, placement, sum(emissions),
    sum(clicks), sum(click_cost), sum(duplicate_clicks), sum(fraud_clicks), sum(fraud_cost), sum(invalid_clicks)
    FROM stats_batch_minute GROUP BY 1, 2, 3`);
  db.prepare('INSERT INTO stats_batch_intervals VALUES (?, ?, ?, ?)').run(D, D + DAY, 'old-run', 1);
  db.prepare('INSERT INTO stats_speed_offsets VALUES (?, ?, ?, ?, ?)').run('speed', 'clicks', 0, 42, 1);
  db.close();
}

const brief = (rows: StatsResultRow[]) => rows.map((r) => [r.bucketStart, r.clicks, r.clickCost, r.source, r.final]);

describe('stats store migration', () => {
  it('opens a file of the release before the rollup store, migrates it once and answers as before', async () => {
    const path = join(dir, 'reckon.sqlite');
    releaseSixFile(path);
    const store = await openSqliteStatsStore(path);
    try {
      assert.deepEqual(await store.speedOffsets('speed', 'clicks'), new Map([[0, 42]]));
      assert.deepEqual(
        (await store.batchIntervals()).map((i) => [i.from, i.to, i.runId]),
        [[D, D + DAY, 'old-run']],
      );
      const minutes = (await store.query({ from: D, to: D + 2 * DAY, granularity: 'minute', limit: 100 })).rows;
      assert.deepEqual(brief(minutes), [
        [D, 5, 5_000_000n, 'batch', true],
        [D + MIN, 5, 5_000_000n, 'batch', true],
        [D + 2 * MIN, 5, 5_000_000n, 'batch', true],
        [D + DAY, 2, 2_000_000n, 'speed', false],
        [D + DAY + MIN, 2, 2_000_000n, 'speed', false],
        [D + DAY + 2 * MIN, 2, 2_000_000n, 'speed', false],
      ]);
      for (const granularity of ['hour', 'day'] as const) {
        const rows = (await store.query({ from: D, to: D + 2 * DAY, granularity, limit: 100 })).rows;
        assert.deepEqual(brief(rows), [
          [D, 15, 15_000_000n, 'batch', true],
          [D + DAY, 6, 6_000_000n, 'speed', false],
        ]);
      }
      // New writes go the new way: a run on day two, and a new generation of day one.
      await store.applySpeedDeltas(
        'speed',
        [
          {
            bucketStart: D + DAY,
            offerId: 'of-1',
            placement: 'home',
            emissions: 0,
            clicks: 1,
            clickCost: 1n,
            duplicateClicks: 0,
            fraudClicks: 0,
            fraudCost: 0n,
            invalidClicks: 0,
          },
        ],
        [{ topic: 'clicks', partition: 0, offset: 43 }],
      );
      await store.replaceBatchInterval(D, D + DAY, [], 'new-run');
      const after = (await store.query({ from: D, to: D + 2 * DAY, granularity: 'hour', limit: 100 })).rows;
      assert.deepEqual(brief(after), [[D + DAY, 7, 6_000_001n, 'speed', false]]);
    } finally {
      await store.close();
    }
    const db = new Database(path, { readonly: true });
    try {
      const versions = db.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as {
        version: number;
      }[];
      assert.deepEqual(
        versions.map((v) => v.version),
        SQLITE_MIGRATIONS.map((m) => m.version),
      );
      // The migrated generation was dropped once the new one replaced its only interval.
      assert.deepEqual(db.prepare('SELECT count(*) AS n FROM stats_batch_gen_minute WHERE generation = 1').get(), {
        n: 0,
      });
    } finally {
      db.close();
    }
  });
});
