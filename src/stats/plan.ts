/**
 * The read side's SQL, generated the same way for both dialects from a query window: one
 * UNION ALL part per table a window reads (batch generations' minute, hour and day rows; the
 * compacted speed base and its rollups; the runs waiting for compaction), each a primary-key
 * range scan per range, summed into buckets. Parts with nothing to read are left out.
 */
import { ReckonError } from '../events/index.ts';
import {
  type GenerationRange,
  type LevelRanges,
  type StatsWindow,
  type SwitchedInterval,
  type TimeRange,
  windowOf,
} from './coverage.ts';
import type { CursorKey } from './input.ts';
import { GRANULARITY_MS } from './input.ts';
import type { Granularity, SeriesQuery } from './types.ts';

/** The SQL dialect a statement is generated for. */
export type Dialect = 'sqlite' | 'postgres';

/** An interval record as both dialects return it. */
export interface IntervalRow {
  from_ms: number | string;
  to_ms: number | string;
  run_id: string;
  written_at: number | string;
  generation: number | string;
  seq: number | string;
  complete: number | string;
}

/** The plan's view of an interval record. */
export function toInterval(r: IntervalRow): SwitchedInterval & { runId: string; writtenAt: number; complete: boolean } {
  return {
    complete: Number(r.complete) === 1,
    from: Number(r.from_ms),
    to: Number(r.to_ms),
    generation: Number(r.generation),
    seq: Number(r.seq),
    runId: r.run_id,
    writtenAt: Number(r.written_at),
  };
}

/** A statement with its parameters: named (SQLite, `@pN`) or positional (PostgreSQL, `$N`). */
export interface WindowSql {
  sql: string;
  params: Record<string, unknown> | unknown[];
}

/** Builds one statement's parameters. */
class Binder {
  readonly named: Record<string, unknown> = {};
  readonly positional: unknown[] = [];
  constructor(readonly dialect: Dialect) {}

  bind(value: unknown): string {
    if (this.dialect === 'sqlite') {
      const name = `p${Object.keys(this.named).length}`;
      this.named[name] = value;
      return `@${name}`;
    }
    this.positional.push(value);
    return `$${this.positional.length}`;
  }

  get params(): Record<string, unknown> | unknown[] {
    return this.dialect === 'sqlite' ? this.named : this.positional;
  }
}

const VALUE_COLUMNS = `t.emissions AS emissions, t.clicks AS clicks, t.click_cost AS click_cost,
  t.duplicate_clicks AS duplicate_clicks, t.fraud_clicks AS fraud_clicks, t.fraud_cost AS fraud_cost,
  t.invalid_clicks AS invalid_clicks`;

/** Filters every part applies. */
interface Filters {
  offerId?: string | undefined;
  placement?: string | undefined;
}

/**
 * One part: the rows of `table` in `ranges` (with a generation as third element where the table
 * has one), their bucket truncated to `bucketMs`.
 */
function part(
  b: Binder,
  table: string,
  ranges: readonly (TimeRange | GenerationRange)[],
  generation: boolean,
  bucketMs: number,
  filters: Filters,
  filterParams: { offer?: string; placement?: string },
): string | undefined {
  if (ranges.length === 0) return undefined;
  const bucket =
    bucketMs === GRANULARITY_MS.minute ? 't.bucket_start' : `t.bucket_start - t.bucket_start % ${bucketMs}`;
  const where: string[] = [];
  if (filters.offerId !== undefined) where.push(`t.offer_id = ${filterParams.offer}`);
  if (filters.placement !== undefined) where.push(`t.placement = ${filterParams.placement}`);
  const select = `SELECT ${bucket} AS bucket, t.offer_id AS offer_id, t.placement AS placement, ${VALUE_COLUMNS}`;
  if (b.dialect === 'sqlite') {
    // CROSS JOIN keeps the ranges as the outer loop: each range is one primary-key range scan.
    const r = b.bind(JSON.stringify(ranges));
    const gen = generation ? 't.generation = j.value ->> 2 AND ' : '';
    return `${select} FROM json_each(${r}) AS j CROSS JOIN ${table} AS t
      WHERE ${gen}t.bucket_start >= j.value ->> 0 AND t.bucket_start < j.value ->> 1
      ${where.map((w) => `AND ${w}`).join(' ')}`;
  }
  const lo = b.bind(ranges.map((x) => x[0]));
  const hi = b.bind(ranges.map((x) => x[1]));
  const gen = generation ? b.bind(ranges.map((x) => (x as GenerationRange)[2])) : undefined;
  return `${select} FROM unnest(${lo}::bigint[], ${hi}::bigint[]${gen === undefined ? '' : `, ${gen}::bigint[]`})
      AS r(lo, hi${gen === undefined ? '' : ', g'})
    JOIN ${table} AS t ON ${gen === undefined ? '' : 't.generation = r.g AND '}t.bucket_start >= r.lo AND t.bucket_start < r.hi
    WHERE true ${where.map((w) => `AND ${w}`).join(' ')}`;
}

/** The parts of a window (or of one side of it). */
function parts(b: Binder, w: Partial<StatsWindow>, bucketMs: number, filters: Filters): string[] {
  const filterParams: { offer?: string; placement?: string } = {};
  if (filters.offerId !== undefined) filterParams.offer = b.bind(filters.offerId);
  if (filters.placement !== undefined) filterParams.placement = b.bind(filters.placement);
  const out: (string | undefined)[] = [];
  const levels = (side: 'batch' | 'speed', ranges: LevelRanges<TimeRange | GenerationRange> | undefined) => {
    if (ranges === undefined) return;
    const table = side === 'batch' ? 'stats_batch_gen_' : 'stats_speed_';
    for (const level of ['minute', 'hour', 'day'] as const)
      out.push(part(b, `${table}${level}`, ranges[level], side === 'batch', bucketMs, filters, filterParams));
  };
  levels('batch', w.batch);
  levels('speed', w.speed);
  if (w.fresh !== undefined) out.push(part(b, 'stats_speed_run_rows', w.fresh, false, bucketMs, filters, filterParams));
  return out.filter((p): p is string => p !== undefined);
}

const SUMS = (cast: string) => `sum(u.emissions)${cast} AS emissions, sum(u.clicks)${cast} AS clicks,
  sum(u.click_cost)${cast} AS click_cost, sum(u.duplicate_clicks)${cast} AS duplicate_clicks,
  sum(u.fraud_clicks)${cast} AS fraud_clicks, sum(u.fraud_cost)${cast} AS fraud_cost,
  sum(u.invalid_clicks)${cast} AS invalid_clicks`;
const NOT_ALL_ZERO = `sum(u.emissions) <> 0 OR sum(u.clicks) <> 0 OR sum(u.click_cost) <> 0 OR sum(u.duplicate_clicks) <> 0
  OR sum(u.fraud_clicks) <> 0 OR sum(u.fraud_cost) <> 0 OR sum(u.invalid_clicks) <> 0`;
const EMPTY_PART = (dialect: Dialect) =>
  `SELECT ${dialect === 'postgres' ? '0::bigint' : '0'} AS bucket, '' AS offer_id, '' AS placement, 0 AS emissions,
    0 AS clicks, 0 AS click_cost, 0 AS duplicate_clicks, 0 AS fraud_clicks, 0 AS fraud_cost, 0 AS invalid_clicks
    WHERE false`;

/** The page statement of one window: its rows summed per (bucket, offer, placement), after the cursor, in key order. */
export function windowsSql(
  dialect: Dialect,
  w: StatsWindow,
  q: { granularity: Granularity } & Filters,
  after: CursorKey | undefined,
  fetch: number,
): WindowSql {
  const b = new Binder(dialect);
  const union = parts(b, w, GRANULARITY_MS[q.granularity], q);
  const from = union.length === 0 ? EMPTY_PART(dialect) : union.join(' UNION ALL ');
  const c = dialect === 'postgres' ? ' COLLATE "C"' : '';
  const where =
    after === undefined
      ? ''
      : `WHERE (u.bucket, u.offer_id${c}, u.placement${c}) > (${b.bind(after.bucketStart)}, ${b.bind(after.offerId)}, ${b.bind(after.placement)})`;
  const sql = `SELECT u.bucket AS bucket_start, u.offer_id AS offer_id, u.placement AS placement,
      ${SUMS(dialect === 'postgres' ? '::bigint' : '')}
    FROM (${from}) AS u ${where}
    GROUP BY u.bucket, u.offer_id, u.placement
    HAVING ${NOT_ALL_ZERO}
    ORDER BY u.bucket, u.offer_id${c}, u.placement${c}
    LIMIT ${b.bind(fetch)}`;
  return { sql, params: b.params };
}

/** The whole of [from, to) as one window: covered minutes by generation, the rest from speed. */
function sideWindow(
  segments: readonly GenerationRange[],
  from: number,
  to: number,
  size: number,
  side: 'speed' | 'batch',
): Partial<StatsWindow> {
  if (side === 'batch') return { batch: windowOf(segments, from, to, size).batch };
  // The speed side's own rows, wherever batch covers them too.
  const all = windowOf([], from, to, size);
  return { speed: all.speed, fresh: all.fresh };
}

/** Sums of the speed layer's rows of [from, to) (covered or not), as one row. */
export function sumWindows(dialect: Dialect, from: number, to: number): WindowSql {
  const b = new Binder(dialect);
  const union = parts(b, sideWindow([], from, to, GRANULARITY_MS.day, 'speed'), GRANULARITY_MS.minute, {});
  const source = union.length === 0 ? EMPTY_PART(dialect) : union.join(' UNION ALL ');
  return { sql: `SELECT ${SUMS(dialect === 'postgres' ? '::bigint' : '')} FROM (${source}) AS u`, params: b.params };
}

/** One side's own rows of a series query summed per bucket, in bucket order. */
export function seriesSql(
  dialect: Dialect,
  side: 'speed' | 'batch',
  segments: readonly GenerationRange[],
  q: SeriesQuery,
): WindowSql {
  if (side !== 'speed' && side !== 'batch')
    throw new ReckonError('RECKON_STATS_INVALID_QUERY', `side ${String(side)}: expected speed or batch`);
  const size = GRANULARITY_MS[q.granularity];
  if (size === undefined)
    throw new ReckonError('RECKON_STATS_INVALID_QUERY', `granularity ${q.granularity}: expected minute, hour or day`);
  if (!Number.isSafeInteger(q.from) || !Number.isSafeInteger(q.to) || q.from >= q.to)
    throw new ReckonError('RECKON_STATS_INVALID_QUERY', `series range [${q.from}, ${q.to}) is not a valid interval`);
  const b = new Binder(dialect);
  const union = parts(b, sideWindow(segments, q.from, q.to, size, side), size, q);
  const source = union.length === 0 ? EMPTY_PART(dialect) : union.join(' UNION ALL ');
  return {
    sql: `SELECT u.bucket AS bucket, ${SUMS(dialect === 'postgres' ? '::bigint' : '')}
      FROM (${source}) AS u GROUP BY u.bucket ORDER BY u.bucket`,
    params: b.params,
  };
}
