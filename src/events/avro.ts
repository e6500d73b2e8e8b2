/**
 * Avro schemas of the events and their encoding in Confluent wire format:
 * magic byte 0, the writer schema's 4-byte big-endian registry id, then the Avro body.
 */
import avro from 'avsc';
import { ReckonError } from './errors.ts';
import { type Micros, MONEY_SCALE } from './money.ts';
import type { Click, Emission } from './types.ts';

/** Avro schema of an emission (subject `emissions-value`). */
export const EMISSION_SCHEMA = {
  type: 'record',
  name: 'Emission',
  namespace: 'reckon.events',
  doc: 'A set of offers returned for display on a placement.',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'ts', type: { type: 'long', logicalType: 'timestamp-millis' } },
    { name: 'placement', type: 'string' },
    { name: 'dc', type: ['null', 'string'], default: null },
    {
      name: 'offers',
      type: {
        type: 'array',
        items: {
          type: 'record',
          name: 'Offer',
          fields: [
            { name: 'offerId', type: 'string' },
            {
              name: 'clickCost',
              type: { type: 'bytes', logicalType: 'decimal', precision: 18, scale: MONEY_SCALE },
            },
          ],
        },
      },
    },
  ],
} as const;

/** Avro schema of a click (subject `clicks-value`). */
export const CLICK_SCHEMA = {
  type: 'record',
  name: 'Click',
  namespace: 'reckon.events',
  doc: 'A user clicking one offer of one emission.',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'ts', type: { type: 'long', logicalType: 'timestamp-millis' } },
    { name: 'emissionId', type: 'string' },
    { name: 'offerId', type: 'string' },
    { name: 'userId', type: 'string' },
    { name: 'ip', type: 'string' },
    { name: 'dc', type: ['null', 'string'], default: null },
  ],
} as const;

/** Values in [-2^47, 2^47) fit 6 bytes, the most Buffer's writeIntBE handles. */
const SIX_BYTE_LIMIT = 2n ** 47n;

/**
 * Avro `decimal` (bytes, two's complement big-endian) carried as a bigint of unscaled units.
 * With scale 6 that is exactly {@link Micros}.
 */
class DecimalBigIntType extends avro.types.LogicalType {
  private readonly scale: number;

  constructor(schema: avro.Schema, opts?: unknown) {
    super(schema, opts);
    this.scale = (schema as { scale?: number }).scale ?? 0;
  }

  protected override _fromValue(buf: Buffer): bigint {
    if (buf.length === 0) return 0n;
    if (buf.length <= 6) return BigInt(buf.readIntBE(0, buf.length));
    let v = 0n;
    for (const byte of buf) v = (v << 8n) | BigInt(byte);
    const first = buf[0] as number;
    return first & 0x80 ? v - (1n << BigInt(buf.length * 8)) : v;
  }

  protected override _toValue(value: unknown): Buffer {
    if (typeof value !== 'bigint') throw new TypeError(`decimal value must be a bigint, got ${typeof value}`);
    if (value >= -SIX_BYTE_LIMIT && value < SIX_BYTE_LIMIT) {
      // Fast path (all real prices): the shortest of 1-6 bytes that holds the value and its sign.
      const n = Number(value);
      let size = 1;
      while (n < -(2 ** (8 * size - 1)) || n >= 2 ** (8 * size - 1)) size++;
      const out = Buffer.allocUnsafe(size);
      out.writeIntBE(n, 0, size);
      return out;
    }
    const bytes: number[] = [];
    let v = value;
    // Two's complement, shortest form that keeps the sign bit right.
    for (;;) {
      const byte = Number(v & 0xffn);
      bytes.unshift(byte);
      v >>= 8n;
      if ((v === 0n && (byte & 0x80) === 0) || (v === -1n && (byte & 0x80) !== 0)) break;
    }
    return Buffer.from(bytes);
  }

  protected override _resolve(type: avro.Type): ((v: Buffer) => bigint) | undefined {
    if (avro.Type.isType(type, 'logical:decimal') && (type as DecimalBigIntType).scale === this.scale) {
      return (v) => this._fromValue(v);
    }
    return undefined;
  }

  protected override _export(schema: avro.Schema): void {
    Object.assign(schema as object, { precision: 18, scale: this.scale });
  }
}

/** Builds an avsc type for a schema with reckon's logical types (decimal as bigint). */
export function avroType(schema: unknown): avro.Type {
  // A fresh options object each time: avsc keeps its name registry in it.
  return avro.Type.forSchema(schema as avro.Schema, {
    logicalTypes: { decimal: DecimalBigIntType },
  });
}

/** The Avro type of emissions. */
export const emissionType = avroType(EMISSION_SCHEMA);
/** The Avro type of clicks. */
export const clickType = avroType(CLICK_SCHEMA);

/** Confluent wire format's magic byte. */
export const CONFLUENT_MAGIC_BYTE = 0;

/** Prefixes an Avro body with Confluent's wire-format header. */
export function frameConfluent(schemaId: number, body: Buffer): Buffer {
  if (!Number.isInteger(schemaId) || schemaId < 0 || schemaId > 0xffffffff) {
    throw new ReckonError('RECKON_AVRO_SCHEMA_ID', `schema id must be an unsigned 32-bit integer, got ${schemaId}`);
  }
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = CONFLUENT_MAGIC_BYTE;
  out.writeUInt32BE(schemaId, 1);
  body.copy(out, 5);
  return out;
}

/** Splits a Confluent wire-format message into its schema id and Avro body. */
export function unframeConfluent(message: Buffer): { schemaId: number; body: Buffer } {
  if (message.length < 5) {
    throw new ReckonError(
      'RECKON_AVRO_FRAME',
      `message of ${message.length} bytes is too short for Confluent wire format (needs 5+)`,
    );
  }
  if (message[0] !== CONFLUENT_MAGIC_BYTE) {
    throw new ReckonError(
      'RECKON_AVRO_FRAME',
      `unknown magic byte ${message[0]} (Confluent wire format starts with 0)`,
    );
  }
  return { schemaId: message.readUInt32BE(1), body: message.subarray(5) };
}

interface AvroEmission {
  id: string;
  ts: number;
  placement: string;
  dc: string | null;
  offers: { offerId: string; clickCost: Micros }[];
}

interface AvroClick {
  id: string;
  ts: number;
  emissionId: string;
  offerId: string;
  userId: string;
  ip: string;
  dc: string | null;
}

/** Encodes an emission as a Confluent-framed Avro message with the given writer schema id. */
export function encodeEmission(schemaId: number, e: Emission): Buffer {
  const value: AvroEmission = {
    id: e.id,
    ts: e.ts,
    placement: e.placement,
    dc: e.dc ?? null,
    offers: e.offers,
  };
  return frameConfluent(schemaId, emissionType.toBuffer(value));
}

/** Encodes a click as a Confluent-framed Avro message with the given writer schema id. */
export function encodeClick(schemaId: number, c: Click): Buffer {
  const value: AvroClick = {
    id: c.id,
    ts: c.ts,
    emissionId: c.emissionId,
    offerId: c.offerId,
    userId: c.userId,
    ip: c.ip,
    dc: c.dc ?? null,
  };
  return frameConfluent(schemaId, clickType.toBuffer(value));
}

/**
 * Finds the writer type for a schema id; returns undefined for an unknown id.
 * With schema evolution the writer type may differ from reckon's current (reader) type.
 */
export type WriterTypeLookup = (schemaId: number) => avro.Type | undefined;

/** Resolvers by reader and writer type: building one costs far more than decoding a record. */
const RESOLVERS = new WeakMap<avro.Type, WeakMap<avro.Type, avro.Resolver>>();

function decodeBody(message: Buffer, reader: avro.Type, writerOf: WriterTypeLookup | undefined): unknown {
  const { schemaId, body } = unframeConfluent(message);
  if (writerOf === undefined) return reader.fromBuffer(body);
  const writer = writerOf(schemaId);
  if (writer === undefined) {
    throw new ReckonError('RECKON_AVRO_UNKNOWN_SCHEMA', `no schema is registered with id ${schemaId}`, {
      retriable: true,
    });
  }
  if (writer === reader) return reader.fromBuffer(body);
  let byWriter = RESOLVERS.get(reader);
  if (byWriter === undefined) RESOLVERS.set(reader, (byWriter = new WeakMap()));
  let resolver = byWriter.get(writer);
  if (resolver === undefined) byWriter.set(writer, (resolver = reader.createResolver(writer)));
  return reader.fromBuffer(body, resolver);
}

/** Decodes a Confluent-framed Avro emission. Without `writerOf` the writer schema is assumed to be reckon's own. */
export function decodeEmission(message: Buffer, writerOf?: WriterTypeLookup): Emission {
  const v = decodeBody(message, emissionType, writerOf) as AvroEmission;
  const e: Emission = {
    type: 'emission',
    id: v.id,
    ts: v.ts,
    placement: v.placement,
    offers: v.offers.map((o) => ({ offerId: o.offerId, clickCost: o.clickCost })),
  };
  if (v.dc !== null) e.dc = v.dc;
  return e;
}

/** Decodes a Confluent-framed Avro click. Without `writerOf` the writer schema is assumed to be reckon's own. */
export function decodeClick(message: Buffer, writerOf?: WriterTypeLookup): Click {
  const v = decodeBody(message, clickType, writerOf) as AvroClick;
  const c: Click = {
    type: 'click',
    id: v.id,
    ts: v.ts,
    emissionId: v.emissionId,
    offerId: v.offerId,
    userId: v.userId,
    ip: v.ip,
  };
  if (v.dc !== null) c.dc = v.dc;
  return c;
}
