import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  describeRejection,
  eventToJsonLine,
  MAX_OFFERS,
  parseEventLine,
  validateEvent,
} from '../../src/events/index.ts';

const EMISSION = {
  type: 'emission',
  id: 'em-1',
  ts: '2026-11-21T10:00:00.000Z',
  placement: 'home-top',
  dc: 'dc1',
  offers: [
    { offerId: 'of-1', clickCost: '0.35' },
    { offerId: 'of-2', clickCost: '1.20' },
  ],
};
const CLICK = {
  type: 'click',
  id: 'cl-1',
  ts: '2026-11-21T10:00:05.120Z',
  emissionId: 'em-1',
  offerId: 'of-1',
  userId: 'u-9',
  ip: '203.0.113.7',
  dc: 'dc1',
};

function rejectionOf(value: unknown): { field: string; reason: string } {
  const r = validateEvent(value);
  assert.equal(r.ok, false, `expected a rejection for ${JSON.stringify(value)}`);
  if (r.ok) throw new Error('unreachable');
  return r;
}

/** Values that break parsers: wrong types, huge numbers, bad decimals and timestamps. */
const nasty = fc.oneof(
  fc.jsonValue(),
  fc.constantFrom(
    '1e3',
    '0.0000001',
    '-0.5',
    '1e400',
    '',
    ' ',
    'NaN',
    '2026-11-21T10:00:00',
    '2026-02-30T00:00:00Z',
    '99999-01-01T00:00:00Z',
    '2026-11-21T10:00:00+25:00',
    '999.1.1.1',
    'x'.repeat(300),
    1e308,
    -1e308,
    Number.MAX_SAFE_INTEGER + 2,
    1.5,
    -1,
    null,
    true,
    [],
    {},
  ),
);

describe('event validation', () => {
  it('accepts the events of DESIGN.md with exact money and UTC ms', () => {
    const e = validateEvent(EMISSION);
    assert.deepEqual(e, {
      ok: true,
      event: {
        type: 'emission',
        id: 'em-1',
        ts: Date.UTC(2026, 10, 21, 10),
        placement: 'home-top',
        dc: 'dc1',
        offers: [
          { offerId: 'of-1', clickCost: 350_000n },
          { offerId: 'of-2', clickCost: 1_200_000n },
        ],
      },
    });
    const c = validateEvent(CLICK);
    assert.equal(c.ok && c.event.type === 'click' && c.event.ts, Date.UTC(2026, 10, 21, 10, 0, 5, 120));
    const { dc: _dc, ...withoutDc } = CLICK;
    const d = validateEvent(withoutDc);
    assert.equal(d.ok && d.event.dc, undefined);
  });

  it('names the field in every rejection', () => {
    const cases: [unknown, string, RegExp][] = [
      [{ ...EMISSION, id: undefined }, 'id', /required/],
      [{ ...EMISSION, id: 7 }, 'id', /expected a string, got number 7/],
      [{ ...EMISSION, id: '' }, 'id', /empty/],
      [{ ...EMISSION, ts: 'yesterday' }, 'ts', /RFC 3339/],
      [{ ...EMISSION, offers: [] }, 'offers', /at least one/],
      [{ ...EMISSION, offers: 'of-1' }, 'offers', /expected an array/],
      [{ ...EMISSION, offers: new Array(MAX_OFFERS + 1).fill({ offerId: 'x', clickCost: '1' }) }, 'offers', /at most/],
      [{ ...EMISSION, offers: [{ offerId: 'of-1', clickCost: '1e3' }] }, 'offers[0].clickCost', /decimal/],
      [{ ...EMISSION, offers: [{ offerId: 'of-1', clickCost: 0.35 }] }, 'offers[0].clickCost', /decimal string/],
      [
        { ...EMISSION, offers: [EMISSION.offers[0], { offerId: 'of-1', clickCost: '2' }] },
        'offers[1].offerId',
        /twice/,
      ],
      [{ ...EMISSION, offers: [{ offerId: 'of-1', clickCost: '1', bid: 2 }] }, 'offers[0].bid', /unknown field/],
      [{ ...EMISSION, colour: 'red' }, 'colour', /unknown field/],
      [{ ...CLICK, ip: '999.1.1.1' }, 'ip', /IPv4 or IPv6/],
      [{ ...CLICK, userId: null }, 'userId', /got null/],
      [{ ...CLICK, type: 'impression' }, 'type', /"emission" or "click"/],
      [{ ...CLICK, type: undefined }, 'type', /required/],
      [[CLICK], '$', /event object, got an array/],
      ['click', '$', /event object/],
    ];
    for (const [input, field, reason] of cases) {
      const r = rejectionOf(input);
      assert.equal(r.field, field, `field for ${JSON.stringify(input)}`);
      assert.match(r.reason, reason);
    }
  });

  it('rejects unreadable JSON lines as a whole record', () => {
    const r = parseEventLine('{"type":"click",');
    assert.equal(r.ok, false);
    if (!r.ok) {
      assert.equal(r.field, '$');
      assert.match(describeRejection(r), /^\$: not valid JSON/);
    }
  });

  it('never throws on arbitrary JSON values or text', () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), fc.anything()), (value) => {
        const r = validateEvent(value);
        if (!r.ok) assert.ok(r.field.length > 0 && r.reason.length > 0);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.string(), (line) => {
        const r = parseEventLine(line);
        if (!r.ok) assert.ok(r.field.length > 0 && r.reason.length > 0);
      }),
      { numRuns: 2000 },
    );
  });

  it('rejects a bad value in any one field with that field named', () => {
    const emissionPaths = [
      'type',
      'id',
      'ts',
      'placement',
      'dc',
      'offers',
      'offers[0]',
      'offers[1].offerId',
      'offers[0].clickCost',
    ];
    const clickPaths = ['type', 'id', 'ts', 'emissionId', 'offerId', 'userId', 'ip', 'dc'];
    const mutate = (base: object, path: string, value: unknown): unknown => {
      const copy = structuredClone(base) as Record<string, unknown>;
      const m = /^offers\[(\d)\](?:\.(\w+))?$/.exec(path);
      if (m === null) copy[path] = value;
      else {
        const offers = copy.offers as Record<string, unknown>[];
        if (m[2] === undefined) offers[Number(m[1])] = value as Record<string, unknown>;
        else (offers[Number(m[1])] as Record<string, unknown>)[m[2]] = value;
      }
      return copy;
    };
    const cases = fc.oneof(
      fc.tuple(fc.constant(EMISSION as object), fc.constantFrom(...emissionPaths), nasty),
      fc.tuple(fc.constant(CLICK as object), fc.constantFrom(...clickPaths), nasty),
    );
    fc.assert(
      fc.property(cases, ([base, path, value]) => {
        const r = validateEvent(mutate(base, path, value));
        if (r.ok) return;
        // Turning an emission into a click (or back) makes the other fields the problem.
        if (path === 'type' && (value === 'click' || value === 'emission')) return;
        // Dropping the type turns every other field into noise: the type is what is named.
        if (path === 'type') assert.equal(r.field, 'type');
        else
          assert.ok(
            r.field === path || r.field.startsWith(`${path}.`) || r.field.startsWith(`${path}[`),
            `${path} -> ${r.field}`,
          );
      }),
      { numRuns: 3000 },
    );
  });

  it('serialises events back to wire JSON that validates to the same event', () => {
    const parsed = validateEvent(EMISSION);
    if (!parsed.ok) return assert.fail(describeRejection(parsed));
    const again = parseEventLine(eventToJsonLine(parsed.event));
    assert.deepEqual(again, parsed);
  });
});
