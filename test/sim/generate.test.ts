import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatMoney, parseEventLine, type ReckonEvent } from '../../src/events/index.ts';
import {
  DEFAULT_FAULTS,
  DEFAULT_SIMULATION,
  expectedStatistics,
  NO_FAULTS,
  type OracleEvent,
  type SimulationOptions,
  simulate,
} from '../../src/sim/index.ts';

const HOUR = 3_600_000;
const small = (overrides: Partial<SimulationOptions> = {}): SimulationOptions => ({
  ...DEFAULT_SIMULATION,
  emissions: 4000,
  ...overrides,
});
// Faults raised so that each one occurs many times in a small run.
const MANY_FAULTS = {
  ...DEFAULT_FAULTS,
  fraudBurst: 0.005,
  acrossMidnight: 0.01,
  malformed: 0.005,
  blockedIp: 0.02,
  wrongOffer: 0.02,
  unknownEmission: 0.02,
};

function parsedLines(lines: string[]): { events: ReckonEvent[]; rejected: number } {
  const events: ReckonEvent[] = [];
  let rejected = 0;
  for (const line of lines) {
    const r = parseEventLine(line);
    if (r.ok) events.push(r.event);
    else rejected++;
  }
  return { events, rejected };
}

function totals(
  rows: {
    clicks: number;
    duplicateClicks: number;
    fraudClicks: number;
    invalidClicks: number;
    emissions: number;
  }[],
) {
  const t = { emissions: 0, clicks: 0, duplicateClicks: 0, fraudClicks: 0, invalidClicks: 0 };
  for (const r of rows) for (const k of Object.keys(t) as (keyof typeof t)[]) t[k] += r[k];
  return t;
}

describe('simulator', () => {
  it('is deterministic: same seed, same lines and same expected statistics', () => {
    const a = simulate(small({ seed: 7 }));
    const b = simulate(small({ seed: 7 }));
    assert.deepEqual(a.lines, b.lines);
    assert.deepEqual(
      expectedStatistics(a.events, DEFAULT_SIMULATION.rules),
      expectedStatistics(b.events, DEFAULT_SIMULATION.rules),
    );
    assert.notDeepEqual(simulate(small({ seed: 8 })).lines.slice(0, 50), a.lines.slice(0, 50));
  });

  it('writes lines the production parser reads as exactly the events the oracle counts, malformed ones aside', () => {
    const sim = simulate(small({ seed: 3, faults: MANY_FAULTS }));
    const { events, rejected } = parsedLines(sim.lines);
    assert.equal(rejected, sim.counts.malformed);
    assert.ok(sim.counts.malformed > 0);
    assert.equal(events.length, sim.events.length);
    events.forEach((e, i) => {
      const o = sim.events[i] as OracleEvent;
      assert.equal(e.id, o.id);
      assert.equal(e.ts, o.ts, `ts of ${e.id}`);
      if (e.type === 'emission' && o.type === 'emission') {
        assert.deepEqual(
          e.offers.map((x) => [x.offerId, formatMoney(x.clickCost)]),
          o.offers.map((x) => [x.offerId, x.clickCost]),
        );
      }
    });
  });

  it('produces clean traffic with faults off: no redeliveries, no invalid, duplicate or fraud clicks', () => {
    const sim = simulate(small({ seed: 5, faults: NO_FAULTS }));
    const ids = sim.events.map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length);
    assert.equal(parsedLines(sim.lines).rejected, 0);
    const t = totals(expectedStatistics(sim.events, DEFAULT_SIMULATION.rules).day);
    assert.ok(t.clicks > 0 && t.emissions > 0);
    assert.deepEqual([t.duplicateClicks, t.fraudClicks, t.invalidClicks], [0, 0, 0]);
  });

  it('injects every fault of the contract', () => {
    const sim = simulate(small({ seed: 11, faults: MANY_FAULTS }));
    for (const [name, count] of Object.entries(sim.counts.faults)) assert.ok(count > 0, `fault ${name} never injected`);
    const events = sim.events;
    const t = totals(expectedStatistics(events, DEFAULT_SIMULATION.rules).day);
    assert.ok(t.duplicateClicks > 0, 'repeat clicks');
    assert.ok(t.invalidClicks > 0, 'invalid clicks');
    assert.ok(t.fraudClicks > 0, 'fraud clicks');

    // Redelivered duplicates: the same id on more than one line.
    const ids = events.map((e) => e.id);
    assert.equal(ids.length - new Set(ids).size, sim.counts.redeliveries);

    // Clicks that arrive before their emission.
    const seenEmission = new Set<string>();
    const emissionIds = new Set(events.filter((e) => e.type === 'emission').map((e) => e.id));
    let early = 0;
    for (const e of events) {
      if (e.type === 'emission') seenEmission.add(e.id);
      else if (emissionIds.has(e.emissionId) && !seenEmission.has(e.emissionId)) early++;
    }
    assert.ok(early > 0, 'clicks before their emission');

    // Late events: arriving after an event more than an hour newer has arrived.
    let newest = 0;
    let late = 0;
    for (const e of events) {
      if (e.ts < newest - HOUR) late++;
      newest = Math.max(newest, e.ts);
    }
    assert.ok(late > 0, 'late events');

    // Blocklisted addresses, bots above the hourly limit, and clicks across midnight.
    const clicks = events.filter((e) => e.type === 'click');
    assert.ok(
      clicks.some((c) => c.ip.startsWith('198.51.100.')),
      'blocklisted IPs',
    );
    const perBotHour = new Map<string, number>();
    for (const c of clicks) {
      const key = `${c.userId}/${c.offerId}/${Math.floor(c.ts / HOUR)}`;
      perBotHour.set(key, (perBotHour.get(key) ?? 0) + 1);
    }
    assert.ok(
      [...perBotHour.values()].some((n) => n > 10),
      'a user clicking an offer more than 10 times an hour',
    );
    const emissionTs = new Map(events.filter((e) => e.type === 'emission').map((e) => [e.id, e.ts]));
    const day = (ms: number) => Math.floor(ms / 86_400_000);
    assert.ok(
      clicks.some((c) => {
        const ts = emissionTs.get(c.emissionId);
        return ts !== undefined && day(ts) < day(c.ts) && c.ts - ts <= HOUR;
      }),
      'clicks after midnight on emissions before it',
    );
  });

  it('draws offers and placements from a skewed (zipf) popularity', () => {
    const sim = simulate(small({ seed: 2, faults: NO_FAULTS }));
    const perOffer = new Map<string, number>();
    for (const e of sim.events)
      if (e.type === 'emission') for (const o of e.offers) perOffer.set(o.offerId, (perOffer.get(o.offerId) ?? 0) + 1);
    const counts = [...perOffer.values()].sort((a, b) => b - a);
    assert.equal([...perOffer.entries()].sort((a, b) => b[1] - a[1])[0]?.[0], 'of-0');
    assert.ok((counts[0] as number) > 20 * (counts[Math.floor(counts.length / 2)] as number));
    const dcs = new Set(sim.lines.slice(0, 500).map((l) => (JSON.parse(l) as { dc?: string }).dc));
    assert.ok(dcs.size >= 3, 'several data centers');
  });
});
