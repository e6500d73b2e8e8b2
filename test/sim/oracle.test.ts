import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  classifyClicks,
  type ExpectedRow,
  expectedStatistics,
  NO_PLACEMENT,
  type OracleClick,
  type OracleEmission,
  type OracleEvent,
  type OracleRules,
} from '../../src/sim/index.ts';

const T0 = Date.UTC(2026, 10, 21, 10, 0, 0);
const MIN = 60_000;
const HOUR = 3_600_000;
const RULES: OracleRules = {
  clickWindowMs: HOUR,
  maxClicksPerUserOfferHour: 10,
  ipBlocklist: ['198.51.100.0/24', '2001:db8:bad::/48', '192.0.2.9'],
};

function em(
  id: string,
  ts: number,
  offers: [string, string][] = [['of-1', '0.35']],
  placement = 'home-top',
): OracleEmission {
  return {
    type: 'emission',
    id,
    ts,
    placement,
    offers: offers.map(([offerId, clickCost]) => ({ offerId, clickCost })),
  };
}

function cl(
  id: string,
  ts: number,
  emissionId = 'em-1',
  offerId = 'of-1',
  userId = 'u-1',
  ip = '203.0.113.7',
): OracleClick {
  return { type: 'click', id, ts, emissionId, offerId, userId, ip };
}

function verdicts(events: OracleEvent[], rules = RULES): Record<string, string> {
  return Object.fromEntries(classifyClicks(events, rules).verdicts);
}

function row(rows: ExpectedRow[], bucket: number, offerId = 'of-1', placement = 'home-top'): ExpectedRow | undefined {
  const b = new Date(bucket).toISOString();
  return rows.find((r) => r.bucket === b && r.offerId === offerId && r.placement === placement);
}

describe('oracle: the statistics contract, one rule at a time', () => {
  it('counts an emission once per listed offer, in the bucket of the emission ts', () => {
    const s = expectedStatistics(
      [
        em('em-1', T0 + 30_000, [
          ['of-1', '0.35'],
          ['of-2', '1.20'],
        ]),
      ],
      RULES,
    );
    assert.equal(row(s.minute, T0, 'of-1')?.emissions, 1);
    assert.equal(row(s.minute, T0, 'of-2')?.emissions, 1);
    assert.equal(s.minute.length, 2);
  });

  it('counts a redelivered emission (same id) once', () => {
    const s = expectedStatistics([em('em-1', T0), em('em-1', T0)], RULES);
    assert.equal(row(s.day, Date.UTC(2026, 10, 21))?.emissions, 1);
  });

  it('counts a redelivered click (same id) once', () => {
    const s = expectedStatistics([em('em-1', T0), cl('cl-1', T0 + 1000), cl('cl-1', T0 + 1000)], RULES);
    assert.equal(row(s.hour, T0)?.clicks, 1);
    assert.equal(row(s.hour, T0)?.duplicateClicks, 0);
  });

  it('bills a valid click the clickCost of that offer in that emission, in the bucket of the click ts', () => {
    const events = [
      em('em-1', T0, [['of-1', '0.35']]),
      em('em-2', T0, [['of-1', '0.40']]),
      cl('cl-1', T0 + 2 * MIN, 'em-2'),
    ];
    const s = expectedStatistics(events, RULES);
    assert.deepEqual(row(s.minute, T0 + 2 * MIN), {
      bucket: new Date(T0 + 2 * MIN).toISOString(),
      offerId: 'of-1',
      placement: 'home-top',
      emissions: 0,
      clicks: 1,
      clickCost: '0.4',
      duplicateClicks: 0,
      fraudClicks: 0,
      fraudCost: '0',
      invalidClicks: 0,
    });
  });

  it('sums money exactly', () => {
    const events: OracleEvent[] = [];
    for (let i = 0; i < 10; i++)
      events.push(em(`em-${i}`, T0, [['of-1', '0.1']]), cl(`cl-${i}`, T0 + 1, `em-${i}`, 'of-1', `u-${i}`));
    assert.equal(row(expectedStatistics(events, RULES).hour, T0)?.clickCost, '1');
  });

  it('bills only the earliest of repeat clicks on one (emissionId, offerId), by ts then id', () => {
    const events = [em('em-1', T0), cl('cl-b', T0 + 5000), cl('cl-c', T0 + 1000), cl('cl-a', T0 + 5000)];
    assert.deepEqual(verdicts(events), {
      'cl-b': 'duplicate',
      'cl-c': 'billable',
      'cl-a': 'duplicate',
    });
    const tie = [em('em-1', T0), cl('cl-b', T0 + 1000), cl('cl-a', T0 + 1000)];
    assert.deepEqual(verdicts(tie), { 'cl-b': 'duplicate', 'cl-a': 'billable' });
    const s = expectedStatistics(events, RULES);
    assert.equal(row(s.hour, T0)?.duplicateClicks, 2);
    assert.equal(row(s.hour, T0)?.clickCost, '0.35');
  });

  it('makes a click on an unknown emission invalid, with placement (none)', () => {
    const s = expectedStatistics([cl('cl-1', T0, 'em-404')], RULES);
    assert.equal(row(s.minute, T0, 'of-1', NO_PLACEMENT)?.invalidClicks, 1);
  });

  it("makes a click on an offer the emission does not list invalid, with the emission's placement", () => {
    const events = [em('em-1', T0, [['of-1', '0.35']], 'search-top'), cl('cl-1', T0 + 1, 'em-1', 'of-9')];
    const s = expectedStatistics(events, RULES);
    assert.equal(row(s.minute, T0, 'of-9', 'search-top')?.invalidClicks, 1);
    assert.equal(row(s.minute, T0, 'of-9', 'search-top')?.clicks, 0);
  });

  it('makes clicks before the emission or after the window invalid; the window is inclusive at both ends', () => {
    const events = [
      em('em-1', T0),
      cl('cl-before', T0 - 1, 'em-1', 'of-1', 'u-1'),
      cl('cl-at-start', T0, 'em-1', 'of-1', 'u-2'),
      em('em-2', T0),
      cl('cl-at-end', T0 + HOUR, 'em-2', 'of-1', 'u-3'),
      em('em-3', T0),
      cl('cl-after', T0 + HOUR + 1, 'em-3', 'of-1', 'u-4'),
    ];
    assert.deepEqual(verdicts(events), {
      'cl-before': 'invalid',
      'cl-at-start': 'billable',
      'cl-at-end': 'billable',
      'cl-after': 'invalid',
    });
  });

  it('applies invalid before duplicate: an invalid first click does not make the next one a duplicate', () => {
    const events = [em('em-1', T0), cl('cl-early', T0 - 1000), cl('cl-ok', T0 + 1000)];
    assert.deepEqual(verdicts(events), { 'cl-early': 'invalid', 'cl-ok': 'billable' });
  });

  it('makes clicks after the 10th billable one by a user on an offer in one UTC hour fraud, refunding their cost', () => {
    const events: OracleEvent[] = [];
    for (let i = 0; i < 12; i++) {
      events.push(
        em(`em-${i}`, T0 + i * MIN, [['of-1', '0.5']]),
        cl(`cl-${String(i).padStart(2, '0')}`, T0 + i * MIN + 1, `em-${i}`, 'of-1', 'bot'),
      );
    }
    // A 13th in the next UTC hour starts a new count.
    events.push(em('em-next', T0 + HOUR), cl('cl-next', T0 + HOUR + 1, 'em-next', 'of-1', 'bot'));
    const v = verdicts(events);
    assert.equal(v['cl-09'], 'billable');
    assert.equal(v['cl-10'], 'fraud');
    assert.equal(v['cl-11'], 'fraud');
    assert.equal(v['cl-next'], 'billable');
    const h = row(expectedStatistics(events, RULES).hour, T0);
    assert.equal(h?.clicks, 10);
    assert.equal(h?.clickCost, '5');
    assert.equal(h?.fraudClicks, 2);
    assert.equal(h?.fraudCost, '1');
  });

  it('orders the per-user fraud count by ts then id, and counts duplicates and other offers apart', () => {
    const events: OracleEvent[] = [];
    for (let i = 0; i < 11; i++)
      events.push(
        em(`em-${i}`, T0, [
          ['of-1', '1'],
          ['of-2', '1'],
        ]),
        cl(`cl-${String.fromCharCode(107 - i)}`, T0 + 1, `em-${i}`, 'of-1', 'u'),
      );
    events.push(cl('cl-dup', T0 + 2, 'em-0', 'of-1', 'u'), cl('cl-other', T0 + 2, 'em-0', 'of-2', 'u'));
    const v = verdicts(events);
    // Same ts: the greatest id (cl-k, from em-0) is last, so it is the fraud one.
    assert.equal(v['cl-k'], 'fraud');
    assert.equal(v['cl-a'], 'billable');
    assert.equal(v['cl-dup'], 'duplicate');
    assert.equal(v['cl-other'], 'billable');
  });

  it('makes clicks from blocklisted addresses and CIDR ranges fraud; they do not use up the per-user allowance', () => {
    const events: OracleEvent[] = [
      em('em-1', T0, [
        ['of-1', '0.35'],
        ['of-2', '1'],
        ['of-3', '2'],
      ]),
      cl('cl-v4', T0 + 1, 'em-1', 'of-1', 'u-1', '198.51.100.77'),
      cl('cl-v6', T0 + 1, 'em-1', 'of-2', 'u-1', '2001:db8:bad::5'),
      cl('cl-one', T0 + 1, 'em-1', 'of-3', 'u-1', '192.0.2.9'),
    ];
    assert.deepEqual(verdicts(events), { 'cl-v4': 'fraud', 'cl-v6': 'fraud', 'cl-one': 'fraud' });
    const allowance: OracleEvent[] = [];
    for (let i = 0; i < 10; i++)
      allowance.push(em(`em-${i}`, T0), cl(`cl-${i}`, T0 + 1 + i, `em-${i}`, 'of-1', 'u', '203.0.113.1'));
    allowance.push(em('em-x', T0), cl('cl-blocked', T0, 'em-x', 'of-1', 'u', '198.51.100.1'));
    const v = verdicts(allowance);
    assert.equal(v['cl-blocked'], 'fraud');
    assert.equal(Object.values(v).filter((x) => x === 'billable').length, 10);
  });

  it('never makes a fraud click a duplicate or invalid one: each click lands in exactly one column', () => {
    const events: OracleEvent[] = [
      em('em-1', T0),
      cl('cl-1', T0 + 1, 'em-1', 'of-1', 'u', '198.51.100.1'),
      cl('cl-2', T0 + 2, 'em-1', 'of-1', 'u', '198.51.100.1'),
      cl('cl-3', T0 + 2 * HOUR, 'em-1', 'of-1', 'u', '198.51.100.1'),
    ];
    assert.deepEqual(verdicts(events), { 'cl-1': 'fraud', 'cl-2': 'duplicate', 'cl-3': 'invalid' });
    const d = row(expectedStatistics(events, RULES).day, Date.UTC(2026, 10, 21));
    assert.equal((d?.clicks ?? 0) + (d?.duplicateClicks ?? 0) + (d?.fraudClicks ?? 0) + (d?.invalidClicks ?? 0), 3);
  });

  it("counts a click after midnight on an emission before it on the click's day", () => {
    const midnight = Date.UTC(2026, 10, 22);
    const events = [em('em-1', midnight - 30_000, [['of-1', '0.35']]), cl('cl-1', midnight + 60_000)];
    const s = expectedStatistics(events, RULES);
    assert.equal(row(s.day, Date.UTC(2026, 10, 21))?.emissions, 1);
    assert.equal(row(s.day, Date.UTC(2026, 10, 21))?.clicks, 0);
    assert.equal(row(s.day, midnight)?.clicks, 1);
    assert.equal(row(s.day, midnight)?.clickCost, '0.35');
  });

  it('buckets by UTC minute, hour and day', () => {
    const events = [em('em-1', T0 + 59_999), em('em-2', T0 + 60_000), em('em-3', T0 + HOUR)];
    const s = expectedStatistics(events, RULES);
    assert.deepEqual(
      s.minute.map((r) => [r.bucket, r.emissions]),
      [
        ['2026-11-21T10:00:00.000Z', 1],
        ['2026-11-21T10:01:00.000Z', 1],
        ['2026-11-21T11:00:00.000Z', 1],
      ],
    );
    assert.deepEqual(
      s.hour.map((r) => [r.bucket, r.emissions]),
      [
        ['2026-11-21T10:00:00.000Z', 2],
        ['2026-11-21T11:00:00.000Z', 1],
      ],
    );
    assert.deepEqual(
      s.day.map((r) => [r.bucket, r.emissions]),
      [['2026-11-21T00:00:00.000Z', 3]],
    );
  });

  it('honours a configured click window and fraud limit', () => {
    const events = [em('em-1', T0), cl('cl-1', T0 + 10 * MIN), em('em-2', T0), cl('cl-2', T0 + 1, 'em-2')];
    assert.equal(verdicts(events, { ...RULES, clickWindowMs: 5 * MIN })['cl-1'], 'invalid');
    assert.deepEqual(verdicts(events, { ...RULES, maxClicksPerUserOfferHour: 1 }), {
      'cl-1': 'fraud',
      'cl-2': 'billable',
    });
  });
});
