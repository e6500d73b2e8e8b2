import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { EmissionTable } from '../../src/speed/emission-table.ts';

interface Model {
  ts: number;
  placement: string;
  offers: Map<string, bigint>;
}

describe('EmissionTable', () => {
  it('finds what a Map would, through adds, trims and growth of every part (property)', () => {
    const op = fc.oneof(
      { weight: 6, arbitrary: fc.record({ kind: fc.constant('add' as const), n: fc.integer({ min: 1, max: 400 }) }) },
      {
        weight: 1,
        arbitrary: fc.record({ kind: fc.constant('trim' as const), keep: fc.integer({ min: 0, max: 300 }) }),
      },
    );
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 25 }), fc.integer({ min: 0, max: 1000 }), (ops, seed) => {
        const table = new EmissionTable();
        const model = new Map<string, Model>();
        const order: string[] = [];
        let next = 0;
        let ts = 1_000_000;
        for (const o of ops) {
          if (o.kind === 'add') {
            for (let i = 0; i < o.n; i++) {
              const id = `em-${seed}-${next++}`;
              const offers = new Map<string, bigint>();
              const count = (next * 7 + seed) % 4; // 0 to 3 offers
              for (let j = 0; j < count; j++) {
                const cost = j === 2 && next % 5 === 0 ? 2n ** 60n + BigInt(next) : BigInt(next * 10 + j);
                offers.set(`of-${(next + j * 13) % 50}`, cost);
              }
              ts += (next * 31) % 3; // mostly ascending, with ties
              const placement = `p-${next % 7}`;
              table.add(
                id,
                ts,
                placement,
                [...offers].map(([offerId, clickCost]) => ({ offerId, clickCost })),
              );
              model.set(id, { ts, placement, offers });
              order.push(id);
            }
          } else {
            // Trim to the newest `keep` (times are non-decreasing, so a horizon does that).
            const cut = Math.max(0, order.length - o.keep);
            const horizon = cut < order.length ? (model.get(order[cut] as string) as Model).ts : ts + 1;
            table.trimBefore(horizon);
            for (const id of order.splice(0, order.length)) {
              const m = model.get(id) as Model;
              if (m.ts < horizon) model.delete(id);
              else order.push(id);
            }
          }
          assert.equal(table.size, model.size);
        }
        for (let k = 0; k < next; k++) {
          const id = `em-${seed}-${k}`;
          const at = table.find(id);
          const m = model.get(id);
          if (m === undefined) {
            assert.equal(at, -1, `${id} was trimmed`);
            continue;
          }
          assert.ok(at >= 0, `${id} is retained`);
          assert.equal(table.tsAt(at), m.ts);
          assert.equal(table.placementAt(at), m.placement);
          for (const [offerId, cost] of m.offers) assert.equal(BigInt(table.offerCost(at, offerId) as number), cost);
          assert.equal(table.offerCost(at, 'of-unlisted'), undefined);
          assert.equal(table.offerCost(at, 'of-49') === undefined, !m.offers.has('of-49'));
        }
        assert.equal(table.find('em-never'), -1);
      }),
      { numRuns: 150 },
    );
  });

  it('holds a million emissions and trims them from the oldest', () => {
    const table = new EmissionTable();
    const offers = [
      { offerId: 'of-1', clickCost: 250_000n },
      { offerId: 'of-2', clickCost: 120_000n },
    ];
    for (let i = 0; i < 1_000_000; i++) table.add(`em-${i}`, i, 'home', offers);
    assert.equal(table.size, 1_000_000);
    assert.equal(table.offerCost(table.find('em-999999'), 'of-2'), 120_000);
    table.trimBefore(999_000);
    assert.equal(table.size, 1000);
    assert.equal(table.find('em-998999'), -1);
    assert.ok(table.find('em-999000') >= 0);
  });
});
