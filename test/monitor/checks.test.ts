import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseMoney } from '../../src/events/index.ts';
import { businessChecks, populationStabilityIndex, robustScore, SHIFT_THRESHOLD } from '../../src/monitor/index.ts';
import { PIPELINE_POOLS, pipelineDags, Scheduler } from '../../src/scheduler/index.ts';
import { DEFAULT_SIMULATION, expectedStatistics, NO_FAULTS, simulate } from '../../src/sim/index.ts';
import { openSqliteSchedulerStore } from '../../src/store/index.ts';
import { type MinuteStats, openSqliteStatsStore } from '../../src/stats/index.ts';
import { writeLakeFromLines } from '../support/lake.ts';

const DAY = 86_400_000;
const HOUR = 3_600_000;

const money = (text: string): bigint => {
  const m = parseMoney(text);
  if (typeof m === 'string') throw new Error(m);
  return m;
};

describe('business anomaly checks', () => {
  it('scores against a robust baseline with a noise floor: a flat history does not make noise an anomaly', () => {
    assert.equal(robustScore(100, [100, 100, 100, 100, 100, 100, 100]).score, 0);
    assert.ok(Math.abs(robustScore(112, [100, 100, 100, 100, 100, 100, 100]).score) < 5, 'within Poisson noise');
    assert.ok(robustScore(0, [70, 75, 80, 72, 78, 74, 69]).score < -5, 'a drop to zero');
    assert.ok(robustScore(400, [70, 75, 80, 72, 78, 74, 69]).score > 5, 'a spike');
    assert.ok(Math.abs(robustScore(80, [70, 75, 80, 72, 78, 74, 69], true).score) < 5);
  });

  it('measures a shift of the traffic mix with the population stability index', () => {
    assert.equal(populationStabilityIndex([0.5, 0.3, 0.2], [0.5, 0.3, 0.2]), 0);
    assert.ok(populationStabilityIndex([0.52, 0.29, 0.19], [0.5, 0.3, 0.2]) < 0.01, 'noise');
    assert.ok(populationStabilityIndex([0.1, 0.3, 0.6], [0.5, 0.3, 0.2]) > SHIFT_THRESHOLD, 'a shifted mix');
  });

  it("one placement's clicks dropped for an hour raise exactly one alert, through the hourly DAG's anomaly check", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reckon-anomaly-'));
    const lake = join(dir, 'lake');
    const start = Date.UTC(2026, 10, 1);
    const day8 = start + 7 * DAY;
    const outageHour = day8 + 14 * HOUR;
    const options = {
      ...DEFAULT_SIMULATION,
      seed: 5,
      emissions: 120_000,
      start,
      durationMs: 8 * DAY,
      placements: 8,
      ctr: 0.1,
      faults: NO_FAULTS,
      clickOutage: { placement: 'home-top', from: outageHour, to: outageHour + HOUR },
    };
    const sim = simulate(options);
    const expected = expectedStatistics(sim.events, options.rules);
    await writeLakeFromLines(lake, sim.lines);
    // The archiver's seal of the last hour (the sensor's condition).
    mkdirSync(join(lake, '_state'), { recursive: true });
    const last = day8 + 23 * HOUR;
    writeFileSync(
      join(lake, '_state', 'sealed.jsonl'),
      `${JSON.stringify({ date: '2026-11-08', hour: 23, hourStartMs: last, sealedAt: Date.now(), ends: {} })}\n`,
    );
    const file = join(dir, 'reckon.sqlite');
    const stats = await openSqliteStatsStore(file);
    const store = await openSqliteSchedulerStore(file);
    try {
      // The 7 days before are exact already (as batch runs would have left them).
      for (let d = 0; d < 7; d++) {
        const from = start + d * DAY;
        const rows: MinuteStats[] = expected.minute
          .filter((r) => Date.parse(r.bucket) >= from && Date.parse(r.bucket) < from + DAY)
          .map((r) => ({
            bucketStart: Date.parse(r.bucket),
            offerId: r.offerId,
            placement: r.placement,
            emissions: r.emissions,
            clicks: r.clicks,
            clickCost: money(r.clickCost),
            duplicateClicks: r.duplicateClicks,
            fraudClicks: r.fraudClicks,
            fraudCost: money(r.fraudCost),
            invalidClicks: r.invalidClicks,
          }));
        await stats.replaceBatchInterval(from, from + DAY, rows, `history-${d}`);
      }
      const dags = pipelineDags({
        lakeDir: lake,
        stats,
        rules: options.rules,
        checks: businessChecks({ stats, store }),
        pokeIntervalMs: 10,
      });
      const scheduler = new Scheduler({ store, dags, pools: PIPELINE_POOLS, pollMs: 20 });
      const runs = await scheduler.backfill('recalculate-hourly', day8, day8 + DAY, 4);
      assert.equal(runs.length, 24);
      scheduler.start();
      try {
        const deadline = Date.now() + 120_000;
        while ((await store.listRuns({ dagId: 'recalculate-hourly', states: ['success', 'failed'] })).length < 24) {
          assert.ok(Date.now() < deadline, 'the 24 hourly runs end within 2 minutes');
          await new Promise((r) => setTimeout(r, 100));
        }
      } finally {
        await scheduler.stop();
      }
      const failed = await store.listRuns({ dagId: 'recalculate-hourly', states: ['failed'] });
      assert.deepEqual(failed, []);
      const all = await store.listAlerts();
      assert.deepEqual(
        all.filter((a) => a.kind === 'anomaly' || a.kind === 'distribution_shift').map((a) => a.kind),
        ['anomaly'],
        all.map((a) => a.message).join('\n'),
      );
      const anomalies = await store.listAlerts({ kind: 'anomaly' });
      const [alert] = anomalies;
      assert.equal(alert?.details.placement, 'home-top');
      assert.equal(alert?.details.interval, new Date(outageHour).toISOString());
      const findings = alert?.details.findings as { column: string; value: number; score: number }[];
      const clicks = findings.find((f) => f.column === 'clicks');
      assert.equal(clicks?.value, 0);
      assert.ok((clicks?.score ?? 0) < -5);
      assert.ok(!findings.some((f) => f.column === 'emissions'), 'emissions were as usual');
      // Every placement's latest scores are kept for /metrics.
      const scores = await store.anomalyScores();
      assert.ok(scores.some((s) => s.scope === 'hourly' && s.placement === 'home-top' && s.column === 'clicks'));
    } finally {
      await store.close();
      await stats.close();
    }
  });
});
