/**
 * One recalculation run: recalculate an interval from the lake, then write it safely. Retrying a
 * failed or killed run is always safe: the rows are deterministic and the write replaces.
 */
import { randomUUID } from 'node:crypto';
import { ReckonError, type StatsRules } from '../events/index.ts';
import { STATS_COLUMNS, type StatsColumn, type StatsStore } from '../stats/index.ts';
import {
  type HourFileLister,
  openBatchDatabase,
  type RecalculationFigures,
  recalculateIntoTable,
} from './recalculate.ts';
import { resultTotals } from './result-table.ts';
import { safeWriteResult } from './safe-write.ts';

/** What a run reports when it is done. */
export interface RecalculationRun extends RecalculationFigures {
  runId: string;
  /** Wall time of the recalculation and of the write, ms. */
  computeMs: number;
  writeMs: number;
  /** Per column: the speed layer's total over the interval and the exact one (money in micros). */
  discrepancies: { column: StatsColumn; speed: bigint; batch: bigint }[];
  /** Whether the input was complete (the rows are final); false only for a forced run. */
  complete: boolean;
  /** For a forced run of incomplete input: what the input still waited for. */
  incompleteInput?: string;
}

/** What an input check found: whether the lake holds all of [from, to), and else what it waits for. */
export interface InputCheckResult {
  complete: boolean;
  waitingFor: string;
}

/**
 * Checks the lake input of [from, to) (every hour sealed, everything the log held at the check
 * landed): `lake`'s `awaitLakeInput` in production; given by the caller, since the batch layer
 * reads the lake's files but not the log.
 */
export type InputCheck = (from: number, to: number, signal?: AbortSignal) => Promise<InputCheckResult>;

/** Options of {@link runRecalculation}. */
export interface RecalculationRunOptions {
  lakeDir: string;
  /** Lists the data files of one topic's hour (the lake's `lakeHourFiles`). */
  listHourFiles: HourFileLister;
  store: StatsStore;
  from: number;
  to: number;
  rules: StatsRules;
  /** Default: a fresh UUID. */
  runId?: string;
  /**
   * Refuses [from, to) (RECKON_BATCH_INPUT_INCOMPLETE, retriable) unless its lake input is
   * complete. Every entry point of the product gives one; without it the caller vouches for the
   * lake (tests and benchmarks over lakes they wrote whole).
   */
  inputCheck?: InputCheck;
  /** With an incomplete input, write anyway: the interval is served but never final. */
  force?: boolean;
  signal?: AbortSignal;
  emissionsTopic?: string;
  clicksTopic?: string;
  threads?: number;
  /** Called as each step starts: `step` of `steps`. */
  onStep?: (name: string, step: number, steps: number) => void;
  /** Called after each part of a step (each SQL step, each write) with its wall time, ms. */
  onStepTimed?: (part: string, ms: number) => void;
}

/** Recalculates [from, to) from the lake and replaces its batch rows in the store and the lake. */
export async function runRecalculation(o: RecalculationRunOptions): Promise<RecalculationRun> {
  const runId = o.runId ?? randomUUID();
  const input = o.inputCheck === undefined ? undefined : await o.inputCheck(o.from, o.to, o.signal);
  if (input !== undefined && !input.complete && o.force !== true) {
    throw new ReckonError(
      'RECKON_BATCH_INPUT_INCOMPLETE',
      `${new Date(o.from).toISOString()} .. ${new Date(o.to).toISOString()} cannot be recalculated as final yet: ${input.waitingFor}. ` +
        'Wait until the lake holds it (the scheduler waits by itself), or force a recalculation of what is there (`--force`), which is served marked final=false',
      { retriable: true },
    );
  }
  const complete = input === undefined || input.complete;
  // The rows stay in this database from the recalculation to both writes.
  const db = await openBatchDatabase(o.threads);
  try {
    const timed = async <T>(part: string, work: () => Promise<T>): Promise<T> => {
      const start = performance.now();
      const result = await work();
      o.onStepTimed?.(part, performance.now() - start);
      return result;
    };
    const t0 = performance.now();
    o.onStep?.('recalculating from the lake', 1, 2);
    const figures = await recalculateIntoTable(db.connection, {
      lakeDir: o.lakeDir,
      from: o.from,
      to: o.to,
      rules: o.rules,
      listHourFiles: o.listHourFiles,
      ...(o.emissionsTopic !== undefined ? { emissionsTopic: o.emissionsTopic } : {}),
      ...(o.clicksTopic !== undefined ? { clicksTopic: o.clicksTopic } : {}),
      ...(o.onStepTimed !== undefined ? { onStepTimed: o.onStepTimed } : {}),
    });
    const t1 = performance.now();
    o.onStep?.('writing the rows (store transaction and lake Parquet)', 2, 2);
    // Reconciliation: what the speed layer said about the interval, against the exact figures.
    const speed = await timed('speed totals', () => o.store.speedTotals(o.from, o.to));
    const batch = await timed('batch totals', () => resultTotals(db.connection));
    await safeWriteResult({
      connection: db.connection,
      store: o.store,
      lakeDir: o.lakeDir,
      from: o.from,
      to: o.to,
      runId,
      complete,
      ...(o.onStepTimed !== undefined ? { onStepTimed: o.onStepTimed } : {}),
    });
    await timed('discrepancies', () => o.store.recordDiscrepancies(o.from, o.to, runId, speed, batch));
    const t2 = performance.now();
    const discrepancies = STATS_COLUMNS.map((column) => ({
      column,
      speed: BigInt(speed[column]),
      batch: BigInt(batch[column]),
    }));
    return {
      ...figures,
      runId,
      computeMs: t1 - t0,
      writeMs: t2 - t1,
      discrepancies,
      complete,
      ...(complete ? {} : { incompleteInput: (input as InputCheckResult).waitingFor }),
    };
  } finally {
    db.close();
  }
}
