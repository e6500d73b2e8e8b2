import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { formatTimestamp, MAX_TIMESTAMP_MS, parseRfc3339, parseTimestamp } from '../../src/events/index.ts';

describe('timestamps', () => {
  it('parses RFC 3339 with Z or an offset into UTC ms', () => {
    assert.equal(parseTimestamp('2026-11-21T10:00:00.000Z'), Date.UTC(2026, 10, 21, 10));
    assert.equal(parseTimestamp('2026-11-21T11:00:00+01:00'), Date.UTC(2026, 10, 21, 10));
    assert.equal(parseTimestamp('2026-11-21T04:30:00.5-05:30'), Date.UTC(2026, 10, 21, 10, 0, 0, 500));
    assert.equal(parseTimestamp('2026-11-21t10:00:00.123456789z'), Date.UTC(2026, 10, 21, 10, 0, 0, 123));
    assert.equal(parseTimestamp('2024-02-29T00:00:00Z'), Date.UTC(2024, 1, 29));
  });

  it('accepts integer epoch milliseconds', () => {
    assert.equal(parseTimestamp(1_795_255_200_000), 1_795_255_200_000);
    assert.equal(parseTimestamp(0), 0);
  });

  it('rejects timestamps without a zone, impossible dates, fractions of ms and other types', () => {
    const cases: [unknown, RegExp][] = [
      ['2026-11-21T10:00:00', /RFC 3339/],
      ['2026-11-21', /RFC 3339/],
      ['2026-02-29T00:00:00Z', /day 29 does not exist/],
      ['2026-13-01T00:00:00Z', /month 13/],
      ['2026-11-21T24:00:00Z', /hour 24/],
      ['2026-11-21T10:60:00Z', /minute 60/],
      ['2026-12-31T23:59:60Z', /leap seconds/],
      ['2026-11-21T10:00:00+24:00', /offset/],
      ['1969-12-31T23:59:59Z', /outside/],
      ['0075-01-01T00:00:00Z', /outside/],
      [1.5, /integer/],
      [-1, /outside/],
      [MAX_TIMESTAMP_MS + 1, /outside/],
      [Number.NaN, /integer/],
      [null, /got null/],
      [true, /got boolean/],
      [{}, /got an object/],
    ];
    for (const [input, reason] of cases) {
      const r = parseTimestamp(input);
      assert.equal(typeof r, 'string', `expected a rejection for ${String(input)}`);
      assert.match(r as string, reason);
    }
  });

  it('round-trips every instant through formatTimestamp', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX_TIMESTAMP_MS }), (ms) => {
        assert.equal(parseRfc3339(formatTimestamp(ms)), ms);
      }),
    );
  });
});
