/**
 * The write side's model, the same for both dialects: when runs are compacted, and how a batch
 * run's generation is staged in short chunks and switched in.
 *
 * A batch write goes: start a generation (state `staging`, invisible) -> write its minute rows
 * and the hour and day rollups of every whole hour and day, chunk by chunk, each chunk its own
 * short transaction -> switch it in (one transaction: the interval record naming the
 * generation replaces the records inside it; generations no interval names any more retire)
 * -> drop retired generations' rows. A failure or a crash before the switch leaves the old
 * generation served and the staging one invisible; the next write of the same interval drops it.
 */
import { GRANULARITY_MS, batchColumnsChecker, batchColumnsOf, checkBatchInterval, compareCodePoints } from './input.ts';
import { rollupSums } from './rollup-sums.ts';
import { columnsOfRows } from './run-rows.ts';
import type { BatchRows, MinuteStats, MinuteStatsColumns } from './types.ts';

/** A flush that leaves this many runs waiting compacts them before it returns (back-pressure). */
export const COMPACT_AT_RUNS = 16;
/** ... or this many run rows. */
export const COMPACT_AT_ROWS = 1_000_000;
/** Rows per staging transaction of a batch generation: each holds the write lock for a few ms. */
export const STAGE_CHUNK_ROWS = 5_000;
/**
 * Pause after each staging transaction (ms): another process's writer waiting for the lock
 * (SQLite's busy handler sleeps between tries) gets a gap to take it in.
 */
const STAGE_GAP_MS = 2;

/** What a compaction folded. */
export interface CompactionResult {
  runs: number;
  rows: number;
}

/** The batch write being staged. */
export interface BatchPlan {
  from: number;
  to: number;
  runId: string;
  /** Computed from complete input (the interval record's `complete`). */
  complete: boolean;
}

/** The table level a staged chunk goes to. */
export type GenerationLevel = 'minute' | 'hour' | 'day';

/** Rows [start, end) of `rows` for one level of a generation. */
export interface StagedChunk {
  level: GenerationLevel;
  rows: MinuteStatsColumns;
  start: number;
  end: number;
}

/** What a dialect does at each step of {@link stageBatch}. */
export interface GenerationSteps {
  /** Creates the staging generation and returns its number. */
  start(plan: BatchPlan): Promise<number> | number;
  /** Writes one chunk, in one short transaction. */
  write(generation: number, chunk: StagedChunk): Promise<void> | void;
  /** Forgets a generation that will never be switched in (best effort). */
  abandon(generation: number): Promise<void> | void;
  /** Switches the generation in for [from, to), in one short transaction. */
  switchIn(plan: BatchPlan, generation: number): Promise<void> | void;
  /** Drops what the switch retired (best effort: retired rows are invisible). */
  afterSwitch(): Promise<void> | void;
}

/** Rows given as an array, sorted into key order as one batch of columns. */
function sortedColumns(rows: readonly MinuteStats[]): MinuteStatsColumns {
  const sorted = [...rows].sort(
    (a, b) =>
      a.bucketStart - b.bucketStart ||
      compareCodePoints(a.offerId, b.offerId) ||
      compareCodePoints(a.placement, b.placement),
  );
  return columnsOfRows(sorted);
}

/**
 * Stages `rows` of [from, to) as a new generation and switches it in: the whole of
 * `replaceBatchInterval` but the dialect's statements. Bad input fails before the switch,
 * writing nothing that a query sees.
 */
export async function stageBatch(input: BatchPlan & { rows: BatchRows }, steps: GenerationSteps): Promise<void> {
  const { from, to, rows, runId, complete } = input;
  checkBatchInterval(from, to, rows, runId);
  const given = batchColumnsOf(rows);
  const batches: Iterable<MinuteStatsColumns> = given ?? [sortedColumns(rows as readonly MinuteStats[])];
  // Arrays were checked whole above; columns are checked batch by batch as they come.
  const check = given === undefined ? undefined : batchColumnsChecker(from, to);
  const hours = rollupSums(GRANULARITY_MS.hour, from, to);
  const days = rollupSums(GRANULARITY_MS.day, from, to);
  const plan: BatchPlan = { from, to, runId, complete };
  const generation = await steps.start(plan);
  try {
    for (const b of batches) {
      check?.(b);
      hours.add(b);
      days.add(b);
      await writeChunks(steps, generation, 'minute', b);
    }
    await writeChunks(steps, generation, 'hour', columnsOfRows(hours.rows()));
    await writeChunks(steps, generation, 'day', columnsOfRows(days.rows()));
  } catch (err) {
    await steps.abandon(generation);
    throw err;
  }
  await steps.switchIn(plan, generation);
  await steps.afterSwitch();
}

async function writeChunks(
  steps: GenerationSteps,
  generation: number,
  level: GenerationLevel,
  rows: MinuteStatsColumns,
): Promise<void> {
  for (let start = 0; start < rows.length; start += STAGE_CHUNK_ROWS) {
    await steps.write(generation, { level, rows, start, end: Math.min(rows.length, start + STAGE_CHUNK_ROWS) });
    await new Promise((r) => setTimeout(r, STAGE_GAP_MS));
  }
}
