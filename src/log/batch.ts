/**
 * The on-disk record batch of the embedded log. One append to one partition is one batch,
 * checked by a CRC-32 over everything after the CRC field.
 *
 *   0  u32  magic "RKB1"
 *   4  u32  batch length in bytes, header included
 *   8  u32  CRC-32 of bytes [12, length)
 *  12  u32  base offset, high 32 bits
 *  16  u32  base offset, low 32 bits
 *  20  u32  record count
 *  24  f64  largest record timestamp
 *  32  records, each: f64 timestamp, i32 key length (-1: null), key, i32 value length, value,
 *      u16 header count, then per header: u16 name length, name (UTF-8), i32 value length, value
 */
import { crc32 } from 'node:zlib';
import { AvroOutput } from '../events/index.ts';
import { partitionForKeyBytes } from './murmur2.ts';
import type { EncodedBatch, HeaderValue, LogRecord, RecordInput } from './types.ts';

/** "RKB1" */
export const BATCH_MAGIC = 0x524b4231;
/** Size of the batch header. */
export const BATCH_HEADER_BYTES = 32;
const TWO_32 = 2 ** 32;
const NO_HEADERS: Readonly<Record<string, Buffer>> = Object.freeze({});

function headerBytes(headers: Record<string, HeaderValue> | undefined): number {
  let n = 2;
  if (headers === undefined) return n;
  for (const name in headers) {
    const v = headers[name] as HeaderValue;
    n += 2 + Buffer.byteLength(name) + 4 + (typeof v === 'string' ? Buffer.byteLength(v) : v.length);
  }
  return n;
}

/**
 * Writes a string key's UTF-8 bytes at `p`. Short ASCII keys (the usual ids) are copied char by
 * char, which is several times faster than Buffer#write for a dozen bytes.
 */
export function writeKey(buf: Buffer, key: string, p: number, byteLength: number): void {
  if (byteLength === key.length && byteLength <= 64) {
    for (let j = 0; j < byteLength; j++) buf[p + j] = key.charCodeAt(j);
  } else {
    buf.write(key, p, byteLength, 'utf8');
  }
}

/** UTF-8 length of a key, computed without allocating (ASCII fast path). */
export function keyByteLength(key: string): number {
  if (key.length > 64) return Buffer.byteLength(key);
  for (let j = 0; j < key.length; j++) if (key.charCodeAt(j) > 0x7f) return Buffer.byteLength(key);
  return key.length;
}

/**
 * Encodes records as one batch starting at `baseOffset`. `keyLengths[i]` is record i's key
 * length in bytes (-1 for no key), as measured when it was partitioned.
 */
export function encodeBatch(
  records: readonly RecordInput[],
  keyLengths: readonly number[],
  baseOffset: number,
  now: number,
): Buffer {
  let size = BATCH_HEADER_BYTES;
  for (let i = 0; i < records.length; i++) {
    const r = records[i] as RecordInput;
    const keyLength = keyLengths[i] as number;
    size +=
      18 +
      (keyLength < 0 ? 0 : keyLength) +
      r.value.length +
      (r.headers === undefined ? 0 : headerBytes(r.headers) - 2);
  }
  const buf = Buffer.allocUnsafe(size);
  let maxTs = 0;
  let p = BATCH_HEADER_BYTES;
  for (let i = 0; i < records.length; i++) {
    const r = records[i] as RecordInput;
    const ts = r.timestamp ?? now;
    if (ts > maxTs) maxTs = ts;
    buf.writeDoubleBE(ts, p);
    const keyLength = keyLengths[i] as number;
    buf.writeInt32BE(keyLength, p + 8);
    p += 12;
    if (keyLength > 0) {
      const key = r.key as Buffer | string;
      if (typeof key === 'string') writeKey(buf, key, p, keyLength);
      else buf.set(key, p);
      p += keyLength;
    }
    buf.writeInt32BE(r.value.length, p);
    p += 4;
    buf.set(r.value, p);
    p += r.value.length;
    const headers = r.headers;
    if (headers === undefined) {
      buf[p++] = 0;
      buf[p++] = 0;
    } else {
      const names = Object.keys(headers);
      buf.writeUInt16BE(names.length, p);
      p += 2;
      for (const name of names) {
        const v = headers[name] as HeaderValue;
        const nameLength = buf.write(name, p + 2, 'utf8');
        buf.writeUInt16BE(nameLength, p);
        p += 2 + nameLength;
        const valueLength = typeof v === 'string' ? buf.write(v, p + 4, 'utf8') : v.copy(buf, p + 4);
        buf.writeInt32BE(valueLength, p);
        p += 4 + valueLength;
      }
    }
  }
  buf.writeUInt32BE(BATCH_MAGIC, 0);
  buf.writeUInt32BE(size, 4);
  buf.writeUInt32BE(records.length, 20);
  buf.writeDoubleBE(maxTs, 24);
  stampBatch(buf, baseOffset);
  return buf;
}

/** Gives a laid-out batch its base offset and then its CRC: the last step before it is written. */
export function stampBatch(buf: Buffer, baseOffset: number): void {
  buf.writeUInt32BE(Math.floor(baseOffset / TWO_32), 12);
  buf.writeUInt32BE(baseOffset % TWO_32, 16);
  buf.writeUInt32BE(crc32(buf.subarray(12)), 8);
}

/**
 * Why an encoded batch cannot be appended as it is, or undefined when its header agrees with
 * its bytes and its record count.
 */
export function encodedBatchProblem(batch: EncodedBatch): string | undefined {
  const b = batch.bytes;
  if (b.length < BATCH_HEADER_BYTES || b.readUInt32BE(0) !== BATCH_MAGIC)
    return 'it does not start with a batch header';
  if (b.readUInt32BE(4) !== b.length) return `its header says ${b.readUInt32BE(4)} bytes, it has ${b.length}`;
  if (b.readUInt32BE(20) !== batch.count || batch.count < 1)
    return `its header says ${b.readUInt32BE(20)} records, it is given as ${batch.count}`;
  return undefined;
}

/** Copies src[start, end) to dst at `at`; short ranges by hand, which spares a view per copy. */
function copyRange(src: Uint8Array, start: number, end: number, dst: Uint8Array, at: number): void {
  if (end - start <= 256) {
    for (let i = start; i < end; i++) dst[at++] = src[i]!;
  } else {
    dst.set(src.subarray(start, end), at);
  }
}

/**
 * Lays out keyed records as one batch per partition of a topic, away from the log's writer (a
 * collector's parse thread): each record goes to the partition Kafka's partitioner gives its
 * key, in this format, so that the writer only stamps the base offset and the CRC
 * ({@link stampBatch}). The scratch space is kept from one body to the next: adding a record
 * allocates nothing.
 */
export class BatchBuilder {
  /** Per partition: its batch so far, from its header's space on; `pos` is its end. */
  private readonly scratch: AvroOutput[] = [];
  private readonly counts: number[] = [];
  private readonly maxTimestamps: number[] = [];
  private readonly keyScratch = Buffer.allocUnsafe(256);
  /** The partition of the record begun and not yet committed, or -1. */
  private open = -1;
  private openValueAt = 0;
  private openTimestamp = 0;

  constructor(readonly partitions: number) {
    for (let p = 0; p < partitions; p++) {
      const out = new AvroOutput(64 * 1024);
      out.pos = BATCH_HEADER_BYTES;
      this.scratch.push(out);
      this.counts.push(0);
      this.maxTimestamps.push(0);
    }
  }

  /** Records added since the last {@link drainTo}. */
  get count(): number {
    let n = 0;
    for (let p = 0; p < this.partitions; p++) n += this.counts[p]!;
    return n;
  }

  /** Bytes the batches of the records added so far take. */
  get byteLength(): number {
    let n = 0;
    for (let p = 0; p < this.partitions; p++) if (this.counts[p]! > 0) n += this.scratch[p]!.pos;
    return n;
  }

  /**
   * Begins a record keyed by the bytes key[keyStart, keyEnd): its value is to be written to the
   * returned output from its `pos` on (growing it with `ensure`), and then {@link commit}ted. The
   * value is written in place: nothing is copied afterwards.
   */
  begin(key: Uint8Array, keyStart: number, keyEnd: number, timestamp: number): AvroOutput {
    const keyLength = keyEnd - keyStart;
    const p = partitionForKeyBytes(key, this.partitions, keyLength, keyStart);
    const out = this.scratch[p]!;
    out.ensure(16 + keyLength);
    const buf = out.buf;
    let at = out.pos;
    buf.writeDoubleBE(timestamp, at);
    buf.writeInt32BE(keyLength, at + 8);
    at += 12;
    copyRange(key, keyStart, keyEnd, buf, at);
    at += keyLength + 4; // the value's length goes before it, once it is known
    out.pos = at;
    this.open = p;
    this.openValueAt = at;
    this.openTimestamp = timestamp;
    return out;
  }

  /** Ends the record {@link begin} started: its value is what was written since. */
  commit(): void {
    const p = this.open;
    const out = this.scratch[p]!;
    out.buf.writeInt32BE(out.pos - this.openValueAt, this.openValueAt - 4);
    out.ensure(2);
    out.buf[out.pos++] = 0; // no headers
    out.buf[out.pos++] = 0;
    this.counts[p]!++;
    if (this.openTimestamp > this.maxTimestamps[p]!) this.maxTimestamps[p] = this.openTimestamp;
    this.open = -1;
  }

  /** Adds a record keyed by the bytes key[keyStart, keyEnd), whose value is value[valueStart, valueEnd). */
  add(
    key: Uint8Array,
    keyStart: number,
    keyEnd: number,
    value: Uint8Array,
    valueStart: number,
    valueEnd: number,
    timestamp: number,
  ): void {
    const out = this.begin(key, keyStart, keyEnd, timestamp);
    out.ensure(valueEnd - valueStart);
    copyRange(value, valueStart, valueEnd, out.buf, out.pos);
    out.pos += valueEnd - valueStart;
    this.commit();
  }

  /** {@link add} with a string key (hashed and written as UTF-8). */
  addStringKey(key: string, value: Uint8Array, valueStart: number, valueEnd: number, timestamp: number): void {
    const length = keyByteLength(key);
    const bytes = length > this.keyScratch.length ? Buffer.from(key, 'utf8') : this.keyScratch;
    if (bytes === this.keyScratch) writeKey(bytes, key, 0, length);
    this.add(bytes, 0, length, value, valueStart, valueEnd, timestamp);
  }

  /**
   * Copies each non-empty partition's batch (its header filled in but for the base offset and the
   * CRC) to `into` from `at`, lists each as (partition, start, end, count) in `out`, and starts
   * over. Returns the end of what it wrote.
   */
  drainTo(into: Buffer, at: number, out: number[]): number {
    for (let p = 0; p < this.partitions; p++) {
      const count = this.counts[p]!;
      if (count === 0) continue;
      const scratch = this.scratch[p]!;
      const buf = scratch.buf;
      const size = scratch.pos;
      buf.writeUInt32BE(BATCH_MAGIC, 0);
      buf.writeUInt32BE(size, 4);
      buf.writeUInt32BE(0, 8);
      buf.writeUInt32BE(0, 12);
      buf.writeUInt32BE(0, 16);
      buf.writeUInt32BE(count, 20);
      buf.writeDoubleBE(this.maxTimestamps[p]!, 24);
      buf.copy(into, at, 0, size);
      out.push(p, at, at + size, count);
      at += size;
      this.clearPartition(p);
    }
    return at;
  }

  /** Forgets every record added since the last {@link drainTo} (their body was refused whole). */
  clear(): void {
    for (let p = 0; p < this.partitions; p++) this.clearPartition(p);
  }

  private clearPartition(p: number): void {
    this.scratch[p]!.pos = BATCH_HEADER_BYTES;
    this.counts[p] = 0;
    this.maxTimestamps[p] = 0;
  }
}

/**
 * A record read from a batch. Key and value are views into the read buffer, made when first
 * used: most consumers never look at the key, and a Buffer view costs more than the rest.
 */
class StoredRecord implements LogRecord {
  #key: Buffer | null | undefined;
  #value: Buffer | undefined;

  constructor(
    readonly partition: number,
    readonly offset: number,
    readonly timestamp: number,
    readonly headers: Readonly<Record<string, Buffer>>,
    private readonly buf: Buffer,
    private readonly keyStart: number,
    private readonly keyLength: number,
    private readonly valueStart: number,
    private readonly valueLength: number,
  ) {}

  get size(): number {
    return (this.keyLength > 0 ? this.keyLength : 0) + this.valueLength;
  }

  get key(): Buffer | null {
    if (this.#key === undefined)
      this.#key = this.keyLength < 0 ? null : this.buf.subarray(this.keyStart, this.keyStart + this.keyLength);
    return this.#key;
  }

  get value(): Buffer {
    if (this.#value === undefined) this.#value = this.buf.subarray(this.valueStart, this.valueStart + this.valueLength);
    return this.#value;
  }

  toJSON(): unknown {
    return {
      partition: this.partition,
      offset: this.offset,
      timestamp: this.timestamp,
      key: this.key,
      value: this.value,
      headers: this.headers,
    };
  }
}

/** The header of a batch found at some position. */
export interface BatchHeader {
  length: number;
  baseOffset: number;
  count: number;
  maxTimestamp: number;
}

/**
 * Reads a batch header at `pos` of `buf`. Returns undefined when fewer than a header's bytes
 * remain, and 'invalid' when the bytes there cannot be a batch header.
 */
export function readBatchHeader(buf: Buffer, pos: number): BatchHeader | 'invalid' | undefined {
  if (buf.length - pos < BATCH_HEADER_BYTES) return undefined;
  if (buf.readUInt32BE(pos) !== BATCH_MAGIC) return 'invalid';
  const length = buf.readUInt32BE(pos + 4);
  if (length < BATCH_HEADER_BYTES) return 'invalid';
  return {
    length,
    baseOffset: buf.readUInt32BE(pos + 12) * TWO_32 + buf.readUInt32BE(pos + 16),
    count: buf.readUInt32BE(pos + 20),
    maxTimestamp: buf.readDoubleBE(pos + 24),
  };
}

/** True when the batch at `pos` (whose header says `length`) passes its CRC. */
export function batchCrcOk(buf: Buffer, pos: number, length: number): boolean {
  return crc32(buf.subarray(pos + 12, pos + length)) === buf.readUInt32BE(pos + 8);
}

/**
 * Decodes the records of a CRC-checked batch at `pos`, appending those with offset >= `fromOffset`
 * to `out`. Returns false when the records do not fit the batch (corruption the CRC missed).
 */
export function decodeBatch(
  buf: Buffer,
  pos: number,
  header: BatchHeader,
  partition: number,
  fromOffset: number,
  out: LogRecord[],
): boolean {
  const end = pos + header.length;
  let p = pos + BATCH_HEADER_BYTES;
  for (let i = 0; i < header.count; i++) {
    if (p + 18 > end) return false;
    const timestamp = buf.readDoubleBE(p);
    const keyLength = buf.readInt32BE(p + 8);
    p += 12;
    const keyStart = p;
    if (keyLength > 0) p += keyLength;
    const valueLength = buf.readInt32BE(p);
    p += 4;
    if (valueLength < 0 || p + valueLength + 2 > end) return false;
    const valueStart = p;
    p += valueLength;
    const headerCount = buf.readUInt16BE(p);
    p += 2;
    let headers = NO_HEADERS;
    if (headerCount > 0) {
      const h: Record<string, Buffer> = {};
      for (let j = 0; j < headerCount; j++) {
        const nameLength = buf.readUInt16BE(p);
        const name = buf.toString('utf8', p + 2, p + 2 + nameLength);
        p += 2 + nameLength;
        const vLength = buf.readInt32BE(p);
        h[name] = buf.subarray(p + 4, p + 4 + vLength);
        p += 4 + vLength;
      }
      headers = h;
    }
    const offset = header.baseOffset + i;
    if (offset >= fromOffset)
      out.push(
        new StoredRecord(partition, offset, timestamp, headers, buf, keyStart, keyLength, valueStart, valueLength),
      );
  }
  return p === end;
}
