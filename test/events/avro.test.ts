import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  avroType,
  CLICK_SCHEMA,
  type Click,
  decodeClick,
  decodeEmission,
  EMISSION_SCHEMA,
  type Emission,
  emissionType,
  encodeClick,
  encodeEmission,
  frameConfluent,
  MAX_PRICE_MICROS,
  MAX_TIMESTAMP_MS,
  ReckonError,
  unframeConfluent,
} from '../../src/events/index.ts';

const text = fc.string({ minLength: 1, maxLength: 40 });
const emission: fc.Arbitrary<Emission> = fc
  .record({
    id: text,
    ts: fc.integer({ min: 0, max: MAX_TIMESTAMP_MS }),
    placement: text,
    dc: fc.option(text, { nil: undefined }),
    offers: fc.array(fc.record({ offerId: text, clickCost: fc.bigInt({ min: 0n, max: MAX_PRICE_MICROS }) }), {
      minLength: 1,
      maxLength: 10,
    }),
  })
  .map(({ dc, offers, ...rest }) => {
    // fast-check builds null-prototype records; the codec returns plain objects.
    const e = { type: 'emission' as const, ...rest, offers: offers.map((o) => ({ ...o })) };
    return dc === undefined ? e : { ...e, dc };
  });
const click: fc.Arbitrary<Click> = fc
  .record({
    id: text,
    ts: fc.integer({ min: 0, max: MAX_TIMESTAMP_MS }),
    emissionId: text,
    offerId: text,
    userId: text,
    ip: fc.oneof(fc.ipV4(), fc.ipV6()),
    dc: fc.option(text, { nil: undefined }),
  })
  .map(({ dc, ...c }) => (dc === undefined ? { type: 'click' as const, ...c } : { type: 'click' as const, dc, ...c }));

describe('Avro in Confluent wire format', () => {
  it('round-trips emissions and clicks exactly, money included', () => {
    fc.assert(
      fc.property(emission, fc.integer({ min: 0, max: 0xffffffff }), (e, id) => {
        const buf = encodeEmission(id, e);
        assert.equal(buf[0], 0);
        assert.equal(buf.readUInt32BE(1), id);
        assert.deepEqual(decodeEmission(buf), e);
      }),
    );
    fc.assert(
      fc.property(click, (c) => {
        assert.deepEqual(decodeClick(encodeClick(3, c)), c);
      }),
    );
  });

  it("writes decimals as big-endian two's complement bytes, as the Avro spec says", () => {
    const e: Emission = {
      type: 'emission',
      id: 'e',
      ts: 0,
      placement: 'p',
      offers: [{ offerId: 'o', clickCost: 128n }],
    };
    const body = unframeConfluent(encodeEmission(1, e)).body;
    // Tail of the body: "o" (0x6f), bytes length 2 (zigzag 4), 0x00 0x80 (128 needs a sign byte), end of array.
    assert.deepEqual([...body.subarray(body.length - 5)], [0x6f, 4, 0x00, 0x80, 0]);
    const negative = { ...e, offers: [{ offerId: 'o', clickCost: -1n }] };
    assert.deepEqual(decodeEmission(encodeEmission(1, negative)), negative);
  });

  it('rejects frames that are not Confluent wire format with a typed error', () => {
    assert.throws(
      () => unframeConfluent(Buffer.from([0, 0, 0])),
      (e: unknown) => e instanceof ReckonError && e.code === 'RECKON_AVRO_FRAME' && /too short/.test(e.message),
    );
    assert.throws(() => unframeConfluent(Buffer.from([1, 0, 0, 0, 1, 0])), /magic byte 1/);
    assert.throws(() => frameConfluent(-1, Buffer.alloc(0)), /unsigned 32-bit/);
  });

  it('reports an unknown writer schema id as retriable', () => {
    const c: Click = {
      type: 'click',
      id: 'c',
      ts: 1,
      emissionId: 'e',
      offerId: 'o',
      userId: 'u',
      ip: '::1',
    };
    assert.throws(
      () => decodeClick(encodeClick(42, c), () => undefined),
      (e: unknown) =>
        e instanceof ReckonError && e.code === 'RECKON_AVRO_UNKNOWN_SCHEMA' && e.retriable && /42/.test(e.message),
    );
  });

  it('reads data written with an older schema (without dc) through schema resolution', () => {
    const old = avroType({
      ...CLICK_SCHEMA,
      fields: CLICK_SCHEMA.fields.filter((f) => f.name !== 'dc'),
    });
    const body = old.toBuffer({
      id: 'c',
      ts: 5,
      emissionId: 'e',
      offerId: 'o',
      userId: 'u',
      ip: '1.2.3.4',
    });
    const decoded = decodeClick(frameConfluent(9, body), (id) => (id === 9 ? old : undefined));
    assert.deepEqual(decoded, {
      type: 'click',
      id: 'c',
      ts: 5,
      emissionId: 'e',
      offerId: 'o',
      userId: 'u',
      ip: '1.2.3.4',
    });
  });

  it('keeps the decimal logical type in the registered schema', () => {
    const offer = EMISSION_SCHEMA.fields[4].type.items.fields[1].type;
    assert.deepEqual(offer, { type: 'bytes', logicalType: 'decimal', precision: 18, scale: 6 });
    assert.ok(emissionType.name?.endsWith('Emission'));
  });
});
