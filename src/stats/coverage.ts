/**
 * Batch coverage and the plan of a statistics query, the same for both dialects: which minute
 * ranges are read from the batch table and which from the speed table, in which windows, and
 * how each result bucket is labelled (`final`, `source`). The databases sum the rows; this
 * decides where from.
 */
import { type CursorKey, encodeCursor, GRANULARITY_MS, MINUTE_MS } from './input.ts';
import type { MinuteStats, StatsPage, StatsQuery, StatsResultRow } from './types.ts';

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

/** A half-open range [start, end) of minute starts read from one batch generation. */
export type GenerationRange = readonly [start: number, end: number, generation: number];

/** A batch interval as the query plan needs it: its generation, and when it was switched in. */
export interface SwitchedInterval {
  from: number;
  to: number;
  generation: number;
  /** Switch order: where intervals overlap, the one switched in last decides the minute. */
  seq: number;
}

/**
 * Which generation each covered minute reads: the interval switched in last among those that
 * cover it. Disjoint, ascending ranges; minutes no interval covers are absent.
 */
export function generationSegments(intervals: readonly SwitchedInterval[]): GenerationRange[] {
  let painted: GenerationRange[] = [];
  for (const i of [...intervals].sort((a, b) => a.seq - b.seq)) {
    const next: GenerationRange[] = [];
    for (const seg of painted) {
      if (seg[1] <= i.from || seg[0] >= i.to) next.push(seg);
      else {
        if (seg[0] < i.from) next.push([seg[0], i.from, seg[2]]);
        if (seg[1] > i.to) next.push([i.to, seg[1], seg[2]]);
      }
    }
    next.push([i.from, i.to, i.generation]);
    painted = next.sort((a, b) => a[0] - b[0]);
  }
  return painted;
}

/** Ranges of one side, by the table level they are read from. */
export interface LevelRanges<R> {
  minute: R[];
  hour: R[];
  day: R[];
}

/** What one window of a query reads. */
export interface StatsWindow {
  /** Covered minutes, by generation: minute, hour and day rows of those generations. */
  batch: LevelRanges<GenerationRange>;
  /** Uncovered minutes read from the compacted speed base and its hour and day rollups. */
  speed: LevelRanges<TimeRange>;
  /** Uncovered minutes read from the runs waiting for compaction (minute rows only). */
  fresh: TimeRange[];
}

const DAY_MS = GRANULARITY_MS.day;
const HOUR_MS = GRANULARITY_MS.hour;

/**
 * Splits `ranges` by level: whole buckets of each rollup size in `sizes` (largest first) are
 * read from that rollup, what remains from minute rows. `extra` rides along on each piece.
 */
function carve<R extends readonly number[]>(ranges: readonly R[], sizes: readonly number[]): LevelRanges<R> {
  const out: LevelRanges<R> = { minute: [], hour: [], day: [] };
  const place = (r: R, level: number): void => {
    const size = sizes[level];
    if (size === undefined) {
      out.minute.push(r);
      return;
    }
    const [start, end] = r as unknown as [number, number];
    const first = Math.ceil(start / size) * size;
    const last = Math.floor(end / size) * size;
    if (first >= last) return place(r, level + 1);
    const piece = (a: number, b: number) => [a, b, ...r.slice(2)] as unknown as R;
    if (start < first) place(piece(start, first), level + 1);
    (size === DAY_MS ? out.day : out.hour).push(piece(first, last));
    if (last < end) place(piece(last, end), level + 1);
  };
  for (const r of ranges) place(r, 0);
  return out;
}

/** Rollup sizes a bucket of `size` may be read from, largest first. */
const rollupsFor = (size: number): number[] => (size >= DAY_MS ? [DAY_MS, HOUR_MS] : size >= HOUR_MS ? [HOUR_MS] : []);

/** The window's ranges: covered minutes by generation, whole hours and days from the rollups where buckets allow. */
export function windowOf(segments: readonly GenerationRange[], start: number, end: number, size: number): StatsWindow {
  const batch: GenerationRange[] = [];
  const speed: TimeRange[] = [];
  let at = start;
  for (const [s, e, generation] of segments) {
    if (e <= at) continue;
    if (s >= end) break;
    if (s > at) speed.push([at, s]);
    const coveredEnd = Math.min(e, end);
    batch.push([Math.max(s, at), coveredEnd, generation]);
    at = coveredEnd;
  }
  if (at < end) speed.push([at, end]);
  const sizes = rollupsFor(size);
  return { batch: carve(batch, sizes), speed: carve(speed, sizes), fresh: speed };
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
  segments: readonly GenerationRange[],
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
    const got: number = yield windowOf(segments, start, end, size);
    found += got;
    readBuckets += buckets;
    buckets = found === 0 ? buckets * 4 : Math.max(1, Math.ceil(((need - found) * readBuckets) / found));
    start = end;
  }
}

const ceilMinute = (ms: number) => Math.ceil(ms / MINUTE_MS) * MINUTE_MS;

/**
 * Labels the summed rows (in key order; more than `q.limit` of them means another page
 * follows) and cuts the page. A bucket is final when batch intervals computed from complete
 * input cover all of it; its source is 'batch' when batch intervals (complete or forced) cover
 * every minute of it that the query reads (labels depend on time only, so all rows of a bucket
 * agree).
 */
export function statsPage(
  rows: readonly MinuteStats[],
  q: StatsQuery,
  intervals: readonly { from: number; to: number; complete: boolean }[],
): StatsPage {
  const coverage = mergeCoverage(intervals);
  const finalCoverage = mergeCoverage(intervals.filter((i) => i.complete));
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
        final: coveredMs(finalCoverage, row.bucketStart, bucketEnd) === size,
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
    exactUntil: exactUntil(finalCoverage),
  };
}
