import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  dataIntervalOf,
  dueLogicalDates,
  isTick,
  logicalDatesIn,
  nextTickAfter,
  parseSchedule,
} from '../../src/scheduler/index.ts';

const at = (iso: string): number => Date.parse(iso);
const iso = (t: number): string => new Date(t).toISOString();

describe('schedules and data intervals', () => {
  it('reads the presets with Airflow data intervals: a run covers [logical date, next tick)', () => {
    const daily = parseSchedule('@daily');
    assert.deepEqual(dataIntervalOf(daily, at('2026-11-21T00:00:00Z')), {
      start: at('2026-11-21T00:00:00Z'),
      end: at('2026-11-22T00:00:00Z'),
    });
    assert.equal(iso(nextTickAfter(parseSchedule('@hourly'), at('2026-11-21T05:30:00Z'))), '2026-11-21T06:00:00.000Z');
    // 2026-11-22 is a Sunday.
    assert.equal(iso(nextTickAfter(parseSchedule('@weekly'), at('2026-11-18T12:00:00Z'))), '2026-11-22T00:00:00.000Z');
    assert.equal(iso(nextTickAfter(parseSchedule('@monthly'), at('2026-11-21T00:00:00Z'))), '2026-12-01T00:00:00.000Z');
    assert.equal(iso(nextTickAfter(parseSchedule('@yearly'), at('2026-11-21T00:00:00Z'))), '2027-01-01T00:00:00.000Z');
    // Ranges, steps, lists, names; both day fields restricted: either matches (cron's rule).
    const s = parseSchedule('*/15 9-17 1,15 * mon');
    assert.ok(isTick(s, at('2026-11-23T09:45:00Z')), 'a Monday');
    assert.ok(isTick(s, at('2026-11-15T17:00:00Z')), 'the 15th, a Sunday');
    assert.ok(!isTick(s, at('2026-11-24T09:45:00Z')), 'a Tuesday, the 24th');
    assert.ok(!isTick(s, at('2026-11-23T09:50:00Z')));
    assert.ok(isTick(parseSchedule('0 0 * * 7'), at('2026-11-22T00:00:00Z')), '7 is Sunday too');
  });

  it('finds the next tick exactly: after the given time, a tick, and no tick in between (property)', () => {
    const field = (min: number, max: number) =>
      fc.oneof(
        fc.constant('*'),
        fc.integer({ min, max }).map(String),
        fc
          .tuple(fc.integer({ min, max }), fc.integer({ min, max }))
          .map(([a, b]) => `${Math.min(a, b)}-${Math.max(a, b)}`),
        fc.integer({ min: 1, max: 7 }).map((k) => `*/${k}`),
        fc.uniqueArray(fc.integer({ min, max }), { minLength: 1, maxLength: 3 }).map((xs) => xs.join(',')),
      );
    const expression = fc
      .tuple(
        field(0, 59),
        field(0, 23),
        fc.oneof(fc.constant('*'), field(1, 28)),
        fc.constant('*'),
        fc.oneof(fc.constant('*'), field(0, 6)),
      )
      .map((parts) => parts.join(' '));
    const time = fc.integer({ min: at('2026-01-01T00:00:00Z'), max: at('2027-01-01T00:00:00Z') });
    fc.assert(
      fc.property(expression, time, (expr, t) => {
        const s = parseSchedule(expr);
        const next = nextTickAfter(s, t);
        assert.ok(next > t);
        assert.ok(isTick(s, next), `${iso(next)} is a tick of ${expr}`);
        if (next - t <= 35 * 86_400_000) {
          for (let m = Math.floor(t / 60_000) * 60_000 + 60_000; m < next; m += 60_000)
            assert.ok(!isTick(s, m), `${iso(m)} is a tick of ${expr} before ${iso(next)}`);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('lists the runs of a backfill and the runs due after downtime', () => {
    const hourly = parseSchedule('@hourly');
    const daily = parseSchedule('@daily');
    const from = at('2026-11-01T00:00:00Z');
    const to = at('2026-11-08T00:00:00Z');
    assert.equal(logicalDatesIn(hourly, from, to).length, 168);
    assert.deepEqual(logicalDatesIn(daily, from, to).map(iso).slice(0, 2), [
      '2026-11-01T00:00:00.000Z',
      '2026-11-02T00:00:00.000Z',
    ]);
    assert.equal(logicalDatesIn(daily, from + 1, to).length, 6, 'a range starting off a tick starts at the next');
    // Down since the 07:00 run: 08:00 and 09:00 have ended by 10:30; 10:00 has not.
    assert.deepEqual(dueLogicalDates(hourly, at('2026-11-21T10:30:00Z'), at('2026-11-21T07:00:00Z'), 0).map(iso), [
      '2026-11-21T08:00:00.000Z',
      '2026-11-21T09:00:00.000Z',
    ]);
    // Never run: from the first tick at or after `since`.
    assert.deepEqual(
      dueLogicalDates(daily, at('2026-11-23T01:00:00Z'), undefined, at('2026-11-21T00:00:00Z')).map(iso),
      ['2026-11-21T00:00:00.000Z', '2026-11-22T00:00:00.000Z'],
    );
  });

  it('refuses malformed schedules and logical dates off the schedule, naming what is wrong', () => {
    const refused = (expr: string, pattern: RegExp) =>
      assert.throws(
        () => parseSchedule(expr),
        (e: Error & { code?: string }) => {
          assert.equal(e.code, 'RECKON_SCHEDULER_BAD_SCHEDULE');
          assert.match(e.message, pattern);
          return true;
        },
      );
    refused('61 * * * *', /minute: 61 is outside 0-59/);
    refused('* * *', /expected 5 fields/);
    refused('0 0 30 2 *', /never fires/);
    refused('0 0 * * funday', /day of week: "funday" is not a number/);
    refused('*/0 * * * *', /minute: step "0"/);
    refused('0 5-3 * * *', /hour: range 5-3 runs backwards/);
    assert.throws(
      () => dataIntervalOf(parseSchedule('@daily'), at('2026-11-21T05:00:00Z')),
      /2026-11-21T05:00:00.000Z is not a tick of schedule "@daily"/,
    );
  });
});
