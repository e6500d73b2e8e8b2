/**
 * The serving store in a SQLite file (embedded mode), through better-sqlite3. Each write is one
 * IMMEDIATE transaction, so it holds the write lock from its first statement and cannot
 * interleave with another process's writes; reads run in one deferred transaction, so a query
 * sees the intervals and the rows of one snapshot. Money columns are read with
 * `safeIntegers()`, so micros beyond 2^53 come back exact.
 */
import type Database from 'better-sqlite3';
import { batchDaySums } from './batch-day-sums.ts';
import { mergeCoverage, statsPage, statsWindows } from './stats-coverage.ts';
import { type RawStatsRow, sumByDay, sumDeltasByKey, toMinuteStats } from './stats-deltas.ts';
import {
  batchColumnsChecker,
  batchColumnsOf,
  checkBatchInterval,
  checkMinuteRows,
  checkExpectedOffsets,
  checkOffsets,
  checkQuery,
  GRANULARITY_MS,
} from './stats-input.ts';
import type { BatchInterval, BatchRows, MinuteStats, SinkOffset, StatsQuery, StatsStore } from './stats-types.ts';
import { openSqliteDatabase } from './sqlite-database.ts';
import { busyToRetriable } from './sql-runner.ts';
import {
  compareDiscrepancies,
  seriesStatement,
  type DiscrepancyRecord,
  discrepancyRecords,
  toDiscrepancy,
  totalsOf,
} from './stats-discrepancies.ts';

const COLUMNS =
  'bucket_start, offer_id, placement, emissions, clicks, click_cost, duplicate_clicks, fraud_clicks, fraud_cost, invalid_clicks';
const SUMS = `sum(emissions) AS emissions, sum(clicks) AS clicks, sum(click_cost) AS click_cost,
  sum(duplicate_clicks) AS duplicate_clicks, sum(fraud_clicks) AS fraud_clicks, sum(fraud_cost) AS fraud_cost,
  sum(invalid_clicks) AS invalid_clicks`;
const NOT_ALL_ZERO = `sum(emissions) <> 0 OR sum(clicks) <> 0 OR sum(click_cost) <> 0 OR sum(duplicate_clicks) <> 0
  OR sum(fraud_clicks) <> 0 OR sum(fraud_cost) <> 0 OR sum(invalid_clicks) <> 0`;

/** One side of the union: rows of `table` whose bucket (minute or day) lies in one of the JSON ranges. */
function rangeSelect(table: string, ranges: string, offer: boolean, placement: boolean): string {
  // CROSS JOIN keeps the ranges as the outer loop, so each range is one primary-key (or
  // offer/placement index) range scan rather than a scan of the table.
  return `SELECT t.bucket_start - t.bucket_start % @bucketMs AS bucket, t.offer_id AS offer_id,
      t.placement AS placement, t.emissions AS emissions, t.clicks AS clicks, t.click_cost AS click_cost,
      t.duplicate_clicks AS duplicate_clicks, t.fraud_clicks AS fraud_clicks, t.fraud_cost AS fraud_cost,
      t.invalid_clicks AS invalid_clicks
    FROM json_each(@${ranges}) AS r CROSS JOIN ${table} AS t
    WHERE t.bucket_start >= r.value ->> 0 AND t.bucket_start < r.value ->> 1
      ${offer ? 'AND t.offer_id = @offerId' : ''} ${placement ? 'AND t.placement = @placement' : ''}`;
}

/** The page query: both sides truncated to buckets of @bucketMs and summed, after the cursor's key if any. */
function querySql(offer: boolean, placement: boolean, after: boolean): string {
  return `SELECT bucket AS bucket_start, offer_id, placement, ${SUMS}
    FROM (${rangeSelect('stats_batch_minute', 'batchRanges', offer, placement)}
      UNION ALL ${rangeSelect('stats_speed_minute', 'speedRanges', offer, placement)}
      UNION ALL ${rangeSelect('stats_batch_day', 'batchDayRanges', offer, placement)}
      UNION ALL ${rangeSelect('stats_speed_day', 'speedDayRanges', offer, placement)})
    ${after ? 'WHERE (bucket, offer_id, placement) > (@afterBucket, @afterOffer, @afterPlacement)' : ''}
    GROUP BY bucket, offer_id, placement
    HAVING ${NOT_ALL_ZERO}
    ORDER BY bucket, offer_id, placement
    LIMIT @fetch`;
}

const DAY_MS = GRANULARITY_MS.day;

/** Runs `statement` with a row's ten columns in table order. */
function runRow(statement: Database.Statement, r: MinuteStats): void {
  statement.run(
    r.bucketStart,
    r.offerId,
    r.placement,
    r.emissions,
    r.clicks,
    r.clickCost,
    r.duplicateClicks,
    r.fraudClicks,
    r.fraudCost,
    r.invalidClicks,
  );
}

/** Adds a row's columns to the row of the same key in `table`, creating it if needed. */
function upsertSql(table: string): string {
  return `INSERT INTO ${table} (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (bucket_start, offer_id, placement) DO UPDATE SET
      emissions = emissions + excluded.emissions, clicks = clicks + excluded.clicks,
      click_cost = click_cost + excluded.click_cost, duplicate_clicks = duplicate_clicks + excluded.duplicate_clicks,
      fraud_clicks = fraud_clicks + excluded.fraud_clicks, fraud_cost = fraud_cost + excluded.fraud_cost,
      invalid_clicks = invalid_clicks + excluded.invalid_clicks`;
}

/**
 * Opens (creating it and its folder if needed) the SQLite file at `path` as a
 * {@link StatsStore}, applying missing migrations. The file may be the one the schema registry
 * uses (e.g. `<dataDir>/reckon.sqlite`).
 */
export async function openSqliteStatsStore(path: string): Promise<StatsStore> {
  const db = openSqliteDatabase(path);

  const s = {
    addSpeed: db.prepare(upsertSql('stats_speed_minute')),
    addSpeedDay: db.prepare(upsertSql('stats_speed_day')),
    setOffset: db.prepare(
      `INSERT INTO stats_speed_offsets (group_id, topic, "partition", next_offset, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (group_id, topic, "partition") DO UPDATE SET
         next_offset = excluded.next_offset, updated_at = excluded.updated_at`,
    ),
    offsets: db.prepare(
      'SELECT "partition" AS partition, next_offset FROM stats_speed_offsets WHERE group_id = ? AND topic = ?',
    ),
    offset: db.prepare(
      'SELECT next_offset FROM stats_speed_offsets WHERE group_id = ? AND topic = ? AND "partition" = ?',
    ),
    deleteBatchRows: db.prepare('DELETE FROM stats_batch_minute WHERE bucket_start >= ? AND bucket_start < ?'),
    deleteIntervalsInside: db.prepare('DELETE FROM stats_batch_intervals WHERE from_ms >= ? AND to_ms <= ?'),
    insertInterval: db.prepare(
      'INSERT INTO stats_batch_intervals (from_ms, to_ms, run_id, written_at) VALUES (?, ?, ?, ?)',
    ),
    insertBatchRow: db.prepare(`INSERT INTO stats_batch_minute (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    deleteBatchDays: db.prepare('DELETE FROM stats_batch_day WHERE bucket_start >= ? AND bucket_start < ?'),
    sumBatchDays: db.prepare(`INSERT INTO stats_batch_day (${COLUMNS})
      SELECT bucket_start - bucket_start % ${DAY_MS}, offer_id, placement, ${SUMS}
      FROM stats_batch_minute WHERE bucket_start >= ? AND bucket_start < ?
      GROUP BY bucket_start - bucket_start % ${DAY_MS}, offer_id, placement`),
    intervals: db.prepare(
      'SELECT from_ms, to_ms, run_id, written_at FROM stats_batch_intervals ORDER BY from_ms, to_ms',
    ),
  };
  const queries = new Map<string, Database.Statement>();
  const queryStatement = (offer: boolean, placement: boolean, after: boolean): Database.Statement => {
    const key = `${offer}${placement}${after}`;
    let statement = queries.get(key);
    if (statement === undefined) {
      statement = db.prepare(querySql(offer, placement, after)).safeIntegers(true);
      queries.set(key, statement);
    }
    return statement;
  };

  const readIntervals = (): BatchInterval[] =>
    (s.intervals.all() as { from_ms: number; to_ms: number; run_id: string; written_at: number }[]).map((r) => ({
      from: r.from_ms,
      to: r.to_ms,
      runId: r.run_id,
      writtenAt: r.written_at,
    }));

  const applySpeedDeltas = db.transaction(
    (
      group: string,
      deltas: readonly MinuteStats[],
      offsets: readonly SinkOffset[],
      expected: readonly SinkOffset[],
    ) => {
      if (expected.length > 0) {
        const current = new Map<string, number>();
        for (const e of expected) {
          const row = s.offset.get(group, e.topic, e.partition) as { next_offset: number } | undefined;
          if (row !== undefined) current.set(`${e.topic}/${e.partition}`, row.next_offset);
        }
        checkExpectedOffsets(group, expected, current);
      }
      for (const d of deltas) runRow(s.addSpeed, d);
      for (const d of sumByDay(deltas)) runRow(s.addSpeedDay, d);
      const now = Date.now();
      for (const o of offsets) s.setOffset.run(group, o.topic, o.partition, o.offset, now);
    },
  );

  const d = {
    speedTotals: db
      .prepare(
        `SELECT sum(emissions) AS emissions, sum(clicks) AS clicks, sum(click_cost) AS click_cost,
           sum(duplicate_clicks) AS duplicate_clicks, sum(fraud_clicks) AS fraud_clicks, sum(fraud_cost) AS fraud_cost,
           sum(invalid_clicks) AS invalid_clicks
         FROM stats_speed_minute WHERE bucket_start >= ? AND bucket_start < ?`,
      )
      .safeIntegers(true),
    deleteDiscrepancies: db.prepare('DELETE FROM stats_discrepancies WHERE from_ms = ? AND to_ms = ?'),
    insertDiscrepancy: db.prepare(
      `INSERT INTO stats_discrepancies (from_ms, to_ms, column_name, speed, batch, run_id, computed_at)
       VALUES (@from_ms, @to_ms, @column_name, @speed, @batch, @run_id, @computed_at)`,
    ),
    discrepancies: db
      .prepare(
        `SELECT from_ms, to_ms, column_name, speed, batch, run_id, computed_at FROM stats_discrepancies
         WHERE from_ms < ? AND to_ms > ?`,
      )
      .safeIntegers(true),
  };
  const recordDiscrepancies = db.transaction((records: DiscrepancyRecord[]) => {
    const first = records[0];
    if (first === undefined) return;
    d.deleteDiscrepancies.run(first.from_ms, first.to_ms);
    for (const r of records) d.insertDiscrepancy.run(r);
  });

  /** Recomputes the batch day rollup of the days [from, to) touches from their minute rows. */
  const refreshBatchDays = (from: number, to: number): void => {
    const first = from - (from % DAY_MS);
    const end = Math.ceil(to / DAY_MS) * DAY_MS;
    s.deleteBatchDays.run(first, end);
    s.sumBatchDays.run(first, end);
  };

  /** Page cache of a batch replacement, KiB (negative: a size, not a page count). */
  const BATCH_WRITE_CACHE_KIB = -65_536;
  const insertBatchDay = db.prepare(`INSERT INTO stats_batch_day (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const replaceBatchInterval = db.transaction((from: number, to: number, rows: BatchRows, runId: string) => {
    s.deleteBatchRows.run(from, to);
    s.deleteIntervalsInside.run(from, to);
    s.insertInterval.run(from, to, runId, Date.now());
    const batches = batchColumnsOf(rows);
    if (batches === undefined) {
      for (const r of rows as readonly MinuteStats[]) {
        runRow(s.insertBatchRow, r);
      }
      refreshBatchDays(from, to);
    } else {
      // Checked batch by batch as they come: a bad row throws, and the transaction rolls back.
      const check = batchColumnsChecker(from, to);
      // Whole days hold only these rows now: their day rollup is these rows' sums.
      const days = from % DAY_MS === 0 && to % DAY_MS === 0 ? batchDaySums() : undefined;
      for (const b of batches) {
        check(b);
        days?.add(b);
        for (let i = 0; i < b.length; i++) {
          s.insertBatchRow.run(
            b.bucketStart[i],
            b.offerId[i],
            b.placement[i],
            b.emissions[i],
            b.clicks[i],
            b.clickCost[i],
            b.duplicateClicks[i],
            b.fraudClicks[i],
            b.fraudCost[i],
            b.invalidClicks[i],
          );
        }
      }
      if (days === undefined) {
        refreshBatchDays(from, to);
      } else {
        s.deleteBatchDays.run(from, to);
        for (const d of days.rows()) {
          runRow(insertBatchDay, d);
        }
      }
    }
  });

  const runQuery = db.transaction((q: StatsQuery) => {
    const after = checkQuery(q);
    const coverage = mergeCoverage(readIntervals());
    const offer = q.offerId !== undefined;
    const placement = q.placement !== undefined;
    const statement = queryStatement(offer, placement, after !== undefined);
    const params: Record<string, unknown> = { bucketMs: GRANULARITY_MS[q.granularity] };
    if (offer) params.offerId = q.offerId;
    if (placement) params.placement = q.placement;
    if (after !== undefined) {
      params.afterBucket = after.bucketStart;
      params.afterOffer = after.offerId;
      params.afterPlacement = after.placement;
    }
    const rows: MinuteStats[] = [];
    const windows = statsWindows(q, coverage, after, q.limit + 1);
    for (let w = windows.next(); w.done !== true;) {
      params.batchRanges = JSON.stringify(w.value.batchRanges);
      params.speedRanges = JSON.stringify(w.value.speedRanges);
      params.batchDayRanges = JSON.stringify(w.value.batchDayRanges);
      params.speedDayRanges = JSON.stringify(w.value.speedDayRanges);
      params.fetch = q.limit + 1 - rows.length;
      const got = statement.all(params) as RawStatsRow[];
      for (const r of got) rows.push(toMinuteStats(r));
      w = windows.next(got.length);
    }
    return statsPage(rows, q, coverage);
  });

  return {
    kind: 'sqlite',
    async applySpeedDeltas(group, deltas, offsets, expected = []) {
      checkOffsets(group, offsets);
      checkMinuteRows(deltas, 'deltas');
      if (deltas.length === 0 && offsets.length === 0) return;
      try {
        applySpeedDeltas.immediate(group, sumDeltasByKey(deltas), offsets, expected);
      } catch (err) {
        throw busyToRetriable(err);
      }
    },
    async speedOffsets(group, topic) {
      const rows = s.offsets.all(group, topic) as { partition: number; next_offset: number }[];
      return new Map(rows.map((r) => [r.partition, r.next_offset]));
    },
    async replaceBatchInterval(from, to, rows, runId) {
      checkBatchInterval(from, to, rows, runId);
      // A day of rows inserts into every offer's part of the indexes at once: with the default
      // 2 MB page cache most of those pages are written out and read back again.
      const cacheSize = db.pragma('cache_size', { simple: true }) as number;
      db.pragma(`cache_size = ${BATCH_WRITE_CACHE_KIB}`);
      try {
        replaceBatchInterval.immediate(from, to, rows, runId);
      } catch (err) {
        throw busyToRetriable(err);
      } finally {
        db.pragma(`cache_size = ${cacheSize}`);
      }
    },
    async batchIntervals() {
      return readIntervals();
    },
    async query(q) {
      return runQuery.deferred(q);
    },
    async speedTotals(from, to) {
      return totalsOf(d.speedTotals.get(from, to) as Record<string, bigint | null> | undefined);
    },
    async sideSeries(side, q) {
      const { sql, params } = seriesStatement(side, q);
      const rows = db
        .prepare(sql)
        .safeIntegers(true)
        .all(...params) as Record<string, bigint | null>[];
      return rows.map((r) => ({ bucketStart: Number(r.bucket), columns: totalsOf(r) }));
    },
    async recordDiscrepancies(from, to, runId, speed, batch) {
      try {
        recordDiscrepancies.immediate(discrepancyRecords(from, to, runId, speed, batch, Date.now()));
      } catch (err) {
        throw busyToRetriable(err);
      }
    },
    async discrepancies(from, to) {
      const rows = d.discrepancies.all(to, from) as Parameters<typeof toDiscrepancy>[0][];
      return rows.map(toDiscrepancy).sort(compareDiscrepancies);
    },
    async close() {
      if (db.open) db.close();
    },
  };
}
