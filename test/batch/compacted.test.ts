/**
 * The batch's exactness over every fault of the simulator, on a lake written by the archiver
 * from a log: first on its small files (one per flush, partition and hour), then on the same
 * hours compacted. Both give the oracle's numbers.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { recalculateInterval } from '../../src/batch/index.ts';
import { Archiver, HOUR_MS } from '../../src/lake/index.ts';
import { compactSealedHours, lakeHourFiles } from '../../src/lake/compaction.ts';
import { openEmbeddedLog } from '../../src/log/index.ts';
import { DEFAULT_SIMULATION, expectedStatistics, simulate } from '../../src/sim/index.ts';
import { lakeCaughtUp, PARTITIONS, TOPICS } from '../lake/lake-support.ts';
import { appendLines, describeRowDifference, expectedRowOf, plainDecoder, sortRows } from '../support/speed.ts';
import { waitFor } from '../support/wait.ts';

const DAY = 86_400_000;

describe('recalculation on compacted hours', () => {
  it("equals the expected statistics exactly with every fault on, on the archiver's files and on the same hours compacted", async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'reckon-batch-compacted-'));
    const lakeDir = join(dir, 'lake');
    const options = { ...DEFAULT_SIMULATION, seed: 23, emissions: 8_000, durationMs: 2 * DAY };
    const sim = simulate(options);
    const expected = expectedStatistics(sim.events, options.rules);
    for (const [fault, n] of Object.entries(sim.counts.faults)) assert.ok(n > 0, `fault ${fault} was injected`);
    const log = await openEmbeddedLog({ dir: join(dir, 'log'), retentionIntervalMs: 0 });
    // Long after the simulated days: every hour is due for sealing once the lake has the log.
    const now = options.start + 5 * DAY;
    try {
      for (const topic of TOPICS) await log.createTopic({ name: topic, partitions: PARTITIONS });
      await appendLines(log, sim.lines, 500);
      const archiver = new Archiver({
        log,
        lakeDir,
        decoder: plainDecoder,
        flushIntervalMs: 20,
        flushRows: 400,
        now: () => now,
      });
      await archiver.start();
      await waitFor('the archiver to catch up', () => lakeCaughtUp(lakeDir, log), 60_000, 20);
      await archiver.flush();
      await archiver.stop();

      const hours: number[] = [];
      for (let h = options.start - DAY; h < options.start + 3 * DAY; h += HOUR_MS) hours.push(h);
      const filesPerHour = () =>
        Math.max(...hours.flatMap((h) => TOPICS.map((topic) => lakeHourFiles(lakeDir, topic, h).length)));
      const recalculated = async () => {
        const minute = [];
        for (let day = options.start - DAY; day < options.start + 3 * DAY; day += DAY) {
          const r = await recalculateInterval({
            listHourFiles: lakeHourFiles,
            lakeDir,
            from: day,
            to: day + DAY,
            rules: options.rules,
          });
          minute.push(...r.rows.map(expectedRowOf));
        }
        return sortRows(minute);
      };

      const before = filesPerHour();
      const small = await recalculated();
      assert.ok(
        JSON.stringify(small) === JSON.stringify(expected.minute),
        describeRowDifference(expected.minute, small),
      );

      // Every hour at once, the inputs removed at once: nothing but the compacted files is left.
      let compacted = 0;
      for (;;) {
        const report = await compactSealedHours(lakeDir, [...TOPICS], {
          now: () => now,
          quietMs: 0,
          maxWaitMs: 0,
          inputGraceMs: 0,
          maxHoursPerPass: 1000,
        });
        compacted += report.hours.length;
        if (report.hours.length === 0) break;
      }
      const after = filesPerHour();
      assert.ok(compacted > 0, 'hours were compacted');
      assert.ok(after <= 4 && after < before, `files per topic and hour: ${before} before, ${after} after`);
      const big = await recalculated();
      assert.ok(JSON.stringify(big) === JSON.stringify(expected.minute), describeRowDifference(expected.minute, big));
      t.diagnostic(
        `${sim.lines.length} lines, faults ${JSON.stringify(sim.counts.faults)}; ${big.length} minute rows equal on ` +
          `${before} files per topic-hour at most, and on ${after} after compacting ${compacted} topic-hours`,
      );
    } finally {
      await log.close();
    }
  });
});
