import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  type Click,
  decodeClick,
  decodeEmission,
  type Emission,
  encodeClick,
  encodeEmission,
} from '../../src/events/index.ts';
import { type HourColumns, StagingRows } from '../../src/lake/staging.ts';

/** Strings as producers may send them: ASCII, control characters, quotes, any Unicode. */
const text = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom('', '"', '\\', '\n', 'é', '😀', 'a\u0000b', 'ℝ𝕖𝕔𝕜𝕠𝕟'),
);
const ts = fc.integer({ min: 0, max: 4_102_444_800_000 });
/** Costs in micros: the fast path takes up to 6 bytes, larger ones go the general way. */
const cost = fc.oneof(
  fc.bigInt({ min: -(2n ** 47n), max: 2n ** 47n - 1n }),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
);

const emission: fc.Arbitrary<Emission> = fc
  .record({
    id: text,
    ts,
    placement: text,
    dc: fc.option(text, { nil: undefined }),
    offers: fc.array(fc.record({ offerId: text, clickCost: cost }), { maxLength: 8 }),
  })
  .map((e) => {
    const out: Emission = { type: 'emission', id: e.id, ts: e.ts, placement: e.placement, offers: e.offers };
    if (e.dc !== undefined) out.dc = e.dc;
    return out;
  });

const click: fc.Arbitrary<Click> = fc
  .record({
    id: text,
    ts,
    emissionId: text,
    offerId: text,
    userId: text,
    ip: text,
    dc: fc.option(text, { nil: undefined }),
  })
  .map((c) => {
    const { dc, ...rest } = c;
    const out: Click = { type: 'click', ...rest };
    if (dc !== undefined) out.dc = dc;
    return out;
  });

/** Every byte of every column of every hour, for comparison. */
function bytesOf(rows: StagingRows): unknown {
  const out: Record<string, unknown> = { rows: rows.rows, from: rows.from, to: rows.to };
  for (const hour of [...rows.hours.keys()].sort((a, b) => a - b)) {
    const columns = rows.columns(hour) as HourColumns;
    out[String(hour)] = Object.fromEntries(Object.entries(columns).map(([name, v]) => [name, flatten(v)]));
  }
  return out;
}

function flatten(v: unknown): unknown {
  if (ArrayBuffer.isView(v)) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex');
  if (v !== null && typeof v === 'object')
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, flatten(x)]));
  return v;
}

describe('Staging columns', () => {
  it('stage the same bytes from Avro records as from the decoded events, for generated events of both kinds', () => {
    let fast = 0;
    fc.assert(
      fc.property(fc.array(fc.oneof(emission, click), { minLength: 1, maxLength: 30 }), (events) => {
        for (const kind of ['emission', 'click'] as const) {
          const fromBytes = new StagingRows(kind, 'bytes');
          const fromEvents = new StagingRows(kind, 'events');
          let offset = 0;
          for (const e of events) {
            if (e.type !== kind) continue;
            const value = e.type === 'emission' ? encodeEmission(1, e) : encodeClick(2, e);
            const decoded = e.type === 'emission' ? decodeEmission(value) : decodeClick(value);
            if (fromBytes.addAvro(value, offset, 0)) fast++;
            else fromBytes.add(decoded, offset, 0);
            fromEvents.add(decoded, offset, 0);
            offset++;
          }
          assert.deepEqual(bytesOf(fromBytes), bytesOf(fromEvents));
        }
      }),
      { numRuns: 300 },
    );
    assert.ok(fast > 1000, `the fast path took ${fast} records`);
  });

  it('refuse a truncated or malformed record without staging any of it', () => {
    const e: Emission = {
      type: 'emission',
      id: 'e-1',
      ts: Date.UTC(2026, 10, 2, 10),
      placement: 'home',
      offers: [{ offerId: 'o-1', clickCost: 1_500_000n }],
    };
    const value = encodeEmission(1, e);
    const rows = new StagingRows('emission', 't');
    assert.equal(rows.addAvro(value, 0, 0), true);
    const before = JSON.stringify(bytesOf(rows));
    for (let cut = 5; cut < value.length; cut++) {
      assert.equal(rows.addAvro(value.subarray(0, cut), 1, 0), false, `cut at ${cut}`);
    }
    assert.equal(rows.addAvro(Buffer.concat([value, Buffer.from([0])]), 1, 0), false, 'trailing byte');
    assert.equal(JSON.stringify(bytesOf(rows)), before);
  });
});
