/**
 * The serving store in PostgreSQL (distributed mode), through a `pg` pool, with the model of the
 * SQLite store: a speed flush appends one run (`INSERT ... SELECT FROM unnest`, no upsert, no
 * row lock but its offsets'), so several speed processes write at once without touching each
 * other's rows; a compactor folds the runs into the base and its hour and day rollups with one
 * `DELETE ... RETURNING` feeding three `INSERT ... GROUP BY ... ON CONFLICT` (one compactor at a
 * time, on an advisory lock); a batch run stages its generation in short statements and
 * switches it in with one short transaction. A query reads one REPEATABLE READ snapshot.
 * BIGINT and sums arrive as strings and are parsed with BigInt, so micros beyond 2^53 stay exact.
 */
import type pg from 'pg';
import { ReckonError } from '../events/index.ts';
import { inTransaction, openPostgresPool } from '../store/index.ts';
import { generationSegments, statsPage, statsWindows } from './coverage.ts';
import { type RawStatsRow, toMinuteStats } from './deltas.ts';
import { compareDiscrepancies, discrepancyRecords, toDiscrepancy, totalsOf } from './discrepancies.ts';
import { checkExpectedOffsets, checkOffsets, checkQuery, GRANULARITY_MS } from './input.ts';
import { type BatchPlan, COMPACT_AT_ROWS, COMPACT_AT_RUNS, stageBatch, type StagedChunk } from './model.ts';
import { type IntervalRow, seriesSql, sumWindows, toInterval, windowsSql } from './plan.ts';
import { runOf, speedColumns } from './run-rows.ts';
import type { MinuteStats, MinuteStatsColumns, SinkOffset, StatsStore } from './types.ts';

/**
 * Key of the advisory lock that batch switches and generation numbering hold. The migration
 * lock's key plus one, fixed forever.
 */
const BATCH_LOCK_KEY = '125762928021359';
/** Key of the advisory lock a compaction holds: one compactor at a time. Plus two, fixed forever. */
const COMPACT_LOCK_KEY = '125762928021360';

/** Rows per statement: arrays of this many rows are a few hundred KB, and one round trip each. */
const CHUNK_ROWS = 5000;

/** Attempts of a speed write that PostgreSQL aborted as a deadlock or serialization failure. */
const SPEED_ATTEMPTS = 3;

const KEY = 'bucket_start, offer_id, placement';
const VALUES = 'emissions, clicks, click_cost, duplicate_clicks, fraud_clicks, fraud_cost, invalid_clicks';

/** The ten columns from arrays ($2..$11), in array order. */
const UNNEST = `unnest($2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[],
    $9::bigint[], $10::bigint[], $11::bigint[]) AS u(b, o, p, e, c, cc, d, f, fc, i)`;
const UNNESTED = 'u.b, u.o, u.p, u.e, u.c, u.cc, u.d, u.f, u.fc, u.i';

const INSERT_RUN_ROWS = `INSERT INTO stats_speed_run_rows (${KEY}, ${VALUES}, run_id) SELECT ${UNNESTED}, $1 FROM ${UNNEST}`;
const insertGeneration = (level: string) =>
  `INSERT INTO stats_batch_gen_${level} (generation, ${KEY}, ${VALUES}) SELECT $1, ${UNNESTED} FROM ${UNNEST}`;

const SUMS = `sum(emissions), sum(clicks), sum(click_cost), sum(duplicate_clicks), sum(fraud_clicks), sum(fraud_cost),
  sum(invalid_clicks)`;
const ADD_EXCLUDED = `emissions = t.emissions + excluded.emissions, clicks = t.clicks + excluded.clicks,
  click_cost = t.click_cost + excluded.click_cost, duplicate_clicks = t.duplicate_clicks + excluded.duplicate_clicks,
  fraud_clicks = t.fraud_clicks + excluded.fraud_clicks, fraud_cost = t.fraud_cost + excluded.fraud_cost,
  invalid_clicks = t.invalid_clicks + excluded.invalid_clicks`;
const fold = (name: string, table: string, size: number) => {
  const bucket = size === GRANULARITY_MS.minute ? 'bucket_start' : `bucket_start - bucket_start % ${size}`;
  return `${name} AS (INSERT INTO ${table} AS t (${KEY}, ${VALUES})
    SELECT ${bucket}, offer_id, placement, ${SUMS} FROM moved GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (${KEY}) DO UPDATE SET ${ADD_EXCLUDED})`;
};
/** Moves the rows of runs $1 out of the run table and into the base and its rollups, in one statement. */
const COMPACT = `WITH moved AS (DELETE FROM stats_speed_run_rows WHERE run_id = ANY($1::bigint[]) RETURNING *),
  ${fold('m', 'stats_speed_minute', GRANULARITY_MS.minute)},
  ${fold('h', 'stats_speed_hour', GRANULARITY_MS.hour)},
  ${fold('d', 'stats_speed_day', GRANULARITY_MS.day)}
  SELECT count(*) AS rows FROM moved`;

const SET_OFFSETS = `INSERT INTO stats_speed_offsets AS t (group_id, topic, "partition", next_offset, updated_at)
  SELECT $1, u.topic, u.p, u.o, $5::bigint FROM unnest($2::text[], $3::integer[], $4::bigint[]) WITH ORDINALITY AS u(topic, p, o, n)
  ORDER BY u.n
  ON CONFLICT (group_id, topic, "partition") DO UPDATE SET next_offset = excluded.next_offset, updated_at = excluded.updated_at`;

const LOCK_OFFSETS = `SELECT t.topic, t."partition" AS partition, t.next_offset FROM stats_speed_offsets t
  JOIN unnest($2::text[], $3::integer[]) AS u(topic, p) ON t.topic = u.topic AND t."partition" = u.p
  WHERE t.group_id = $1 ORDER BY t.topic, t."partition" FOR UPDATE OF t`;

/** Rows [start, end) of columns as the ten arrays of {@link UNNEST}, money as decimal text. */
function columnArrays(c: MinuteStatsColumns, start: number, end: number): unknown[][] {
  const cols = Array.from({ length: 10 }, () => new Array<unknown>(end - start));
  for (let i = start, k = 0; i < end; i++, k++) {
    (cols[0] as unknown[])[k] = c.bucketStart[i];
    (cols[1] as unknown[])[k] = c.offerId[i];
    (cols[2] as unknown[])[k] = c.placement[i];
    (cols[3] as unknown[])[k] = c.emissions[i];
    (cols[4] as unknown[])[k] = c.clicks[i];
    (cols[5] as unknown[])[k] = String(c.clickCost[i]);
    (cols[6] as unknown[])[k] = c.duplicateClicks[i];
    (cols[7] as unknown[])[k] = c.fraudClicks[i];
    (cols[8] as unknown[])[k] = String(c.fraudCost[i]);
    (cols[9] as unknown[])[k] = c.invalidClicks[i];
  }
  return cols;
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
 * Connects to PostgreSQL (a connection string or a `pg` pool configuration), applies missing
 * migrations and returns the database as a {@link StatsStore}.
 */
export async function openPostgresStatsStore(connection: string | pg.PoolConfig): Promise<StatsStore> {
  const pool = await openPostgresPool(connection);
  let closed = false;

  const readIntervals = async (client: pg.Pool | pg.PoolClient): Promise<IntervalRow[]> =>
    (
      await client.query<IntervalRow>(
        'SELECT from_ms, to_ms, run_id, written_at, generation, seq, complete FROM stats_batch_intervals ORDER BY from_ms, to_ms',
      )
    ).rows;

  const pending = async (client: pg.Pool | pg.PoolClient): Promise<{ runs: number; rows: number }> => {
    const r = await client.query<{ runs: string; rows: string }>(
      'SELECT count(*) AS runs, coalesce(sum(row_count), 0) AS rows FROM stats_speed_runs',
    );
    return { runs: Number(r.rows[0]?.runs ?? 0), rows: Number(r.rows[0]?.rows ?? 0) };
  };

  const compact = async (): Promise<{ runs: number; rows: number }> => {
    try {
      return await inTransaction(pool, async (client) => {
        const locked = await client.query<{ ok: boolean }>(
          `SELECT pg_try_advisory_xact_lock(${COMPACT_LOCK_KEY}) AS ok`,
        );
        // Another process is compacting: its fold is as good as this one's.
        if (locked.rows[0]?.ok !== true) return { runs: 0, rows: 0 };
        // Runs commit with their rows: every run seen here has all its rows visible too.
        const runs = (
          await client.query<{ run_id: string }>('SELECT run_id FROM stats_speed_runs ORDER BY run_id')
        ).rows.map((r) => r.run_id);
        if (runs.length === 0) return { runs: 0, rows: 0 };
        const moved = await client.query<{ rows: string }>(COMPACT, [runs]);
        await client.query('DELETE FROM stats_speed_runs WHERE run_id = ANY($1::bigint[])', [runs]);
        return { runs: runs.length, rows: Number(moved.rows[0]?.rows ?? 0) };
      });
    } catch (err) {
      throw toRetriable(err);
    }
  };

  const dropRetired = async (): Promise<void> => {
    const retired = await pool.query<{ generation: string }>(
      "SELECT generation FROM stats_batch_generations WHERE state = 'retired' ORDER BY generation",
    );
    for (const { generation } of retired.rows) {
      for (const level of ['minute', 'hour', 'day'])
        await pool.query(`DELETE FROM stats_batch_gen_${level} WHERE generation = $1`, [generation]);
      await pool.query('DELETE FROM stats_batch_generations WHERE generation = $1', [generation]);
    }
  };

  return {
    kind: 'postgres',
    async applySpeedDeltas(group, deltas, offsets, expected = []) {
      checkOffsets(group, offsets);
      const columns = speedColumns(deltas);
      if (columns.length === 0 && offsets.length === 0) return;
      const run = runOf(columns);
      const positions = lastOffsets(offsets);
      for (let attempt = 1; ; attempt++) {
        try {
          await inTransaction(pool, async (client) => {
            if (expected.length > 0) {
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
            if (run.length > 0) {
              const created = await client.query<{ run_id: string }>(
                'INSERT INTO stats_speed_runs (group_id, row_count, created_at) VALUES ($1, $2, $3) RETURNING run_id',
                [group, run.length, Date.now()],
              );
              const runId = created.rows[0]?.run_id;
              for (let i = 0; i < run.length; i += CHUNK_ROWS)
                await client.query(INSERT_RUN_ROWS, [
                  runId,
                  ...columnArrays(run, i, Math.min(run.length, i + CHUNK_ROWS)),
                ]);
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
          break;
        } catch (err) {
          if (!isTransient(err) || attempt >= SPEED_ATTEMPTS) throw toRetriable(err);
        }
      }
      // Back-pressure: the flush that fills the runs up waits for their compaction.
      if (run.length > 0) {
        const waiting = await pending(pool).catch((err: unknown) => {
          throw toRetriable(err);
        });
        if (waiting.runs >= COMPACT_AT_RUNS || waiting.rows >= COMPACT_AT_ROWS) await compact();
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
    compact,
    async pendingRuns() {
      try {
        return await pending(pool);
      } catch (err) {
        throw toRetriable(err);
      }
    },
    async replaceBatchInterval(from, to, rows, runId, options) {
      try {
        await stageBatch(
          { from, to, rows, runId, complete: options?.complete ?? true },
          {
            start: (plan: BatchPlan) =>
              inTransaction(pool, async (client) => {
                await client.query(`SELECT pg_advisory_xact_lock(${BATCH_LOCK_KEY})`);
                const created = await client.query<{ generation: string }>(
                  `INSERT INTO stats_batch_generations (generation, from_ms, to_ms, run_id, state, created_at)
                   SELECT coalesce(max(generation), 0) + 1, $1, $2, $3, 'staging', $4 FROM stats_batch_generations
                   RETURNING generation`,
                  [plan.from, plan.to, plan.runId, Date.now()],
                );
                const generation = Number(created.rows[0]?.generation);
                // A staging of the same interval left by a crashed or failed write is dropped.
                await client.query(
                  `UPDATE stats_batch_generations SET state = 'retired'
                   WHERE state = 'staging' AND from_ms = $1 AND to_ms = $2 AND generation <> $3`,
                  [plan.from, plan.to, generation],
                );
                return generation;
              }),
            write: async (generation: number, chunk: StagedChunk) => {
              await pool.query(insertGeneration(chunk.level), [
                generation,
                ...columnArrays(chunk.rows, chunk.start, chunk.end),
              ]);
            },
            abandon: async (generation: number) => {
              try {
                await pool.query("UPDATE stats_batch_generations SET state = 'retired' WHERE generation = $1", [
                  generation,
                ]);
                await dropRetired();
              } catch {
                // Left for the next write of the interval, which drops abandoned stagings.
              }
            },
            switchIn: (plan: BatchPlan, generation: number) =>
              inTransaction(pool, async (client) => {
                await client.query(`SELECT pg_advisory_xact_lock(${BATCH_LOCK_KEY})`);
                await client.query('DELETE FROM stats_batch_intervals WHERE from_ms >= $1 AND to_ms <= $2', [
                  plan.from,
                  plan.to,
                ]);
                await client.query(
                  `INSERT INTO stats_batch_intervals (from_ms, to_ms, run_id, written_at, generation, complete, seq)
                   SELECT $1, $2, $3, $4, $5, $6, coalesce(max(seq), 0) + 1 FROM stats_batch_intervals`,
                  [plan.from, plan.to, plan.runId, Date.now(), generation, plan.complete ? 1 : 0],
                );
                await client.query("UPDATE stats_batch_generations SET state = 'live' WHERE generation = $1", [
                  generation,
                ]);
                await client.query(
                  `UPDATE stats_batch_generations SET state = 'retired' WHERE state = 'live'
                   AND generation NOT IN (SELECT generation FROM stats_batch_intervals)`,
                );
              }),
            afterSwitch: async () => {
              try {
                await dropRetired();
              } catch {
                // Retired rows are invisible; a later switch drops them.
              }
            },
          },
        );
      } catch (err) {
        throw toRetriable(err);
      }
    },
    async batchIntervals() {
      try {
        return (await readIntervals(pool)).map((r) => {
          const { from, to, runId, writtenAt, complete } = toInterval(r);
          return { from, to, runId, writtenAt, complete };
        });
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
            const intervals = (await readIntervals(client)).map(toInterval);
            const segments = generationSegments(intervals);
            const rows: MinuteStats[] = [];
            const windows = statsWindows(q, segments, after, q.limit + 1);
            for (let w = windows.next(); w.done !== true;) {
              const { sql, params } = windowsSql('postgres', w.value, q, after, q.limit + 1 - rows.length);
              const result = await client.query<RawStatsRow>(sql, params as unknown[]);
              for (const r of result.rows) rows.push(toMinuteStats(r));
              w = windows.next(result.rows.length);
            }
            return statsPage(rows, q, intervals);
          },
          'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
        );
      } catch (err) {
        throw toRetriable(err);
      }
    },
    async speedTotals(from, to) {
      try {
        const { sql, params } = sumWindows('postgres', from, to);
        const result = await pool.query<Record<string, string | null>>(sql, params as unknown[]);
        return totalsOf(result.rows[0]);
      } catch (err) {
        throw toRetriable(err);
      }
    },
    async sideSeries(side, q) {
      try {
        return await inTransaction(
          pool,
          async (client) => {
            const segments = generationSegments((await readIntervals(client)).map(toInterval));
            const { sql, params } = seriesSql('postgres', side, segments, q);
            const result = await client.query<Record<string, string | null>>(sql, params as unknown[]);
            return result.rows.map((r) => ({ bucketStart: Number(r.bucket), columns: totalsOf(r) }));
          },
          'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
        );
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
