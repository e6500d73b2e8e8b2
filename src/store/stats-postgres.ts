/**
 * The serving store in PostgreSQL (distributed mode), through a `pg` pool. Several processes
 * may write at once: speed deltas are atomic `ON CONFLICT DO UPDATE` additions (no update is
 * lost), taken in one key order so that concurrent batches cannot deadlock; batch replacements
 * serialise on an advisory lock; a query reads one REPEATABLE READ snapshot. BIGINT and sums
 * arrive as strings and are parsed with BigInt, so micros beyond 2^53 stay exact.
 */
import type pg from 'pg';
import { ReckonError } from '../events/index.ts';
import { inTransaction, openPostgresPool } from './postgres-database.ts';
import { mergeCoverage, statsPage, statsWindows, type TimeRange } from './stats-coverage.ts';
import { type RawStatsRow, sumByDay, sumDeltasByKey, toMinuteStats } from './stats-deltas.ts';
import {
  compareDiscrepancies,
  discrepancyRecords,
  seriesStatement,
  toDiscrepancy,
  totalsOf,
} from './stats-discrepancies.ts';
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
import type { BatchInterval, MinuteStats, MinuteStatsColumns, SinkOffset, StatsStore } from './stats-types.ts';

/**
 * Key of the advisory lock that batch replacements hold: two replacements of overlapping
 * intervals would otherwise each delete what the other had not yet committed and then collide
 * on the primary key. The migration lock's key plus one, fixed forever.
 */
const BATCH_LOCK_KEY = '125762928021359';

/** Rows per statement: arrays of this many rows are a few hundred KB, and one round trip each. */
const CHUNK_ROWS = 5000;

/** Attempts of a speed write that PostgreSQL aborted as a deadlock or serialization failure. */
const SPEED_ATTEMPTS = 3;

const COLUMNS =
  'bucket_start, offer_id, placement, emissions, clicks, click_cost, duplicate_clicks, fraud_clicks, fraud_cost, invalid_clicks';

/** Rows from arrays, in array order (WITH ORDINALITY makes the order a guarantee). */
const UNNEST_ROWS = `SELECT u.b, u.o, u.p, u.e, u.c, u.cc, u.d, u.f, u.fc, u.i
  FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[],
    $8::bigint[], $9::bigint[], $10::bigint[]) WITH ORDINALITY AS u(b, o, p, e, c, cc, d, f, fc, i, n)
  ORDER BY u.n`;

/** Adds rows to the rows of the same keys in `table` (a speed table), creating them if needed. */
const addTo = (table: string): string => `INSERT INTO ${table} AS t (${COLUMNS}) ${UNNEST_ROWS}
  ON CONFLICT (bucket_start, offer_id, placement) DO UPDATE SET
    emissions = t.emissions + excluded.emissions, clicks = t.clicks + excluded.clicks,
    click_cost = t.click_cost + excluded.click_cost, duplicate_clicks = t.duplicate_clicks + excluded.duplicate_clicks,
    fraud_clicks = t.fraud_clicks + excluded.fraud_clicks, fraud_cost = t.fraud_cost + excluded.fraud_cost,
    invalid_clicks = t.invalid_clicks + excluded.invalid_clicks`;
const ADD_SPEED = addTo('stats_speed_minute');
const ADD_SPEED_DAY = addTo('stats_speed_day');

const INSERT_BATCH = `INSERT INTO stats_batch_minute (${COLUMNS}) ${UNNEST_ROWS}`;

const DAY_MS = GRANULARITY_MS.day;

const SUM_BATCH_DAYS = `INSERT INTO stats_batch_day (${COLUMNS})
  SELECT bucket_start - bucket_start % ${DAY_MS}, offer_id, placement, sum(emissions), sum(clicks), sum(click_cost),
    sum(duplicate_clicks), sum(fraud_clicks), sum(fraud_cost), sum(invalid_clicks)
  FROM stats_batch_minute WHERE bucket_start >= $1 AND bucket_start < $2
  GROUP BY bucket_start - bucket_start % ${DAY_MS}, offer_id, placement`;

const SET_OFFSETS = `INSERT INTO stats_speed_offsets AS t (group_id, topic, "partition", next_offset, updated_at)
  SELECT $1, u.topic, u.p, u.o, $5::bigint FROM unnest($2::text[], $3::integer[], $4::bigint[]) WITH ORDINALITY AS u(topic, p, o, n)
  ORDER BY u.n
  ON CONFLICT (group_id, topic, "partition") DO UPDATE SET next_offset = excluded.next_offset, updated_at = excluded.updated_at`;

const LOCK_OFFSETS = `SELECT t.topic, t."partition" AS partition, t.next_offset FROM stats_speed_offsets t
  JOIN unnest($2::text[], $3::integer[]) AS u(topic, p) ON t.topic = u.topic AND t."partition" = u.p
  WHERE t.group_id = $1 ORDER BY t.topic, t."partition" FOR UPDATE OF t`;

const SUMS = `sum(emissions)::bigint AS emissions, sum(clicks)::bigint AS clicks, sum(click_cost)::bigint AS click_cost,
  sum(duplicate_clicks)::bigint AS duplicate_clicks, sum(fraud_clicks)::bigint AS fraud_clicks,
  sum(fraud_cost)::bigint AS fraud_cost, sum(invalid_clicks)::bigint AS invalid_clicks`;
const NOT_ALL_ZERO = `sum(emissions) <> 0 OR sum(clicks) <> 0 OR sum(click_cost) <> 0 OR sum(duplicate_clicks) <> 0
  OR sum(fraud_clicks) <> 0 OR sum(fraud_cost) <> 0 OR sum(invalid_clicks) <> 0`;

/** The ten column arrays of `rows`, bigints as decimal text (pg has no bigint array encoding). */
function columnArrays(rows: readonly MinuteStats[]): unknown[] {
  const n = rows.length;
  const cols = Array.from({ length: 10 }, () => new Array<unknown>(n));
  for (let i = 0; i < n; i++) {
    const r = rows[i] as MinuteStats;
    (cols[0] as unknown[])[i] = r.bucketStart;
    (cols[1] as unknown[])[i] = r.offerId;
    (cols[2] as unknown[])[i] = r.placement;
    (cols[3] as unknown[])[i] = r.emissions;
    (cols[4] as unknown[])[i] = r.clicks;
    (cols[5] as unknown[])[i] = r.clickCost.toString();
    (cols[6] as unknown[])[i] = r.duplicateClicks;
    (cols[7] as unknown[])[i] = r.fraudClicks;
    (cols[8] as unknown[])[i] = r.fraudCost.toString();
    (cols[9] as unknown[])[i] = r.invalidClicks;
  }
  return cols;
}

/** Appends the rows of a batch of columns to ten column arrays like those of {@link columnArrays}. */
function appendColumnArrays(cols: unknown[][], b: MinuteStatsColumns): void {
  const values = [
    b.bucketStart,
    b.offerId,
    b.placement,
    b.emissions,
    b.clicks,
    b.clickCost,
    b.duplicateClicks,
    b.fraudClicks,
    b.fraudCost,
    b.invalidClicks,
  ];
  values.forEach((column, k) => {
    const out = cols[k] as unknown[];
    // Money as decimal text, as in columnArrays.
    for (let i = 0; i < b.length; i++) out.push(typeof column[i] === 'bigint' ? String(column[i]) : column[i]);
  });
}

/** Key order of deltas (any fixed total order would do: it only has to be the same in every writer). */
function compareKeys(a: MinuteStats, b: MinuteStats): number {
  if (a.bucketStart !== b.bucketStart) return a.bucketStart - b.bucketStart;
  if (a.offerId !== b.offerId) return a.offerId < b.offerId ? -1 : 1;
  if (a.placement !== b.placement) return a.placement < b.placement ? -1 : 1;
  return 0;
}

/** Offsets with one entry per (topic, partition), the last one given winning, in key order. */
function lastOffsets(offsets: readonly SinkOffset[]): SinkOffset[] {
  const byKey = new Map<string, SinkOffset>();
  for (const o of offsets) byKey.set(`${o.partition}:${o.topic}`, o);
  return [...byKey.values()].sort((a, b) =>
    a.topic !== b.topic ? (a.topic < b.topic ? -1 : 1) : a.partition - b.partition,
  );
}

/** PostgreSQL aborted the transaction to break a deadlock or a serialization conflict: it may simply be run again. */
function isTransient(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === '40P01' || code === '40001';
}

/** Connection loss, a server shutting down or out of connections: the same call may succeed later. */
function toRetriable(err: unknown): unknown {
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : String(err);
  const unavailable =
    typeof code === 'string' &&
    (code.startsWith('08') ||
      ['57P01', '57P02', '57P03', '53300', '40P01', '40001'].includes(code) ||
      ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN'].includes(code));
  if (unavailable || /Connection terminated/i.test(message)) {
    return new ReckonError('RECKON_STORE_UNAVAILABLE', `PostgreSQL is unavailable (${message}): retry`, {
      retriable: true,
      cause: err,
    });
  }
  return err;
}

/**
 * The page query: rows of the batch ranges ($2/$3) and the speed ranges ($4/$5), and day rows of
 * the batch day ranges ($7/$8) and speed day ranges ($9/$10), truncated to buckets of $1 ms and
 * summed, after the cursor's key if any, at most $6 rows; the filter and cursor parameters follow
 * in that order.
 */
function pageSql(offer: boolean, placement: boolean, after: boolean): string {
  let next = 11;
  const offerParam = offer ? `$${next++}` : '';
  const placementParam = placement ? `$${next++}` : '';
  const filters = `${offer ? `AND t.offer_id = ${offerParam}` : ''} ${placement ? `AND t.placement = ${placementParam}` : ''}`;
  const side = (table: string, lo: string, hi: string) =>
    `SELECT t.bucket_start - t.bucket_start % $1 AS bucket, t.offer_id, t.placement, t.emissions, t.clicks,
        t.click_cost, t.duplicate_clicks, t.fraud_clicks, t.fraud_cost, t.invalid_clicks
      FROM unnest(${lo}::bigint[], ${hi}::bigint[]) AS r(lo, hi)
      JOIN ${table} AS t ON t.bucket_start >= r.lo AND t.bucket_start < r.hi
      WHERE true ${filters}`;
  const where = after
    ? `WHERE (u.bucket, u.offer_id COLLATE "C", u.placement COLLATE "C") > ($${next}, $${next + 1}, $${next + 2})`
    : '';
  return `SELECT u.bucket AS bucket_start, u.offer_id, u.placement, ${SUMS}
    FROM (${side('stats_batch_minute', '$2', '$3')} UNION ALL ${side('stats_speed_minute', '$4', '$5')}
      UNION ALL ${side('stats_batch_day', '$7', '$8')} UNION ALL ${side('stats_speed_day', '$9', '$10')}) AS u
    ${where}
    GROUP BY u.bucket, u.offer_id, u.placement
    HAVING ${NOT_ALL_ZERO}
    ORDER BY u.bucket, u.offer_id COLLATE "C", u.placement COLLATE "C"
    LIMIT $6`;
}

const starts = (ranges: readonly TimeRange[]) => ranges.map((r) => r[0]);
const ends = (ranges: readonly TimeRange[]) => ranges.map((r) => r[1]);

/**
 * Connects to PostgreSQL (a connection string or a `pg` pool configuration), applies missing
 * migrations and returns the database as a {@link StatsStore}.
 */
export async function openPostgresStatsStore(connection: string | pg.PoolConfig): Promise<StatsStore> {
  const pool = await openPostgresPool(connection);
  let closed = false;

  const readIntervals = async (client: pg.Pool | pg.PoolClient): Promise<BatchInterval[]> => {
    const result = await client.query<{ from_ms: string; to_ms: string; run_id: string; written_at: string }>(
      'SELECT from_ms, to_ms, run_id, written_at FROM stats_batch_intervals ORDER BY from_ms, to_ms',
    );
    return result.rows.map((r) => ({
      from: Number(r.from_ms),
      to: Number(r.to_ms),
      runId: r.run_id,
      writtenAt: Number(r.written_at),
    }));
  };

  return {
    kind: 'postgres',
    async applySpeedDeltas(group, deltas, offsets, expected = []) {
      checkOffsets(group, offsets);
      checkMinuteRows(deltas, 'deltas');
      if (deltas.length === 0 && offsets.length === 0) return;
      // Sorted: every writer then locks rows in the same order, which rules out deadlocks between them.
      const rows = sumDeltasByKey(deltas).sort(compareKeys);
      const days = sumByDay(rows).sort(compareKeys);
      const positions = lastOffsets(offsets);
      for (let attempt = 1; ; attempt++) {
        try {
          await inTransaction(pool, async (client) => {
            for (let i = 0; i < rows.length; i += CHUNK_ROWS) {
              await client.query(ADD_SPEED, columnArrays(rows.slice(i, i + CHUNK_ROWS)));
            }
            for (let i = 0; i < days.length; i += CHUNK_ROWS) {
              await client.query(ADD_SPEED_DAY, columnArrays(days.slice(i, i + CHUNK_ROWS)));
            }
            if (expected.length > 0) {
              // Locked after the minute rows, in key order, as every writer does: no deadlock.
              const held = await client.query<{ topic: string; partition: number; next_offset: string }>(LOCK_OFFSETS, [
                group,
                expected.map((e) => e.topic),
                expected.map((e) => e.partition),
              ]);
              checkExpectedOffsets(
                group,
                expected,
                new Map(held.rows.map((r) => [`${r.topic}/${r.partition}`, Number(r.next_offset)])),
              );
            }
            if (positions.length > 0) {
              await client.query(SET_OFFSETS, [
                group,
                positions.map((o) => o.topic),
                positions.map((o) => o.partition),
                positions.map((o) => o.offset),
                Date.now(),
              ]);
            }
          });
          return;
        } catch (err) {
          if (!isTransient(err) || attempt >= SPEED_ATTEMPTS) throw toRetriable(err);
        }
      }
    },
    async speedOffsets(group, topic) {
      try {
        const result = await pool.query<{ partition: number; next_offset: string }>(
          'SELECT "partition" AS partition, next_offset FROM stats_speed_offsets WHERE group_id = $1 AND topic = $2',
          [group, topic],
        );
        return new Map(result.rows.map((r) => [r.partition, Number(r.next_offset)]));
      } catch (err) {
        throw toRetriable(err);
      }
    },
    async replaceBatchInterval(from, to, rows, runId) {
      checkBatchInterval(from, to, rows, runId);
      try {
        await inTransaction(pool, async (client) => {
          await client.query(`SELECT pg_advisory_xact_lock(${BATCH_LOCK_KEY})`);
          await client.query('DELETE FROM stats_batch_minute WHERE bucket_start >= $1 AND bucket_start < $2', [
            from,
            to,
          ]);
          await client.query('DELETE FROM stats_batch_intervals WHERE from_ms >= $1 AND to_ms <= $2', [from, to]);
          await client.query(
            'INSERT INTO stats_batch_intervals (from_ms, to_ms, run_id, written_at) VALUES ($1, $2, $3, $4)',
            [from, to, runId, Date.now()],
          );
          const batches = batchColumnsOf(rows);
          if (batches === undefined) {
            const list = rows as readonly MinuteStats[];
            for (let i = 0; i < list.length; i += CHUNK_ROWS) {
              await client.query(INSERT_BATCH, columnArrays(list.slice(i, i + CHUNK_ROWS)));
            }
          } else {
            // Checked batch by batch as they come: a bad row throws, and the transaction rolls back.
            const check = batchColumnsChecker(from, to);
            const fresh = (): unknown[][] => Array.from({ length: 10 }, () => []);
            let pending = fresh();
            for (const b of batches) {
              check(b);
              appendColumnArrays(pending, b);
              if ((pending[0] as unknown[]).length >= CHUNK_ROWS) {
                await client.query(INSERT_BATCH, pending);
                pending = fresh();
              }
            }
            if ((pending[0] as unknown[]).length > 0) await client.query(INSERT_BATCH, pending);
          }
          // The batch day rollup of the days the interval touches, recomputed from their minute rows.
          const days = [from - (from % DAY_MS), Math.ceil(to / DAY_MS) * DAY_MS];
          await client.query('DELETE FROM stats_batch_day WHERE bucket_start >= $1 AND bucket_start < $2', days);
          await client.query(SUM_BATCH_DAYS, days);
        });
      } catch (err) {
        throw toRetriable(err);
      }
    },
    async batchIntervals() {
      try {
        return await readIntervals(pool);
      } catch (err) {
        throw toRetriable(err);
      }
    },
    async query(q) {
      const after = checkQuery(q);
      try {
        return await inTransaction(
          pool,
          async (client) => {
            const coverage = mergeCoverage(await readIntervals(client));
            const offer = q.offerId !== undefined;
            const placement = q.placement !== undefined;
            const sql = pageSql(offer, placement, after !== undefined);
            const filters: unknown[] = [];
            if (offer) filters.push(q.offerId);
            if (placement) filters.push(q.placement);
            if (after !== undefined) filters.push(after.bucketStart, after.offerId, after.placement);
            const rows: MinuteStats[] = [];
            const windows = statsWindows(q, coverage, after, q.limit + 1);
            for (let w = windows.next(); w.done !== true;) {
              const result = await client.query<RawStatsRow>(sql, [
                GRANULARITY_MS[q.granularity],
                starts(w.value.batchRanges),
                ends(w.value.batchRanges),
                starts(w.value.speedRanges),
                ends(w.value.speedRanges),
                q.limit + 1 - rows.length,
                starts(w.value.batchDayRanges),
                ends(w.value.batchDayRanges),
                starts(w.value.speedDayRanges),
                ends(w.value.speedDayRanges),
                ...filters,
              ]);
              for (const r of result.rows) rows.push(toMinuteStats(r));
              w = windows.next(result.rows.length);
            }
            return statsPage(rows, q, coverage);
          },
          'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
        );
      } catch (err) {
        throw toRetriable(err);
      }
    },
    async speedTotals(from, to) {
      try {
        const result = await pool.query<Record<string, string | null>>(
          `SELECT sum(emissions) AS emissions, sum(clicks) AS clicks, sum(click_cost) AS click_cost,
             sum(duplicate_clicks) AS duplicate_clicks, sum(fraud_clicks) AS fraud_clicks,
             sum(fraud_cost) AS fraud_cost, sum(invalid_clicks) AS invalid_clicks
           FROM stats_speed_minute WHERE bucket_start >= $1 AND bucket_start < $2`,
          [from, to],
        );
        return totalsOf(result.rows[0]);
      } catch (err) {
        throw toRetriable(err);
      }
    },
    async sideSeries(side, q) {
      const { sql, params } = seriesStatement(side, q);
      let n = 0;
      try {
        const result = await pool.query<Record<string, string | null>>(
          sql.replace(/\?/g, () => `$${++n}`),
          params,
        );
        return result.rows.map((r) => ({ bucketStart: Number(r.bucket), columns: totalsOf(r) }));
      } catch (err) {
        throw toRetriable(err);
      }
    },
    async recordDiscrepancies(from, to, runId, speed, batch) {
      const records = discrepancyRecords(from, to, runId, speed, batch, Date.now());
      try {
        await inTransaction(pool, async (client) => {
          await client.query('DELETE FROM stats_discrepancies WHERE from_ms = $1 AND to_ms = $2', [from, to]);
          await client.query(
            `INSERT INTO stats_discrepancies (from_ms, to_ms, column_name, speed, batch, run_id, computed_at)
             SELECT $1, $2, c, s, b, $3, $4 FROM unnest($5::text[], $6::bigint[], $7::bigint[]) AS t(c, s, b)`,
            [
              from,
              to,
              runId,
              records[0]?.computed_at ?? Date.now(),
              records.map((r) => r.column_name),
              records.map((r) => r.speed.toString()),
              records.map((r) => r.batch.toString()),
            ],
          );
        });
      } catch (err) {
        throw toRetriable(err);
      }
    },
    async discrepancies(from, to) {
      try {
        const result = await pool.query<Parameters<typeof toDiscrepancy>[0]>(
          `SELECT from_ms, to_ms, column_name, speed, batch, run_id, computed_at FROM stats_discrepancies
           WHERE from_ms < $1 AND to_ms > $2`,
          [to, from],
        );
        return result.rows.map(toDiscrepancy).sort(compareDiscrepancies);
      } catch (err) {
        throw toRetriable(err);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
}
