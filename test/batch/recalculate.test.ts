import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { recalculateInterval } from '../../src/batch/index.ts';
import { DEFAULT_SIMULATION, expectedStatistics, simulate } from '../../src/sim/index.ts';
import { writeLakeFromLines } from '../support/lake.ts';
import { describeRowDifference, expectedRowOf, sortRows } from '../support/speed.ts';
import { lakeHourFiles } from '../../src/lake/index.ts';

const DAY = 86_400_000;

describe('recalculateInterval', () => {
  it('equals the expected statistics exactly with every fault on, day by day, including clicks after midnight on emissions before it', async (t) => {
    const lake = join(mkdtempSync(join(tmpdir(), 'reckon-batch-')), 'lake');
    const options = { ...DEFAULT_SIMULATION, seed: 21, emissions: 30_000, durationMs: 2 * DAY };
    const sim = simulate(options);
    const expected = expectedStatistics(sim.events, options.rules);
    const events = await writeLakeFromLines(lake, sim.lines);
    const rules = options.rules;
    const minute = [];
    let acrossMidnight = 0;
    for (let day = options.start - DAY; day < options.start + 3 * DAY; day += DAY) {
      const r = await recalculateInterval({
        listHourFiles: lakeHourFiles,
        lakeDir: lake,
        from: day,
        to: day + DAY,
        rules,
      });
      minute.push(...r.rows.map(expectedRowOf));
      if (day > options.start - DAY)
        acrossMidnight += r.rows.filter((x) => x.bucketStart < day + 3_600_000 && x.clicks > 0).length;
    }
    for (const [fault, n] of Object.entries(sim.counts.faults)) assert.ok(n > 0, `fault ${fault} was injected`);
    assert.ok(acrossMidnight > 0, 'some clicks in the first hour of a day');
    const got = sortRows(minute);
    assert.ok(JSON.stringify(got) === JSON.stringify(expected.minute), describeRowDifference(expected.minute, got));
    t.diagnostic(
      `${events} events, faults ${JSON.stringify(sim.counts.faults)}; ${got.length} minute rows equal; ${acrossMidnight} rows with clicks in the first hour of a day`,
    );
  });
});
