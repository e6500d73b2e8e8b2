/**
 * The serving store's seam: statistics rows written by the speed and batch layers and read by
 * the query API. Two implementations (SQLite embedded, PostgreSQL distributed) pass one
 * contract suite.
 */

/** Column values of one statistics row (also used as deltas). Money is a bigint count of micros. */
export interface StatsColumns {
  emissions: number;
  clicks: number;
  clickCost: bigint;
  duplicateClicks: number;
  fraudClicks: number;
  fraudCost: bigint;
  invalidClicks: number;
}

/** A minute row (or a delta to one). `bucketStart`: epoch ms of the UTC minute start. */
export interface MinuteStats extends StatsColumns {
  bucketStart: number;
  offerId: string;
  placement: string;
}

/**
 * Minute rows column by column: row i is (bucketStart[i], offerId[i], placement[i], emissions[i],
 * ...), `length` rows in all. The batch layer hands its results over this way, copied from its
 * engine's result chunks, without an object per row.
 */
export interface MinuteStatsColumns {
  readonly length: number;
  readonly bucketStart: ArrayLike<number>;
  readonly offerId: ArrayLike<string>;
  readonly placement: ArrayLike<string>;
  readonly emissions: ArrayLike<number>;
  readonly clicks: ArrayLike<number>;
  readonly clickCost: ArrayLike<bigint>;
  readonly duplicateClicks: ArrayLike<number>;
  readonly fraudClicks: ArrayLike<number>;
  readonly fraudCost: ArrayLike<bigint>;
  readonly invalidClicks: ArrayLike<number>;
}

/**
 * The rows of a batch run: minute rows in any order, or `columns`, batches of columns read once,
 * in order, whose rows come in strictly ascending (bucketStart, offerId, placement) order (keys
 * compared by code point), which is what makes each key unique.
 */
export type BatchRows = readonly MinuteStats[] | { readonly columns: Iterable<MinuteStatsColumns> };

/** A consumer position kept with the results (sink-kept offsets); `offset` is the next offset to process. */
export interface SinkOffset {
  topic: string;
  partition: number;
  offset: number;
}

/** Bucket size of a query: UTC minute, hour or day. */
export type Granularity = 'minute' | 'hour' | 'day';

/**
 * A statistics query: minutes whose start lies in [from, to) (epoch ms), summed into buckets of
 * `granularity`; optional exact filters; at most `limit` rows after `cursor`.
 */
export interface StatsQuery {
  from: number;
  to: number;
  granularity: Granularity;
  offerId?: string;
  placement?: string;
  limit: number;
  /** `nextCursor` of the previous page. */
  cursor?: string;
}

/**
 * One result row; `bucketStart` is the minute, hour or day start. `final`: the whole bucket is
 * covered by batch intervals. `source`: 'batch' when every minute of the bucket inside the query
 * range is batch-covered, else 'speed'.
 */
export interface StatsResultRow extends MinuteStats {
  source: 'batch' | 'speed';
  final: boolean;
}

/**
 * A page of results. `nextCursor` is absent on the last page. `exactUntil`: the end of the
 * contiguous batch coverage that starts at the earliest covered interval, or null when no batch
 * run has written yet.
 */
export interface StatsPage {
  rows: StatsResultRow[];
  nextCursor?: string;
  exactUntil: number | null;
}

/** An interval [from, to) (epoch ms) that batch run `runId` wrote at `writtenAt` (epoch ms). */
export interface BatchInterval {
  from: number;
  to: number;
  runId: string;
  writtenAt: number;
  /** Computed from complete lake input: its buckets are final. A forced run of incomplete input is not. */
  complete: boolean;
}

/** Options of {@link StatsStore.replaceBatchInterval}. */
export interface BatchWriteOptions {
  /**
   * Whether the rows were computed from complete input (every lake hour of the interval sealed
   * and landed). Default true. Rows of incomplete input are served (`source` 'batch') but their
   * buckets are never `final`, and `exactUntil` does not count them.
   */
  complete?: boolean;
}

/** The columns of the statistics contract, in contract order. */
export const STATS_COLUMNS = [
  'emissions',
  'clicks',
  'clickCost',
  'duplicateClicks',
  'fraudClicks',
  'fraudCost',
  'invalidClicks',
] as const;

/** One column of the statistics contract. */
export type StatsColumn = (typeof STATS_COLUMNS)[number];

/**
 * The speed layer's total and a batch run's total of one column over one interval (money in
 * micros): how far the near-real-time numbers were from the exact ones.
 */
export interface Discrepancy {
  from: number;
  to: number;
  column: StatsColumn;
  speed: bigint;
  batch: bigint;
  runId: string;
  computedAt: number;
}

/** A series of one side's sums (see {@link StatsStore.sideSeries}). */
export interface SeriesQuery {
  from: number;
  to: number;
  granularity: Granularity;
  offerId?: string;
  placement?: string;
}

/** One bucket of a series. */
export interface SeriesPoint {
  bucketStart: number;
  columns: StatsColumns;
}

/** The serving store: speed deltas with their offsets, batch intervals, and the query over both. */
export interface StatsStore {
  /** Which implementation this is. */
  readonly kind: 'sqlite' | 'postgres';
  /**
   * Appends speed-layer minute deltas as one run (summed per key, sorted by key; rows or columns)
   * and records the group's next offsets, in ONE transaction (a crash leaves both or neither). With `expected`, each of those positions must be what the
   * store holds now (offset -1: none recorded), or nothing is written and the call fails with
   * RECKON_STATS_OFFSETS_MOVED: another writer has moved the partition on (a hand-over between
   * speed processes), and the deltas would count its records twice.
   */
  applySpeedDeltas(
    group: string,
    deltas: readonly MinuteStats[] | MinuteStatsColumns,
    offsets: readonly SinkOffset[],
    expected?: readonly SinkOffset[],
  ): Promise<void>;
  /**
   * Folds every run waiting into the compacted base and its hour and day rollups, in ONE
   * transaction (a query sees the runs or their fold, never both or neither); what it folded.
   * Flushes call it themselves once runs pile up; a query never needs it.
   */
  compact(): Promise<{ runs: number; rows: number }>;
  /** Runs (and their rows) waiting for compaction. */
  pendingRuns(): Promise<{ runs: number; rows: number }>;
  /** The next offsets the speed group recorded for `topic` (partitions never recorded are absent). */
  speedOffsets(group: string, topic: string): Promise<Map<number, number>>;
  /**
   * Replaces every batch minute row of [from, to) with `rows` and marks [from, to) covered by run
   * `runId`: the rows are staged aside as a new generation in short transactions, then switched
   * in by ONE short transaction, so a query sees the old rows or the new ones, never a mix;
   * idempotent (a rerun replaces, never adds). Interval records
   * lying wholly inside [from, to) are replaced by this one; others are kept. Rows outside
   * [from, to), a key given twice or columns out of order fail the whole replacement.
   */
  replaceBatchInterval(
    from: number,
    to: number,
    rows: BatchRows,
    runId: string,
    options?: BatchWriteOptions,
  ): Promise<void>;
  /** Batch-covered intervals, ordered by from (then to). */
  batchIntervals(): Promise<BatchInterval[]>;
  /**
   * Rows of [from, to) at a granularity: for each minute, batch rows where a batch interval
   * covers it, speed rows elsewhere; summed into hour/day buckets (UTC). Ordered by
   * (bucketStart, offerId, placement) with keys compared by code point; keyset pagination with
   * an opaque cursor; rows whose columns are all zero are omitted.
   */
  query(q: StatsQuery): Promise<StatsPage>;
  /** Sums of the speed layer's minute rows of [from, to) (money in micros). */
  speedTotals(from: number, to: number): Promise<StatsColumns>;
  /**
   * One side's own minute rows of [from, to) summed per bucket (UTC minute, hour or day),
   * optionally of one offer and placement, in bucket order; buckets without rows are absent.
   * What the dashboard charts speed against batch with.
   */
  sideSeries(side: 'speed' | 'batch', q: SeriesQuery): Promise<SeriesPoint[]>;
  /** Records speed and batch totals of [from, to) per column, replacing those recorded for the same interval. */
  recordDiscrepancies(from: number, to: number, runId: string, speed: StatsColumns, batch: StatsColumns): Promise<void>;
  /** Recorded discrepancies of intervals overlapping [from, to), ordered by (from, to, contract column order). */
  discrepancies(from: number, to: number): Promise<Discrepancy[]>;
  /** Closes the database connection(s); the store is unusable afterwards. */
  close(): Promise<void>;
}
