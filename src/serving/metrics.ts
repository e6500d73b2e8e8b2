/**
 * Reconciliation on `/metrics`: per statistics column, the speed layer's total against the batch
 * run's for the latest interval a batch run reconciled (what `GET /v1/discrepancies` lists), read
 * from the serving store at each scrape.
 */
import { Gauge, type Registry } from 'prom-client';
import type { Discrepancy, StatsStore } from '../stats/index.ts';

/** How far back a scrape looks first for the latest reconciled interval. */
const LOOKBACK_MS = 7 * 86_400_000;
const MONEY_COLUMNS = new Set(['clickCost', 'fraudCost']);

/** Snake case of a contract column, as a label value (`clickCost` -> `click_cost`). */
const labelOf = (column: string): string => column.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** A column's figure as a number: money in currency units, counts as they are. */
const figure = (column: string, micros: bigint): number =>
  MONEY_COLUMNS.has(column) ? Number(micros) / 1e6 : Number(micros);

/** The latest reconciled interval's rows (computed last; on a tie, the later interval), or none. */
function latest(rows: readonly Discrepancy[]): Discrepancy[] {
  let newest: Discrepancy | undefined;
  for (const r of rows) {
    if (
      newest === undefined ||
      r.computedAt > newest.computedAt ||
      (r.computedAt === newest.computedAt && r.from > newest.from)
    )
      newest = r;
  }
  if (newest === undefined) return [];
  const { from, to } = newest;
  return rows.filter((r) => r.from === from && r.to === to);
}

/**
 * Registers the reconciliation gauges in `registry`: `reckon_reconciliation_speed`,
 * `reckon_reconciliation_batch`, `reckon_reconciliation_difference` (speed - batch) and
 * `reckon_reconciliation_relative_difference` ((speed - batch) / batch, left out where batch is
 * 0), each by `column`, plus the interval's bounds; money columns in currency units.
 */
export function registerReconciliationMetrics(registry: Registry, store: StatsStore, now = () => Date.now()): void {
  // Recent intervals first; without any (a replay of old days), every recorded interval.
  const rows = async (): Promise<Discrepancy[]> => {
    const recent = await store.discrepancies(now() - LOOKBACK_MS, now() + 86_400_000);
    return latest(recent.length > 0 ? recent : await store.discrepancies(0, Number.MAX_SAFE_INTEGER));
  };
  const byColumn = (name: string, help: string, value: (d: Discrepancy) => number | undefined) =>
    new Gauge({
      name,
      help,
      labelNames: ['column'] as const,
      registers: [registry],
      async collect() {
        this.reset();
        for (const d of await rows()) {
          const v = value(d);
          if (v !== undefined) this.set({ column: labelOf(d.column) }, v);
        }
      },
    });
  byColumn('reckon_reconciliation_speed', 'Speed-layer total of the latest reconciled interval', (d) =>
    figure(d.column, d.speed),
  );
  byColumn('reckon_reconciliation_batch', 'Batch total (exact) of the latest reconciled interval', (d) =>
    figure(d.column, d.batch),
  );
  byColumn('reckon_reconciliation_difference', 'Speed minus batch total of the latest reconciled interval', (d) =>
    figure(d.column, d.speed - d.batch),
  );
  byColumn(
    'reckon_reconciliation_relative_difference',
    '(speed - batch) / batch of the latest reconciled interval; absent where batch is 0',
    (d) => (d.batch === 0n ? undefined : Number(d.speed - d.batch) / Number(d.batch)),
  );
  for (const [name, help, pick] of [
    [
      'reckon_reconciliation_interval_start_seconds',
      'Start of the latest reconciled interval',
      (d: Discrepancy) => d.from,
    ],
    ['reckon_reconciliation_interval_end_seconds', 'End of the latest reconciled interval', (d: Discrepancy) => d.to],
  ] as const) {
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        this.reset();
        const first = (await rows())[0];
        if (first !== undefined) this.set(pick(first) / 1000);
      },
    });
  }
}
