/**
 * Copies the simulator does not make: an id delivered again with other content (another ts, in
 * another hour, another placement or offers), exact redeliveries, and clicks repeated with other
 * content. The batch finds repeated ids by their hashes and ranks every row of such a hash by id;
 * these lakes hold many of them, and the oracle (which keeps the first copy in arrival order, as
 * the lake's lowest offset does) says what the numbers are.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { recalculateInterval } from '../../src/batch/index.ts';
import { lakeHourFiles } from '../../src/lake/index.ts';
import { expectedStatistics, type OracleEvent } from '../../src/sim/index.ts';
import { writeLakeFromLines } from '../support/lake.ts';
import { describeRowDifference, expectedRowOf, sortRows } from '../support/speed.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const START = Date.UTC(2026, 10, 21);
const RULES = { clickWindowMs: HOUR, maxClicksPerUserOfferHour: 3, ipBlocklist: ['198.51.100.0/24'] };

/** A small deterministic generator (mulberry32). */
function random(seed: number): (n: number) => number {
  let a = seed;
  return (n) => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

/** Events in arrival order: every third emission id and every fifth click id comes again, half of them changed. */
function eventsWithCopies(seed: number): OracleEvent[] {
  const r = random(seed);
  const emission = (id: string): OracleEvent & { type: 'emission' } => {
    const first = r(5);
    const offers = Array.from({ length: 1 + r(3) }, (_, k) => ({
      offerId: `of-${(first + k) % 5}`,
      clickCost: `${r(3)}.${String(r(1_000_000)).padStart(6, '0')}`,
    }));
    return { type: 'emission', id, ts: START + HOUR + r(20 * HOUR), placement: `pl-${r(3)}`, offers };
  };
  const events: OracleEvent[] = [];
  const emissions: (OracleEvent & { type: 'emission' })[] = [];
  for (let i = 0; i < 600; i++) {
    const e = emission(`em-${i}`);
    emissions.push(e);
    events.push(e);
  }
  // Later copies: exact redeliveries and copies with other content (usually in another hour).
  for (let i = 0; i < 600; i += 3) {
    const copy = r(2) === 0 ? { ...(emissions[i] as OracleEvent) } : emission(`em-${i}`);
    events.push(copy);
    if (r(4) === 0) events.push(emission(`em-${i}`));
  }
  const clicks: OracleEvent[] = [];
  for (let j = 0; j < 3000; j++) {
    // A click on some copy of an emission: valid against the copy that counts or only against a surplus one.
    const copies = events.filter((e) => e.type === 'emission' && e.id === `em-${r(620)}`);
    const on = copies[r(copies.length)];
    const target = on?.type === 'emission' ? on : emission('em-unknown');
    const offer = target.offers[r(target.offers.length)]?.offerId ?? 'of-0';
    clicks.push({
      type: 'click',
      id: `cl-${j}`,
      ts: target.ts + r(HOUR + HOUR / 4) - HOUR / 8,
      emissionId: target.id,
      offerId: r(10) === 0 ? 'of-9' : offer,
      userId: `u-${r(4)}`,
      ip: r(8) === 0 ? `198.51.100.${r(50)}` : `10.0.${r(4)}.${r(50)}`,
    });
  }
  for (let j = 0; j < clicks.length; j += 5) {
    const c = clicks[j] as OracleEvent & { type: 'click' };
    clicks.push(r(2) === 0 ? { ...c } : { ...c, ts: c.ts + r(2 * HOUR), offerId: `of-${r(5)}` });
  }
  return [...events, ...clicks];
}

/** The event as a line of the edge's JSON. */
function lineOf(e: OracleEvent): string {
  return JSON.stringify({ ...e, ts: new Date(e.ts).toISOString() });
}

describe('recalculation with copies of other content', () => {
  for (const seed of [1, 2, 3]) {
    it(`equals the oracle when ids come again with other content, across hours (seed ${seed})`, async (t) => {
      const lake = join(mkdtempSync(join(tmpdir(), 'reckon-batch-copies-')), 'lake');
      const events = eventsWithCopies(seed);
      await writeLakeFromLines(lake, events.map(lineOf));
      const expected = expectedStatistics(events, RULES);
      const r = await recalculateInterval({
        listHourFiles: lakeHourFiles,
        lakeDir: lake,
        from: START,
        to: START + DAY,
        rules: RULES,
      });
      const got = sortRows(r.rows.map(expectedRowOf));
      assert.ok(JSON.stringify(got) === JSON.stringify(expected.minute), describeRowDifference(expected.minute, got));
      const firsts = new Map<string, OracleEvent>();
      let movedCopies = 0;
      for (const e of events) {
        const first = firsts.get(`${e.type}:${e.id}`);
        if (first === undefined) firsts.set(`${e.type}:${e.id}`, e);
        else if (Math.floor(first.ts / HOUR) !== Math.floor(e.ts / HOUR)) movedCopies++;
      }
      const sum = (column: 'clicks' | 'duplicateClicks' | 'fraudClicks' | 'invalidClicks') =>
        got.reduce((s, row) => s + row[column], 0);
      assert.ok(movedCopies > 50, 'copies in another hour than the first');
      for (const column of ['clicks', 'duplicateClicks', 'fraudClicks', 'invalidClicks'] as const) {
        assert.ok(sum(column) > 0, `some ${column}`);
      }
      t.diagnostic(
        `${events.length} events, ${movedCopies} copies in another hour; ${got.length} rows equal; ` +
          `clicks ${sum('clicks')}, duplicates ${sum('duplicateClicks')}, fraud ${sum('fraudClicks')}, invalid ${sum('invalidClicks')}`,
      );
    });
  }
});
