/**
 * One recalculation run: recalculate an interval from the lake, then write it safely. Retrying a
 * failed or killed run is always safe: the rows are deterministic and the write replaces.
 */
import { randomUUID } from 'node:crypto';
import type { StatsRules } from '../events/index.ts';
import {
  addColumns,
  STATS_COLUMNS,
  type StatsColumn,
  type StatsColumns,
  type StatsStore,
  zeroColumns,
} from '../store/index.ts';
import { type Recalculation, recalculateInterval } from './recalculate.ts';
import { safeWriteInterval } from './safe-write.ts';

/** What a run reports when it is done. */
export interface RecalculationRun extends Omit<Recalculation, 'rows'> {
  runId: string;
  rows: number;
  /** Wall time of the recalculation and of the write, ms. */
  computeMs: number;
  writeMs: number;
  /** Per column: the speed layer's total over the interval and the exact one (money in micros). */
  discrepancies: { column: StatsColumn; speed: bigint; batch: bigint }[];
}

/** Column totals of minute rows. */
function totalsOf(rows: readonly StatsColumns[]): StatsColumns {
  const totals = zeroColumns();
  for (const r of rows) addColumns(totals, r);
  return totals;
}

/** Options of {@link runRecalculation}. */
export interface RecalculationRunOptions {
  lakeDir: string;
  store: StatsStore;
  from: number;
  to: number;
  rules: StatsRules;
  /** Default: a fresh UUID. */
  runId?: string;
  emissionsTopic?: string;
  clicksTopic?: string;
  threads?: number;
  /** Called as each step starts: `step` of `steps`. */
  onStep?: (name: string, step: number, steps: number) => void;
}

/** Recalculates [from, to) from the lake and replaces its batch rows in the store and the lake. */
export async function runRecalculation(o: RecalculationRunOptions): Promise<RecalculationRun> {
  const runId = o.runId ?? randomUUID();
  const t0 = performance.now();
  o.onStep?.('recalculating from the lake', 1, 2);
  const result = await recalculateInterval({
    lakeDir: o.lakeDir,
    from: o.from,
    to: o.to,
    rules: o.rules,
    ...(o.emissionsTopic !== undefined ? { emissionsTopic: o.emissionsTopic } : {}),
    ...(o.clicksTopic !== undefined ? { clicksTopic: o.clicksTopic } : {}),
    ...(o.threads !== undefined ? { threads: o.threads } : {}),
  });
  const t1 = performance.now();
  o.onStep?.('writing the rows (store transaction and lake Parquet)', 2, 2);
  // Reconciliation: what the speed layer said about the interval, against the exact figures.
  const speed = await o.store.speedTotals(o.from, o.to);
  const batch = totalsOf(result.rows);
  await safeWriteInterval({ store: o.store, lakeDir: o.lakeDir, from: o.from, to: o.to, rows: result.rows, runId });
  await o.store.recordDiscrepancies(o.from, o.to, runId, speed, batch);
  const t2 = performance.now();
  const { rows, ...figures } = result;
  const discrepancies = STATS_COLUMNS.map((column) => ({
    column,
    speed: BigInt(speed[column]),
    batch: BigInt(batch[column]),
  }));
  return { ...figures, runId, rows: rows.length, computeMs: t1 - t0, writeMs: t2 - t1, discrepancies };
}
