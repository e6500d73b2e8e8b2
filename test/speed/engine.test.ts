import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Click, type Emission, parseEventLine, parseMoney, type StatsRules } from '../../src/events/index.ts';
import { type MinuteDelta, NO_PLACEMENT, SpeedEngine } from '../../src/speed/index.ts';
import { columnsOfRows, rowAt, runOf } from '../../src/stats/run-rows.ts';
import { expectedRowOf, sortRows } from '../support/speed.ts';
import {
  DEFAULT_SIMULATION,
  type ExpectedRow,
  expectedStatistics,
  NO_FAULTS,
  type SimulationOptions,
  simulate,
} from '../../src/sim/index.ts';

const RULES: StatsRules = { clickWindowMs: 3_600_000, maxClicksPerUserOfferHour: 10, ipBlocklist: ['198.51.100.0/24'] };
const T0 = Date.UTC(2026, 10, 21, 10);

/** Sums deltas into rows of a granularity, in the oracle's row format. */
function rowsOf(deltas: MinuteDelta[], bucketMs: number): ExpectedRow[] {
  // Minute deltas moved to their hour or day, then summed per key the way the store sums them.
  const run = runOf(
    columnsOfRows(deltas.map((d) => ({ ...d, bucketStart: Math.floor(d.bucketStart / bucketMs) * bucketMs }))),
  );
  const rows = Array.from({ length: run.length }, (_, i) => rowAt(run, i));
  const out: ExpectedRow[] = [];
  for (const r of rows) {
    if (
      r.emissions === 0 &&
      r.clicks === 0 &&
      r.duplicateClicks === 0 &&
      r.fraudClicks === 0 &&
      r.invalidClicks === 0 &&
      r.clickCost === 0n &&
      r.fraudCost === 0n
    )
      continue;
    out.push(expectedRowOf(r));
  }
  return sortRows(out);
}

/** Runs the simulation's lines through an engine in arrival order. */
function run(options: SimulationOptions) {
  const sim = simulate(options);
  const rules: StatsRules = {
    clickWindowMs: options.rules.clickWindowMs,
    maxClicksPerUserOfferHour: options.rules.maxClicksPerUserOfferHour,
    ipBlocklist: options.rules.ipBlocklist,
  };
  const engine = new SpeedEngine(rules);
  const deltas: MinuteDelta[] = [];
  let n = 0;
  let peakEmissions = 0;
  for (const line of sim.lines) {
    const r = parseEventLine(line);
    if (!r.ok) continue;
    if (r.event.type === 'emission') engine.emission(r.event);
    else engine.click(r.event);
    if (++n % 1000 === 0) {
      engine.advance();
      peakEmissions = Math.max(peakEmissions, engine.state().emissions);
      for (const d of engine.drain()) deltas.push(d);
    }
  }
  engine.flush();
  for (const d of engine.drain()) deltas.push(d);
  return { sim, deltas, expected: expectedStatistics(sim.events, options.rules), peakEmissions };
}

describe('SpeedEngine', () => {
  it('equals the expected statistics exactly on clean input, every column of every row, at minute, hour and day', () => {
    const { deltas, expected, sim } = run({ ...DEFAULT_SIMULATION, seed: 3, emissions: 20_000, faults: NO_FAULTS });
    assert.ok(sim.counts.clicks > 500, `${sim.counts.clicks} clicks`);
    assert.deepEqual(rowsOf(deltas, 60_000), expected.minute);
    assert.deepEqual(rowsOf(deltas, 3_600_000), expected.hour);
    assert.deepEqual(rowsOf(deltas, 86_400_000), expected.day);
  });

  it('measures its deviation from the expected statistics per column when every fault is on', (t) => {
    const { deltas, expected, peakEmissions, sim } = run({ ...DEFAULT_SIMULATION, seed: 4, emissions: 20_000 });
    // Every deviation comes from events the engine saw too late: late deliveries (1-6 h), and
    // redeliveries or early clicks whose partner had left the state by then.
    const f = sim.counts.faults;
    const explained = f.late + f.duplicate + f.clickBeforeEmission;
    const got = rowsOf(deltas, 86_400_000);
    // Counts as numbers; money summed exactly in micros, then shown in currency units.
    const total = (rows: ExpectedRow[], column: keyof ExpectedRow): number =>
      column === 'clickCost' || column === 'fraudCost'
        ? Number(rows.reduce((s, r) => s + (parseMoney(r[column]) as bigint), 0n)) / 1e6
        : rows.reduce((s, r) => s + Number(r[column]), 0);
    const report: string[] = [];
    for (const column of [
      'emissions',
      'clicks',
      'clickCost',
      'duplicateClicks',
      'fraudClicks',
      'fraudCost',
      'invalidClicks',
    ] as const) {
      const want = total(expected.day, column);
      const have = total(got, column);
      const relative = want === 0 ? (have === 0 ? 0 : 1) : Math.abs(have - want) / want;
      report.push(`${column} ${have} vs ${want} (${(relative * 100).toFixed(2)}%)`);
      if (column !== 'clickCost' && column !== 'fraudCost')
        assert.ok(
          Math.abs(have - want) <= explained,
          `${column}: ${have} vs ${want}, more than ${explained} late events explain`,
        );
    }
    assert.ok(
      total(got, 'clicks') / total(expected.day, 'clicks') > 0.95,
      'the speed layer counts at least 95% of billable clicks',
    );
    t.diagnostic(
      `day totals, speed vs exact: ${report.join('; ')}; ${explained} late, redelivered or early events; peak retained emissions ${peakEmissions}`,
    );
  });

  const emission = (id: string, ts: number, offers: [string, bigint][] = [['of-1', 350_000n]]): Emission => ({
    type: 'emission',
    id,
    ts,
    placement: 'home',
    offers: offers.map(([offerId, clickCost]) => ({ offerId, clickCost })),
  });
  const click = (id: string, emissionId: string, ts: number, more: Partial<Click> = {}): Click => ({
    type: 'click',
    id,
    ts,
    emissionId,
    offerId: 'of-1',
    userId: 'u-1',
    ip: '203.0.113.7',
    ...more,
  });
  const totals = (engine: SpeedEngine) => {
    const [day] = rowsOf(engine.drain(), 86_400_000).filter((r) => r.placement === 'home');
    return day;
  };

  it('counts redeliveries once, joins a click that came before its emission, and retracts a billable click when an earlier one arrives', () => {
    const engine = new SpeedEngine(RULES);
    engine.click(click('c-early', 'em-1', T0 + 5_000));
    engine.emission(emission('em-1', T0));
    engine.emission(emission('em-1', T0));
    engine.click(click('c-early', 'em-1', T0 + 5_000));
    engine.click(click('c-late', 'em-1', T0 + 9_000));
    assert.deepEqual([totals(engine)?.emissions, totals(new SpeedEngine(RULES))], [1, undefined]);
    const e2 = new SpeedEngine(RULES);
    e2.emission(emission('em-2', T0));
    e2.click(click('b', 'em-2', T0 + 9_000));
    e2.click(click('a', 'em-2', T0 + 2_000));
    const r = totals(e2);
    assert.equal(r?.clicks, 1, 'the earlier click is the billable one');
    assert.equal(r?.duplicateClicks, 1);
    assert.equal(r?.clickCost, '0.35');
  });

  it('sums money exactly past 2^53 micros, and retracts it exactly', () => {
    const engine = new SpeedEngine(RULES);
    const big = 2n ** 52n + 3n; // a safe integer; two of them are not
    engine.emission(emission('em-1', T0, [['of-1', big]]));
    engine.emission(emission('em-2', T0 + 1_000, [['of-1', big - 1n]])); // the sum is odd: no double holds it
    engine.emission(emission('em-3', T0 + 2_000, [['of-1', 2n ** 60n + 1n]]));
    engine.click(click('c-1', 'em-1', T0 + 3_000));
    engine.click(click('c-2', 'em-2', T0 + 4_000, { userId: 'u-2' }));
    engine.click(click('c-4', 'em-3', T0 + 6_000, { userId: 'u-3' }));
    engine.click(click('c-3', 'em-3', T0 + 5_000, { userId: 'u-3' })); // retracts c-4's cost
    const deltas = engine.drain();
    const sum = deltas.reduce((s, d) => s + d.clickCost, 0n);
    assert.equal(sum, 2n * big - 1n + 2n ** 60n + 1n);
    for (const d of deltas) assert.equal(typeof d.clickCost, 'bigint');
  });
  it('applies the window inclusively, the blocklist and the hourly allowance as fraud, and makes clicks of unknown emissions invalid after the lateness', () => {
    const engine = new SpeedEngine(RULES, { allowedLatenessMs: 60_000 });
    engine.emission(emission('em', T0, [['of-1', 1_000_000n]]));
    engine.click(click('at-end', 'em', T0 + 3_600_000));
    engine.click(click('past-end', 'em', T0 + 3_600_001, { offerId: 'of-1', userId: 'u-2' }));
    engine.click(click('wrong-offer', 'em', T0 + 1, { offerId: 'nope' }));
    for (let i = 0; i < 12; i++) {
      engine.emission(emission(`e${i}`, T0 + i, [['of-1', 1_000_000n]]));
      engine.click(click(`u3-${i}`, `e${i}`, T0 + 100 + i, { userId: 'u-3' }));
    }
    engine.emission(emission('eb', T0, [['of-1', 1_000_000n]]));
    engine.click(click('blocked', 'eb', T0 + 50, { ip: '198.51.100.9' }));
    engine.click(click('orphan', 'never', T0 + 10));
    const before = engine.drain();
    assert.equal(before.filter((d) => d.placement === NO_PLACEMENT).length, 0, 'the orphan waits');
    engine.advance(T0 + 10 + 60_001);
    const after = engine.drain();
    const all = [...before, ...after];
    const sum = (column: 'clicks' | 'fraudClicks' | 'invalidClicks') => all.reduce((n, d) => n + d[column], 0);
    assert.equal(sum('clicks'), 1 + 10, 'at-end and the first 10 of u-3');
    assert.equal(sum('fraudClicks'), 2 + 1, 'u-3 after the 10th, and the blocklisted one');
    assert.equal(sum('invalidClicks'), 3, 'past the window, wrong offer, unknown emission');
    assert.equal(after.find((d) => d.invalidClicks === 1)?.placement, NO_PLACEMENT);
    assert.equal(
      all.reduce((n, d) => n + d.fraudCost, 0n),
      3_000_000n,
    );
  });

  it('decides a click more than the window and the lateness after its emission without it, whether or not state was trimmed', () => {
    const lateness = 60_000;
    const feed = (trim: boolean, clickFirst: boolean) => {
      const engine = new SpeedEngine(RULES, { allowedLatenessMs: lateness });
      const late = click('far', 'em', T0 + RULES.clickWindowMs + lateness + 1);
      if (clickFirst) engine.click(late);
      engine.emission(emission('em', T0));
      if (trim) engine.advance(T0 + RULES.clickWindowMs + lateness + 1);
      if (!clickFirst) engine.click(late);
      engine.advance(T0 + 3 * RULES.clickWindowMs);
      return engine.drain().filter((d) => d.invalidClicks !== 0);
    };
    const decided = feed(false, false);
    assert.deepEqual(
      decided.map((d) => [d.placement, d.invalidClicks]),
      [[NO_PLACEMENT, 1]],
    );
    assert.deepEqual(feed(true, false), decided, 'trimmed before the click arrived');
    assert.deepEqual(feed(false, true), decided, 'click before its emission');
  });

  it('gives up waiting clicks silently when advanced again to the same watermark, as a rebuild after a restart does', () => {
    const engine = new SpeedEngine(RULES, { allowedLatenessMs: 60_000 });
    engine.click(click('orphan', 'never', T0));
    engine.advance(T0 + 60_001);
    assert.equal(
      engine.drain().reduce((n, d) => n + d.invalidClicks, 0),
      1,
    );
    // A rebuilt engine replays the click, is advanced to the recorded watermark, and drops the deltas.
    const rebuilt = new SpeedEngine(RULES, { allowedLatenessMs: 60_000 });
    rebuilt.click(click('orphan', 'never', T0));
    rebuilt.advance(T0 + 60_001);
    rebuilt.drain();
    rebuilt.advance(T0 + 120_000);
    assert.deepEqual(rebuilt.drain(), [], 'nothing is decided twice');
    assert.equal(rebuilt.state().pendingClicks, 0);
  });
});
