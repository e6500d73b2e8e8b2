/**
 * Batch coverage and the plan of a statistics query, the same for both dialects: which minute
 * ranges are read from the batch table and which from the speed table, in which windows, and
 * how each result bucket is labelled (`final`, `source`). The databases sum the rows; this
 * decides where from.
 */
import { type CursorKey, encodeCursor, GRANULARITY_MS, MINUTE_MS } from './stats-input.ts';
import type { MinuteStats, StatsPage, StatsQuery, StatsResultRow } from './stats-types.ts';

/** A half-open range [start, end) of epoch milliseconds. */
export type TimeRange = readonly [start: number, end: number];

/**
 * The union of batch intervals as disjoint, ascending ranges; overlapping and touching
 * intervals merge. `intervals` must be ordered by `from`.
 */
export function mergeCoverage(intervals: readonly { from: number; to: number }[]): TimeRange[] {
  const merged: [number, number][] = [];
  for (const { from, to } of intervals) {
    const last = merged.at(-1);
    if (last !== undefined && from <= last[1]) last[1] = Math.max(last[1], to);
    else merged.push([from, to]);
  }
  return merged;
}

/** End of the contiguous coverage that starts at the earliest interval, or null without any. */
export function exactUntil(coverage: readonly TimeRange[]): number | null {
  return coverage[0]?.[1] ?? null;
}

/** Milliseconds of [start, end) that the coverage covers. */
function coveredMs(coverage: readonly TimeRange[], start: number, end: number): number {
  // Binary search for the first range ending after `start`.
  let lo = 0;
  let hi = coverage.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((coverage[mid] as TimeRange)[1] <= start) lo = mid + 1;
    else hi = mid;
  }
  let covered = 0;
  for (let i = lo; i < coverage.length; i++) {
    const [s, e] = coverage[i] as TimeRange;
    if (s >= end) break;
    covered += Math.min(e, end) - Math.max(s, start);
  }
  return covered;
}

/** What one window of a query reads. */
export interface StatsWindow {
  /** Ranges of minute starts read from `stats_batch_minute` (covered minutes). */
  batchRanges: TimeRange[];
  /** Ranges of minute starts read from `stats_speed_minute` (uncovered minutes). */
  speedRanges: TimeRange[];
  /** Ranges of day starts read from `stats_batch_day`: whole days the coverage covers. */
  batchDayRanges: TimeRange[];
  /** Ranges of day starts read from `stats_speed_day`: whole days it does not touch. */
  speedDayRanges: TimeRange[];
}

const DAY_MS = GRANULARITY_MS.day;

/**
 * Moves the whole days inside `ranges` to day ranges (read from a day rollup): what remains
 * of each range is its minutes before the first whole day and after the last.
 */
function carveDays(ranges: readonly TimeRange[]): { minutes: TimeRange[]; days: TimeRange[] } {
  const minutes: TimeRange[] = [];
  const days: TimeRange[] = [];
  for (const [start, end] of ranges) {
    const first = Math.ceil(start / DAY_MS) * DAY_MS;
    const last = Math.floor(end / DAY_MS) * DAY_MS;
    if (first >= last) {
      minutes.push([start, end]);
      continue;
    }
    if (start < first) minutes.push([start, first]);
    days.push([first, last]);
    if (last < end) minutes.push([last, end]);
  }
  return { minutes, days };
}

/** The window's ranges, with whole days read from the day rollups when buckets are days. */
function windowOf(coverage: readonly TimeRange[], start: number, end: number, size: number): StatsWindow {
  const { batch, speed } = splitByCoverage(coverage, start, end);
  if (size < DAY_MS) return { batchRanges: batch, speedRanges: speed, batchDayRanges: [], speedDayRanges: [] };
  const b = carveDays(batch);
  const s = carveDays(speed);
  return { batchRanges: b.minutes, speedRanges: s.minutes, batchDayRanges: b.days, speedDayRanges: s.days };
}

/** Splits [start, end) into the ranges the coverage covers and the ranges it does not. */
function splitByCoverage(
  coverage: readonly TimeRange[],
  start: number,
  end: number,
): { batch: TimeRange[]; speed: TimeRange[] } {
  const batchRanges: TimeRange[] = [];
  const speedRanges: TimeRange[] = [];
  let at = start;
  for (const [s, e] of coverage) {
    if (e <= at) continue;
    if (s >= end) break;
    if (s > at) speedRanges.push([at, s]);
    const coveredEnd = Math.min(e, end);
    batchRanges.push([Math.max(s, at), coveredEnd]);
    at = coveredEnd;
  }
  if (at < end) speedRanges.push([at, end]);
  return { batch: batchRanges, speed: speedRanges };
}

/**
 * The windows a page reads, in time order: the query's minutes from the cursor's bucket on, cut
 * at bucket boundaries. The caller reads windows until it has `need` rows, telling the generator
 * (through `next(rows)`) how many the last window gave; the next window's length follows the
 * rows per bucket seen so far (four times longer while nothing was found). So a page costs
 * about what it returns, not everything after the cursor: summing and sorting a whole day of
 * minute rows for every page of it would make paging quadratic.
 */
export function* statsWindows(
  q: StatsQuery,
  coverage: readonly TimeRange[],
  after: CursorKey | undefined,
  need: number,
): Generator<StatsWindow, void, number> {
  const size = GRANULARITY_MS[q.granularity];
  let start = Math.max(q.from, after?.bucketStart ?? 0);
  let buckets = 1;
  let readBuckets = 0;
  let found = 0;
  while (start < q.to && found < need) {
    const end = Math.min(q.to, start - (start % size) + buckets * size);
    const got: number = yield windowOf(coverage, start, end, size);
    found += got;
    readBuckets += buckets;
    buckets = found === 0 ? buckets * 4 : Math.max(1, Math.ceil(((need - found) * readBuckets) / found));
    start = end;
  }
}

const ceilMinute = (ms: number) => Math.ceil(ms / MINUTE_MS) * MINUTE_MS;

/**
 * Labels the summed rows (in key order; more than `q.limit` of them means another page
 * follows) and cuts the page. A bucket is final when batch intervals cover all of it; its
 * source is 'batch' when they cover every minute of it that the query reads (labels depend on
 * time only, so all rows of a bucket agree).
 */
export function statsPage(rows: readonly MinuteStats[], q: StatsQuery, coverage: readonly TimeRange[]): StatsPage {
  const size = GRANULARITY_MS[q.granularity];
  const page = rows.slice(0, q.limit);
  const labels = new Map<number, { final: boolean; source: 'batch' | 'speed' }>();
  const out: StatsResultRow[] = page.map((row) => {
    let label = labels.get(row.bucketStart);
    if (label === undefined) {
      const bucketEnd = row.bucketStart + size;
      // Minute starts read for this bucket lie in [from, to): as whole minutes, [first, last).
      const first = ceilMinute(Math.max(row.bucketStart, q.from));
      const last = ceilMinute(Math.min(bucketEnd, q.to));
      label = {
        final: coveredMs(coverage, row.bucketStart, bucketEnd) === size,
        source: coveredMs(coverage, first, last) === last - first ? 'batch' : 'speed',
      };
      labels.set(row.bucketStart, label);
    }
    return { ...row, ...label };
  });
  const last = page.at(-1);
  return {
    rows: out,
    ...(rows.length > q.limit && last !== undefined ? { nextCursor: encodeCursor(last) } : {}),
    exactUntil: exactUntil(coverage),
  };
}
