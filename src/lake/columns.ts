/**
 * Growable columns in Arrow's memory layout, in shared memory: staging fills them on the main
 * thread, and the Parquet thread reads the same bytes (nothing is copied to hand them over). The
 * views below are what the Parquet thread receives (see `parquet-worker.ts`).
 */

/** A UTF-8 column: `offsets[i]..offsets[i + 1]` of `data` is value i; a `validity` bit of 0 is null. */
export interface Utf8Values {
  offsets: Int32Array;
  data: Uint8Array;
  validity?: Uint8Array;
  nulls?: number;
}

/** 64-bit integers as pairs of 32-bit words (low, high), little-endian: Arrow's int64 bytes. */
export type Int64Words = Int32Array;

const TWO_32 = 4_294_967_296;

/** Shared bytes that grow fourfold (what a column copies to grow stays under a third of its size). */
class SharedBytes {
  u8: Uint8Array;
  /** A Buffer over the same memory, for `write` of strings. */
  buf: Buffer;

  constructor(capacity: number) {
    this.u8 = new Uint8Array(new SharedArrayBuffer(capacity));
    this.buf = Buffer.from(this.u8.buffer, 0, capacity);
  }

  /** Makes the capacity at least `n` bytes, keeping the first `used`. */
  ensure(n: number, used: number): void {
    if (n <= this.u8.length) return;
    let size = this.u8.length * 4;
    while (size < n) size *= 4;
    const next = new Uint8Array(new SharedArrayBuffer(size));
    next.set(this.u8.subarray(0, used));
    this.u8 = next;
    this.buf = Buffer.from(next.buffer, 0, size);
  }
}

/** A growable column of 32-bit integers. */
export class Int32Column {
  private bytes: SharedBytes;
  values: Int32Array;
  length = 0;

  constructor(capacity = 1024) {
    this.bytes = new SharedBytes(capacity * 4);
    this.values = new Int32Array(this.bytes.u8.buffer);
  }

  /** Makes room for `n` more values. */
  reserve(n: number): void {
    if (this.length + n <= this.values.length) return;
    this.bytes.ensure((this.length + n) * 4, this.length * 4);
    this.values = new Int32Array(this.bytes.u8.buffer);
  }

  push(v: number): void {
    if (this.length === this.values.length) this.reserve(1);
    this.values[this.length++] = v;
  }

  view(): Int32Array {
    return new Int32Array(this.values.buffer, 0, this.length);
  }
}

/** A growable column of 64-bit integers (each an exact JavaScript integer, |v| < 2^53). */
export class Int64Column {
  private readonly words = new Int32Column(2048);
  length = 0;

  push(v: number): void {
    const hi = Math.floor(v / TWO_32);
    const w = this.words;
    w.reserve(2);
    w.values[w.length++] = (v - hi * TWO_32) | 0;
    w.values[w.length++] = hi | 0;
    this.length++;
  }

  /** Any 64-bit integer. */
  pushBigInt(v: bigint): void {
    const w = this.words;
    w.reserve(2);
    w.values[w.length++] = Number(BigInt.asIntN(32, v));
    w.values[w.length++] = Number(BigInt.asIntN(32, v >> 32n));
    this.length++;
  }

  view(): Int64Words {
    return this.words.view();
  }
}

/** A growable UTF-8 column, nullable when asked. */
export class Utf8Column {
  private readonly bytes = new SharedBytes(64 * 1024);
  private readonly offsets = new Int32Column(1024);
  private validity: SharedBytes | undefined;
  private nulls = 0;
  /** Bytes of `data` used. */
  private used = 0;
  length = 0;

  constructor(nullable = false) {
    this.offsets.push(0);
    if (nullable) this.validity = new SharedBytes(256);
  }

  /** Appends `len` bytes of `src` from `pos`, which the caller has checked are valid UTF-8. */
  pushBytes(src: Uint8Array, pos: number, len: number): void {
    const b = this.bytes;
    if (this.used + len > b.u8.length) b.ensure(this.used + len, this.used);
    const out = b.u8;
    let at = this.used;
    if (len < 32) for (let i = 0; i < len; i++) out[at++] = src[pos + i] as number;
    else {
      out.set(src.subarray(pos, pos + len), at);
      at += len;
    }
    this.ended(at);
  }

  /** Appends a string. */
  pushString(s: string): void {
    const b = this.bytes;
    const most = s.length * 3;
    if (this.used + most > b.u8.length) b.ensure(this.used + most, this.used);
    let at = this.used;
    const out = b.u8;
    let ascii = true;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) {
        ascii = false;
        break;
      }
      out[at++] = c;
    }
    if (!ascii) at = this.used + b.buf.write(s, this.used, 'utf8');
    this.ended(at);
  }

  /** Appends a null (nullable columns only). */
  pushNull(): void {
    this.setValid(false);
    this.offsets.push(this.used);
    this.length++;
  }

  private ended(at: number): void {
    this.used = at;
    if (this.validity !== undefined) this.setValid(true);
    this.offsets.push(at);
    this.length++;
  }

  private setValid(valid: boolean): void {
    const v = this.validity as SharedBytes;
    const i = this.length;
    const byte = i >> 3;
    if (byte >= v.u8.length) v.ensure(byte + 1, v.u8.length);
    if ((i & 7) === 0) v.u8[byte] = 0;
    if (valid) v.u8[byte] = (v.u8[byte] as number) | (1 << (i & 7));
    else this.nulls++;
  }

  view(): Utf8Values {
    const out: Utf8Values = { offsets: this.offsets.view(), data: new Uint8Array(this.bytes.u8.buffer, 0, this.used) };
    if (this.validity !== undefined) {
      out.validity = new Uint8Array(this.validity.u8.buffer, 0, (this.length + 7) >> 3);
      out.nulls = this.nulls;
    }
    return out;
  }
}
