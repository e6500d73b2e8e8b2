import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { registerReconciliationMetrics } from '../../src/serving/index.ts';
import { openSqliteStatsStore, type StatsColumns } from '../../src/stats/index.ts';

const T = Date.UTC(2026, 10, 21);
const HOUR = 3_600_000;
const columns = (clicks: number, clickCost: bigint, invalidClicks: number): StatsColumns => ({
  emissions: 10,
  clicks,
  clickCost,
  duplicateClicks: 0,
  fraudClicks: 0,
  fraudCost: 0n,
  invalidClicks,
});

describe('reconciliation metrics', () => {
  it('show speed, batch and their difference per column for the latest reconciled interval', async () => {
    const store = await openSqliteStatsStore(join(mkdtempSync(join(tmpdir(), 'reckon-metrics-')), 'reckon.sqlite'));
    try {
      const registry = new Registry();
      registerReconciliationMetrics(registry, store, () => T + 2 * HOUR);
      assert.doesNotMatch(await registry.metrics(), /^reckon_reconciliation_speed\{/m, 'nothing reconciled yet');
      await store.recordDiscrepancies(T, T + HOUR, 'run-1', columns(1, 1n, 0), columns(2, 2n, 0));
      await store.recordDiscrepancies(
        T + HOUR,
        T + 2 * HOUR,
        'run-2',
        columns(105, 2_500_000n, 3),
        columns(100, 2_000_000n, 0),
      );
      const text = await registry.metrics();
      const value = (name: string, column?: string): string | undefined =>
        new RegExp(`^${name}${column === undefined ? '' : `\\{column="${column}"\\}`} (\\S+)$`, 'm').exec(text)?.[1];
      assert.equal(value('reckon_reconciliation_speed', 'clicks'), '105');
      assert.equal(value('reckon_reconciliation_batch', 'clicks'), '100');
      assert.equal(value('reckon_reconciliation_difference', 'clicks'), '5');
      assert.equal(value('reckon_reconciliation_relative_difference', 'clicks'), '0.05');
      // Money in currency units.
      assert.equal(value('reckon_reconciliation_difference', 'click_cost'), '0.5');
      assert.equal(value('reckon_reconciliation_relative_difference', 'click_cost'), '0.25');
      // Batch 0: a difference, but no ratio.
      assert.equal(value('reckon_reconciliation_difference', 'invalid_clicks'), '3');
      assert.equal(value('reckon_reconciliation_relative_difference', 'invalid_clicks'), undefined);
      assert.equal(value('reckon_reconciliation_interval_start_seconds'), String((T + HOUR) / 1000));
      assert.equal(value('reckon_reconciliation_interval_end_seconds'), String((T + 2 * HOUR) / 1000));
    } finally {
      await store.close();
    }
  });
});
