/**
 * The serving store in a SQLite file (embedded mode), through better-sqlite3, written the way
 * rollup stores are: a speed flush appends one run (its deltas summed per key and sorted) with
 * its offsets in one IMMEDIATE transaction; the compactor folds the runs into the base and its
 * hour and day rollups in another; a batch run writes its generation aside in short chunks and
 * switches it in with one short transaction. Nothing updates a row per event. Reads run in one
 * deferred transaction, so a query sees one snapshot of base, runs, generations and coverage.
 * Money columns are read with `safeIntegers()`, so micros beyond 2^53 come back exact.
 */
import type Database from 'better-sqlite3';
import { busyToRetriable, openSqliteDatabase } from '../store/index.ts';
import { generationSegments, statsPage, statsWindows } from './coverage.ts';
import { type RawStatsRow, toMinuteStats } from './deltas.ts';
import {
  compareDiscrepancies,
  type DiscrepancyRecord,
  discrepancyRecords,
  toDiscrepancy,
  totalsOf,
} from './discrepancies.ts';
import { checkExpectedOffsets, checkOffsets, checkQuery, GRANULARITY_MS } from './input.ts';
import {
  type BatchPlan,
  type CompactionResult,
  COMPACT_AT_ROWS,
  COMPACT_AT_RUNS,
  stageBatch,
  type StagedChunk,
} from './model.ts';
import { type IntervalRow, seriesSql, sumWindows, toInterval, windowsSql, type WindowSql } from './plan.ts';
import { runOf, type RunColumns, speedColumns } from './run-rows.ts';
import type { MinuteStats, MinuteStatsColumns, SinkOffset, StatsStore } from './types.ts';

const KEY = 'bucket_start, offer_id, placement';
const VALUES = 'emissions, clicks, click_cost, duplicate_clicks, fraud_clicks, fraud_cost, invalid_clicks';
const SUMS = `sum(emissions) AS emissions, sum(clicks) AS clicks, sum(click_cost) AS click_cost,
  sum(duplicate_clicks) AS duplicate_clicks, sum(fraud_clicks) AS fraud_clicks, sum(fraud_cost) AS fraud_cost,
  sum(invalid_clicks) AS invalid_clicks`;
const ADD_EXCLUDED = `emissions = emissions + excluded.emissions, clicks = clicks + excluded.clicks,
  click_cost = click_cost + excluded.click_cost, duplicate_clicks = duplicate_clicks + excluded.duplicate_clicks,
  fraud_clicks = fraud_clicks + excluded.fraud_clicks, fraud_cost = fraud_cost + excluded.fraud_cost,
  invalid_clicks = invalid_clicks + excluded.invalid_clicks`;

/** Folds the runs' rows into one speed table of bucket size `size` (1 minute: the base itself). */
function foldSql(table: string, size: number): string {
  const bucket = size === GRANULARITY_MS.minute ? 'bucket_start' : `bucket_start - bucket_start % ${size}`;
  // WHERE true: SQLite's parser needs it between a SELECT and ON CONFLICT.
  return `INSERT INTO ${table} (${KEY}, ${VALUES})
    SELECT ${bucket}, offer_id, placement, ${SUMS} FROM stats_speed_run_rows WHERE true
    GROUP BY ${bucket}, offer_id, placement
    ON CONFLICT (${KEY}) DO UPDATE SET ${ADD_EXCLUDED}`;
}

/** How long a statement keeps retrying a database locked by another writer (ms). */
const BUSY_RETRY_MS = 5000;
const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * Runs `work` (one transaction or one statement), trying again every millisecond while another
 * connection holds the lock, for up to {@link BUSY_RETRY_MS}. SQLite's own busy handler sleeps
 * in steps of up to 100 ms and misses the short gaps a batch write leaves between its staging
 * transactions; a speed flush waiting behind one would wait hundreds of ms instead of a few.
 * A failed attempt wrote nothing (its transaction rolled back), so trying again is safe.
 */
function retryingBusy<T>(work: () => T): T {
  const deadline = performance.now() + BUSY_RETRY_MS;
  for (;;) {
    try {
      return work();
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'SQLITE_BUSY' || performance.now() >= deadline) throw err;
      Atomics.wait(pause, 0, 0, 1);
    }
  }
}

/** Page cache of a statistics connection (KiB). */
const PAGE_CACHE_KIB = 131_072;

/** Rows per INSERT statement of {@link rowInserter}: 11 parameters each, well under SQLite's limit. */
const ROWS_PER_INSERT = 100;

/**
 * Inserts rows of columns into `table` with `extra` (run id or generation) as first column,
 * {@link ROWS_PER_INSERT} rows per statement: binding a statement costs about as much as the
 * row itself (measured: 0.86M rows/s against 0.55M one row per statement).
 */
function rowInserter(
  db: Database.Database,
  table: string,
  extra: string,
): (extraValue: number | bigint, c: MinuteStatsColumns, start: number, end: number) => void {
  const row = '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';
  const sql = (n: number) =>
    `INSERT INTO ${table} (${extra}, ${KEY}, ${VALUES}) VALUES ${Array.from({ length: n }, () => row).join(', ')}`;
  const many = db.prepare(sql(ROWS_PER_INSERT));
  const one = db.prepare(sql(1));
  const args = new Array<unknown>(ROWS_PER_INSERT * 11);
  return (extraValue, c, start, end) => {
    let i = start;
    for (; i + ROWS_PER_INSERT <= end;) {
      for (let k = 0; k < ROWS_PER_INSERT; k++, i++) {
        const o = k * 11;
        args[o] = extraValue;
        args[o + 1] = c.bucketStart[i];
        args[o + 2] = c.offerId[i];
        args[o + 3] = c.placement[i];
        args[o + 4] = c.emissions[i];
        args[o + 5] = c.clicks[i];
        args[o + 6] = c.clickCost[i];
        args[o + 7] = c.duplicateClicks[i];
        args[o + 8] = c.fraudClicks[i];
        args[o + 9] = c.fraudCost[i];
        args[o + 10] = c.invalidClicks[i];
      }
      many.run(args);
    }
    for (; i < end; i++) {
      one.run(
        extraValue,
        c.bucketStart[i],
        c.offerId[i],
        c.placement[i],
        c.emissions[i],
        c.clicks[i],
        c.clickCost[i],
        c.duplicateClicks[i],
        c.fraudClicks[i],
        c.fraudCost[i],
        c.invalidClicks[i],
      );
    }
  };
}

/**
 * Opens (creating it and its folder if needed) the SQLite file at `path` as a
 * {@link StatsStore}, applying missing migrations. The file may be the one the schema registry
 * uses (e.g. `<dataDir>/reckon.sqlite`).
 */
export async function openSqliteStatsStore(path: string): Promise<StatsStore> {
  const db = openSqliteDatabase(path);
  // Compaction upserts a flush's worth of keys spread over the base's recent pages, and a batch
  // generation writes its rollups beside its minute rows: with SQLite's default 2 MB page cache
  // most of those pages would be written out and read back again.
  db.pragma(`cache_size = ${-PAGE_CACHE_KIB}`);
  // Lock waits are retried by retryingBusy, every millisecond, instead of SQLite's sleeps.
  db.pragma('busy_timeout = 0');

  const s = {
    insertRun: db.prepare('INSERT INTO stats_speed_runs (group_id, row_count, created_at) VALUES (?, ?, ?)'),
    pendingRuns: db.prepare('SELECT count(*) AS runs, coalesce(sum(row_count), 0) AS rows FROM stats_speed_runs'),
    foldMinute: db.prepare(foldSql('stats_speed_minute', GRANULARITY_MS.minute)),
    foldHour: db.prepare(foldSql('stats_speed_hour', GRANULARITY_MS.hour)),
    foldDay: db.prepare(foldSql('stats_speed_day', GRANULARITY_MS.day)),
    clearRunRows: db.prepare('DELETE FROM stats_speed_run_rows'),
    clearRuns: db.prepare('DELETE FROM stats_speed_runs'),
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
    intervals: db.prepare(
      'SELECT from_ms, to_ms, run_id, written_at, generation, seq, complete FROM stats_batch_intervals ORDER BY from_ms, to_ms',
    ),
    newGeneration: db.prepare(
      `INSERT INTO stats_batch_generations (generation, from_ms, to_ms, run_id, state, created_at)
       SELECT coalesce(max(generation), 0) + 1, ?, ?, ?, 'staging', ? FROM stats_batch_generations`,
    ),
    abandoned: db.prepare(
      "SELECT generation FROM stats_batch_generations WHERE state = 'staging' AND from_ms = ? AND to_ms = ? AND generation <> ?",
    ),
    retire: db.prepare(
      `UPDATE stats_batch_generations SET state = 'retired' WHERE state = 'live'
         AND generation NOT IN (SELECT generation FROM stats_batch_intervals)`,
    ),
    retired: db.prepare(
      "SELECT generation, from_ms, to_ms FROM stats_batch_generations WHERE state IN ('retired') ORDER BY generation",
    ),
    setGenerationState: db.prepare('UPDATE stats_batch_generations SET state = ? WHERE generation = ?'),
    dropGeneration: db.prepare('DELETE FROM stats_batch_generations WHERE generation = ?'),
    deleteIntervalsInside: db.prepare('DELETE FROM stats_batch_intervals WHERE from_ms >= ? AND to_ms <= ?'),
    insertInterval: db.prepare(
      `INSERT INTO stats_batch_intervals (from_ms, to_ms, run_id, written_at, generation, complete, seq)
       SELECT ?, ?, ?, ?, ?, ?, coalesce(max(seq), 0) + 1 FROM stats_batch_intervals`,
    ),
  };
  const insertRunRows = rowInserter(db, 'stats_speed_run_rows', 'run_id');
  const insertGen = {
    minute: rowInserter(db, 'stats_batch_gen_minute', 'generation'),
    hour: rowInserter(db, 'stats_batch_gen_hour', 'generation'),
    day: rowInserter(db, 'stats_batch_gen_day', 'generation'),
  };
  const deleteGenRange = Object.fromEntries(
    (['minute', 'hour', 'day'] as const).map((level) => [
      level,
      db.prepare(
        `DELETE FROM stats_batch_gen_${level} WHERE generation = ? AND bucket_start >= ? AND bucket_start < ?`,
      ),
    ]),
  ) as Record<'minute' | 'hour' | 'day', Database.Statement>;

  const statements = new Map<string, Database.Statement>();
  const statement = (sql: string): Database.Statement => {
    let st = statements.get(sql);
    if (st === undefined) {
      st = db.prepare(sql).safeIntegers(true);
      statements.set(sql, st);
    }
    return st;
  };

  const readIntervals = (): IntervalRow[] =>
    retryingBusy(() => s.intervals.all()) as {
      from_ms: number;
      to_ms: number;
      run_id: string;
      written_at: number;
      generation: number;
      seq: number;
      complete: number;
    }[];

  const appendRun = db.transaction(
    (group: string, run: RunColumns, offsets: readonly SinkOffset[], expected: readonly SinkOffset[]) => {
      if (expected.length > 0) {
        const current = new Map<string, number>();
        for (const e of expected) {
          const row = s.offset.get(group, e.topic, e.partition) as { next_offset: number } | undefined;
          if (row !== undefined) current.set(`${e.topic}/${e.partition}`, row.next_offset);
        }
        checkExpectedOffsets(group, expected, current);
      }
      const now = Date.now();
      if (run.length > 0) {
        insertRunRows(s.insertRun.run(group, run.length, now).lastInsertRowid, run, 0, run.length);
      }
      for (const o of offsets) s.setOffset.run(group, o.topic, o.partition, o.offset, now);
    },
  );

  const pending = (): { runs: number; rows: number } => {
    const r = retryingBusy(() => s.pendingRuns.get()) as { runs: number; rows: number };
    return { runs: r.runs, rows: r.rows };
  };

  const compactNow = db.transaction((): CompactionResult => {
    const before = pending();
    if (before.runs === 0) return { runs: 0, rows: 0 };
    s.foldMinute.run();
    s.foldHour.run();
    s.foldDay.run();
    s.clearRunRows.run();
    s.clearRuns.run();
    return before;
  });

  const compact = (): CompactionResult => {
    try {
      return retryingBusy(() => compactNow.immediate());
    } catch (err) {
      throw busyToRetriable(err);
    }
  };

  /** A generation of its own for a batch write of [from, to); abandoned stagings of the same interval are dropped. */
  const startGeneration = db.transaction(
    (from: number, to: number, runId: string): { generation: number; stale: number[] } => {
      const generation = Number(s.newGeneration.run(from, to, runId, Date.now()).lastInsertRowid);
      const stale = (s.abandoned.all(from, to, generation) as { generation: number }[]).map((r) => r.generation);
      for (const g of stale) s.setGenerationState.run('retired', g);
      return { generation, stale };
    },
  );

  const writeChunk = db.transaction((generation: number, chunk: StagedChunk) => {
    insertGen[chunk.level](generation, chunk.rows, chunk.start, chunk.end);
  });

  const switchIn = db.transaction((plan: BatchPlan, generation: number) => {
    s.deleteIntervalsInside.run(plan.from, plan.to);
    s.insertInterval.run(plan.from, plan.to, plan.runId, Date.now(), generation, plan.complete ? 1 : 0);
    s.setGenerationState.run('live', generation);
    s.retire.run();
  });

  /** Deletes the rows of retired generations, a day of them per transaction, then the generations. */
  const dropRetired = (): void => {
    const retired = retryingBusy(() => s.retired.all()) as { generation: number; from_ms: number; to_ms: number }[];
    for (const g of retired) {
      // The migrated generation may hold rows anywhere: its interval spans them all.
      for (let at = g.from_ms - (g.from_ms % GRANULARITY_MS.day); at < g.to_ms; at += GRANULARITY_MS.day) {
        const drop = db.transaction(() => {
          for (const level of ['minute', 'hour', 'day'] as const)
            deleteGenRange[level].run(g.generation, at, at + GRANULARITY_MS.day);
        });
        retryingBusy(() => drop.immediate());
      }
      retryingBusy(() => s.dropGeneration.run(g.generation));
    }
  };

  const all = (w: WindowSql): unknown[] => statement(w.sql).all(w.params);

  const runQuery = db.transaction((q: Parameters<StatsStore['query']>[0]) => {
    const after = checkQuery(q);
    const intervals = readIntervals().map(toInterval);
    const segments = generationSegments(intervals);
    const rows: MinuteStats[] = [];
    const windows = statsWindows(q, segments, after, q.limit + 1);
    for (let w = windows.next(); w.done !== true;) {
      const got = all(windowsSql('sqlite', w.value, q, after, q.limit + 1 - rows.length)) as RawStatsRow[];
      for (const r of got) rows.push(toMinuteStats(r));
      w = windows.next(got.length);
    }
    return statsPage(rows, q, intervals);
  });

  /** A series of one side, with the generations of one snapshot. */
  const series = db.transaction((side: 'speed' | 'batch', q: Parameters<StatsStore['sideSeries']>[1]) => {
    const segments = generationSegments(readIntervals().map(toInterval));
    return all(seriesSql('sqlite', side, segments, q)) as Record<string, bigint | null>[];
  });

  const d = {
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

  const store: StatsStore = {
    kind: 'sqlite',
    async applySpeedDeltas(group, deltas, offsets, expected = []) {
      checkOffsets(group, offsets);
      const columns = speedColumns(deltas);
      if (columns.length === 0 && offsets.length === 0) return;
      const run = runOf(columns);
      try {
        retryingBusy(() => appendRun.immediate(group, run, offsets, expected));
        // Back-pressure: the flush that fills the runs up waits for their compaction.
        const waiting = pending();
        if (waiting.runs >= COMPACT_AT_RUNS || waiting.rows >= COMPACT_AT_ROWS) compact();
      } catch (err) {
        throw busyToRetriable(err);
      }
    },
    async speedOffsets(group, topic) {
      const rows = retryingBusy(() => s.offsets.all(group, topic)) as { partition: number; next_offset: number }[];
      return new Map(rows.map((r) => [r.partition, r.next_offset]));
    },
    async compact() {
      return compact();
    },
    async pendingRuns() {
      return pending();
    },
    async replaceBatchInterval(from, to, rows, runId, options) {
      await stageBatch(
        { from, to, rows, runId, complete: options?.complete ?? true },
        {
          start: (plan) => {
            try {
              const { generation, stale } = retryingBusy(() =>
                startGeneration.immediate(plan.from, plan.to, plan.runId),
              );
              if (stale.length > 0) dropRetired();
              return generation;
            } catch (err) {
              throw busyToRetriable(err);
            }
          },
          write: (generation, chunk) => {
            try {
              retryingBusy(() => writeChunk.immediate(generation, chunk));
            } catch (err) {
              throw busyToRetriable(err);
            }
          },
          abandon: (generation) => {
            try {
              retryingBusy(() => s.setGenerationState.run('retired', generation));
              dropRetired();
            } catch {
              // Left for the next write of the interval, which drops abandoned stagings.
            }
          },
          switchIn: (plan, generation) => {
            try {
              retryingBusy(() => switchIn.immediate(plan, generation));
            } catch (err) {
              throw busyToRetriable(err);
            }
          },
          afterSwitch: () => {
            try {
              dropRetired();
            } catch {
              // Retired rows are invisible; a later switch drops them.
            }
          },
        },
      );
    },
    async batchIntervals() {
      return readIntervals().map((r) => {
        const { from, to, runId, writtenAt, complete } = toInterval(r);
        return { from, to, runId, writtenAt, complete };
      });
    },
    async query(q) {
      return retryingBusy(() => runQuery.deferred(q));
    },
    async speedTotals(from, to) {
      const sums = db.transaction(() => all(sumWindows('sqlite', from, to)));
      const [row] = retryingBusy(() => sums.deferred()) as Record<string, bigint | null>[];
      return totalsOf(row);
    },
    async sideSeries(side, q) {
      const rows = retryingBusy(() => series.deferred(side, q));
      return rows.map((r) => ({ bucketStart: Number(r.bucket), columns: totalsOf(r) }));
    },
    async recordDiscrepancies(from, to, runId, speed, batch) {
      try {
        const records = discrepancyRecords(from, to, runId, speed, batch, Date.now());
        retryingBusy(() => recordDiscrepancies.immediate(records));
      } catch (err) {
        throw busyToRetriable(err);
      }
    },
    async discrepancies(from, to) {
      const rows = retryingBusy(() => d.discrepancies.all(to, from)) as Parameters<typeof toDiscrepancy>[0][];
      return rows.map(toDiscrepancy).sort(compareDiscrepancies);
    },
    async close() {
      if (db.open) db.close();
    },
  };
  return store;
}
