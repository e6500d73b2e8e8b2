/**
 * Staging rows: the events of one log partition waiting to be flushed, kept per event hour as
 * newline-delimited JSON in growable byte buffers (off the JavaScript heap, no object per event).
 * A flush hands each hour's bytes to DuckDB, which reads them with its parallel JSON reader and
 * writes the hour's Parquet file (see `parquet.ts`): no native call per value, and the second
 * core does the parsing and the compression.
 *
 * Two ways in, one format out:
 * - `addAvro` transcodes a Confluent-framed Avro record written with reckon's own schema straight
 *   from its bytes: varints, strings copied byte for byte (escaped for JSON), offers as a JSON
 *   array of `{offer_id, click_cost_micros}`. Anything unusual (a truncated or over-long record,
 *   a long beyond 2^53, a decimal wider than 6 bytes, a negative array block) is refused, and the
 *   caller takes the general path instead.
 * - `add` writes a decoded event (any writer schema, through the registry's resolver).
 *
 * Both write the same bytes for the same event: strings of ASCII characters are escaped by one
 * rule (`"` and `\` with a backslash, control characters as `\u00XX`), any other string is
 * written as `JSON.stringify` writes it, after UTF-8 decoding exactly as the Avro decoder does.
 */
import type { Click, Emission } from '../events/index.ts';
import { hourStartOf } from './layout.ts';

/** The two kinds of topic the lake archives. */
export type ArchivedKind = 'emission' | 'click';

/** Columns of each kind's staging lines, as DuckDB's `read_json` reads them. */
export const STAGING_COLUMNS: Record<ArchivedKind, Readonly<Record<string, string>>> = {
  emission: {
    id: 'VARCHAR',
    ts: 'BIGINT',
    placement: 'VARCHAR',
    dc: 'VARCHAR',
    offers: 'STRUCT(offer_id VARCHAR, click_cost_micros BIGINT)[]',
    log_offset: 'BIGINT',
  },
  click: {
    id: 'VARCHAR',
    ts: 'BIGINT',
    emission_id: 'VARCHAR',
    offer_id: 'VARCHAR',
    user_id: 'VARCHAR',
    ip: 'VARCHAR',
    dc: 'VARCHAR',
    log_offset: 'BIGINT',
  },
};

/**
 * Staging lines in a list of byte chunks: a row is written whole into the last chunk, and a row
 * that does not fit starts a new chunk (nothing is ever copied to grow).
 */
export class LineBuffer {
  /** The chunk being written. */
  buf: Buffer;
  /** Bytes written to it. */
  length = 0;
  private readonly full: Buffer[] = [];

  constructor(private readonly chunkSize = 256 * 1024) {
    this.buf = Buffer.allocUnsafe(chunkSize);
  }

  /** Makes room for a row of up to `n` bytes in the chunk being written. */
  reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    if (this.length > 0) this.full.push(this.buf.subarray(0, this.length));
    this.buf = Buffer.allocUnsafe(Math.max(this.chunkSize, n));
    this.length = 0;
  }

  /** The lines written so far, in order. */
  chunks(): Buffer[] {
    return this.length > 0 ? [...this.full, this.buf.subarray(0, this.length)] : [...this.full];
  }
}

/** Rows of one event hour within a staging buffer. */
export interface HourRows {
  rows: number;
  /** The archiver's clock when the first of them was staged. */
  firstSeenAt: number;
  /** The hour's staging lines. */
  lines: LineBuffer;
}

const ascii = (s: string): Uint8Array => Buffer.from(s, 'latin1');
const HEX = ascii('0123456789abcdef');
const K_ID = ascii('{"id":');
const K_TS = ascii(',"ts":');
const K_PLACEMENT = ascii(',"placement":');
const K_DC = ascii(',"dc":');
const K_NULL = ascii('null');
const K_OFFERS = ascii(',"offers":[');
const K_OFFER_ID = ascii('{"offer_id":');
const K_COST = ascii(',"click_cost_micros":');
const K_OFFERS_END = ascii(']');
const K_EMISSION_ID = ascii(',"emission_id":');
const K_OFFER_ID_FIELD = ascii(',"offer_id":');
const K_USER_ID = ascii(',"user_id":');
const K_IP = ascii(',"ip":');
const K_LOG_OFFSET = ascii(',"log_offset":');
const K_END = ascii('}\n');

/** Bytes a row may take beyond 6 per byte of its Avro body (keys, numbers, brackets). */
const ROW_OVERHEAD = 256;
const OFFER_OVERHEAD = 64;

/**
 * Writes JSON staging lines into a {@link LineBuffer}. All writes assume room was reserved; the
 * Avro reader sets `pos` into `src`.
 */
class LineWriter {
  out!: Buffer;
  at = 0;
  src!: Buffer;
  pos = 0;
  end = 0;

  put(bytes: Uint8Array): void {
    const out = this.out;
    let at = this.at;
    for (let i = 0; i < bytes.length; i++) out[at++] = bytes[i] as number;
    this.at = at;
  }

  /** An integer (|n| < 2^53) in decimal. */
  int(n: number): void {
    const out = this.out;
    if (n < 0) {
      out[this.at++] = 0x2d;
      n = -n;
    }
    let digits = 1;
    for (let m = n; m >= 10; m = Math.floor(m / 10)) digits++;
    let at = this.at + digits;
    this.at = at;
    do {
      const q = Math.floor(n / 10);
      out[--at] = 0x30 + (n - q * 10);
      n = q;
    } while (n > 0);
  }

  /** A string of ASCII characters, escaped (the rule both paths share). */
  asciiString(s: string): void {
    const out = this.out;
    let at = this.at;
    out[at++] = 0x22;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c === 0x22 || c === 0x5c) {
        out[at++] = 0x5c;
        out[at++] = c;
      } else if (c < 0x20) {
        at = escapeControl(out, at, c);
      } else out[at++] = c;
    }
    out[at++] = 0x22;
    this.at = at;
  }

  /** Any string, as the general path writes it. */
  string(s: string): void {
    for (let i = 0; i < s.length; i++) {
      if (s.charCodeAt(i) >= 0x80) {
        this.at += this.out.write(JSON.stringify(s), this.at, 'utf8');
        return;
      }
    }
    this.asciiString(s);
  }

  // --- reading Avro from `src` at `pos` ---

  /** A zigzag varint long, or NaN when truncated or beyond 2^53. */
  long(): number {
    const src = this.src;
    let pos = this.pos;
    let n = 0;
    let scale = 1;
    for (;;) {
      if (pos >= this.end) return NaN;
      const b = src[pos++] as number;
      n += (b & 0x7f) * scale;
      if (b < 0x80) break;
      scale *= 128;
      if (scale > 2 ** 49) return NaN;
    }
    this.pos = pos;
    if (n > Number.MAX_SAFE_INTEGER) return NaN;
    return n % 2 === 1 ? -(n + 1) / 2 : n / 2;
  }

  /** An Avro string copied as a JSON string; false when truncated. */
  avroString(): boolean {
    const len = this.long();
    if (!(len >= 0) || this.pos + len > this.end) return false;
    const src = this.src;
    const out = this.out;
    const start = this.pos;
    const stop = start + len;
    let at = this.at;
    out[at++] = 0x22;
    for (let i = start; i < stop; i++) {
      const c = src[i] as number;
      if (c >= 0x80) {
        // Not ASCII: decoded as the Avro decoder decodes it, written as the general path writes it.
        this.at += out.write(JSON.stringify(src.toString('utf8', start, stop)), this.at, 'utf8');
        this.pos = stop;
        return true;
      }
      if (c === 0x22 || c === 0x5c) {
        out[at++] = 0x5c;
        out[at++] = c;
      } else if (c < 0x20) {
        at = escapeControl(out, at, c);
      } else out[at++] = c;
    }
    out[at++] = 0x22;
    this.at = at;
    this.pos = stop;
    return true;
  }

  /** An Avro decimal of up to 6 bytes (two's complement, big-endian) as an integer; false otherwise. */
  avroDecimal(): boolean {
    const len = this.long();
    if (!(len >= 0) || len > 6 || this.pos + len > this.end) return false;
    const src = this.src;
    let v = 0;
    for (let i = 0; i < len; i++) v = v * 256 + (src[this.pos + i] as number);
    if (len > 0 && (src[this.pos] as number) >= 0x80) v -= 2 ** (8 * len);
    this.pos += len;
    this.int(v);
    return true;
  }

  /** An Avro `["null", "string"]`; false when malformed. */
  avroNullableString(): boolean {
    const branch = this.long();
    if (branch === 0) {
      this.put(K_NULL);
      return true;
    }
    return branch === 1 && this.avroString();
  }
}

function escapeControl(out: Buffer, at: number, c: number): number {
  out[at++] = 0x5c;
  out[at++] = 0x75;
  out[at++] = 0x30;
  out[at++] = 0x30;
  out[at++] = HEX[c >> 4] as number;
  out[at++] = HEX[c & 15] as number;
  return at;
}

/** Where in a Confluent frame the Avro body starts (magic byte and 4-byte schema id). */
const BODY_START = 5;

/** The events of one partition waiting for a flush, per event hour. */
export class StagingRows {
  /** Rows staged. */
  rows = 0;
  /** First and last log offset staged (offsets only grow). */
  from = -1;
  to = -1;
  /** Rows per event hour (start of the UTC hour, epoch ms). */
  readonly hours = new Map<number, HourRows>();
  private readonly w = new LineWriter();
  private lastHour = NaN;
  private lastRows: HourRows | undefined;

  constructor(
    readonly kind: ArchivedKind,
    /** A name for messages. */
    readonly name: string,
  ) {}

  /**
   * Stages a Confluent-framed record written with reckon's own schema of this kind, straight from
   * its bytes. Returns false (staging nothing) when the record needs the general decoder.
   */
  addAvro(value: Buffer, offset: number, seenAt: number): boolean {
    const w = this.w;
    w.src = value;
    w.end = value.length;
    w.pos = BODY_START;
    // The id comes before the time that picks the hour: remember where it is.
    const idLen = w.long();
    if (!(idLen >= 0) || w.pos + idLen > w.end) return false;
    w.pos += idLen;
    const ts = w.long();
    if (Number.isNaN(ts)) return false;
    const afterTs = w.pos;
    const hour = this.hourRows(hourStartOf(ts), seenAt);
    const lines = hour.lines;
    // Every body byte may become 6 (an escaped control character) and every 2 an offer's keys.
    lines.reserve(ROW_OVERHEAD + (this.kind === 'emission' ? OFFER_OVERHEAD : 6) * value.length);
    w.out = lines.buf;
    w.at = lines.length;
    w.put(K_ID);
    w.pos = BODY_START;
    w.avroString();
    w.put(K_TS);
    w.int(ts);
    w.pos = afterTs;
    const ok = this.kind === 'emission' ? this.emissionRest(w) : this.clickRest(w);
    if (!ok || w.pos !== w.end) {
      this.dropIfEmpty(hour);
      return false;
    }
    w.put(K_LOG_OFFSET);
    w.int(offset);
    w.put(K_END);
    lines.length = w.at;
    this.counted(hour, offset);
    return true;
  }

  private emissionRest(w: LineWriter): boolean {
    w.put(K_PLACEMENT);
    if (!w.avroString()) return false;
    w.put(K_DC);
    if (!w.avroNullableString()) return false;
    w.put(K_OFFERS);
    let first = true;
    for (;;) {
      const count = w.long();
      if (count === 0) break;
      if (!(count > 0)) return false; // negative (sized) blocks and truncation: the general path
      for (let i = 0; i < count; i++) {
        if (!first) w.out[w.at++] = 0x2c;
        first = false;
        w.put(K_OFFER_ID);
        if (!w.avroString()) return false;
        w.put(K_COST);
        if (!w.avroDecimal()) return false;
        w.out[w.at++] = 0x7d;
      }
    }
    w.put(K_OFFERS_END);
    return true;
  }

  private clickRest(w: LineWriter): boolean {
    w.put(K_EMISSION_ID);
    if (!w.avroString()) return false;
    w.put(K_OFFER_ID_FIELD);
    if (!w.avroString()) return false;
    w.put(K_USER_ID);
    if (!w.avroString()) return false;
    w.put(K_IP);
    if (!w.avroString()) return false;
    w.put(K_DC);
    return w.avroNullableString();
  }

  /** Stages a decoded event (the general path). */
  add(event: Emission | Click, offset: number, seenAt: number): void {
    const hour = this.hourRows(hourStartOf(event.ts), seenAt);
    const lines = hour.lines;
    const w = this.w;
    let size = ROW_OVERHEAD + 6 * event.id.length;
    if (event.type === 'emission') {
      size += 6 * event.placement.length + 6 * (event.dc?.length ?? 0);
      for (const o of event.offers) size += OFFER_OVERHEAD + 6 * o.offerId.length + 24;
    } else {
      size += 6 * (event.emissionId.length + event.offerId.length + event.userId.length + event.ip.length);
      size += 6 * (event.dc?.length ?? 0);
    }
    lines.reserve(size);
    w.out = lines.buf;
    w.at = lines.length;
    w.put(K_ID);
    w.string(event.id);
    w.put(K_TS);
    w.int(event.ts);
    if (event.type === 'emission') {
      w.put(K_PLACEMENT);
      w.string(event.placement);
      w.put(K_DC);
      if (event.dc === undefined) w.put(K_NULL);
      else w.string(event.dc);
      w.put(K_OFFERS);
      for (let i = 0; i < event.offers.length; i++) {
        const o = event.offers[i] as Emission['offers'][number];
        if (i > 0) w.out[w.at++] = 0x2c;
        w.put(K_OFFER_ID);
        w.string(o.offerId);
        w.put(K_COST);
        w.at += w.out.write(String(o.clickCost), w.at, 'latin1');
        w.out[w.at++] = 0x7d;
      }
      w.put(K_OFFERS_END);
    } else {
      w.put(K_EMISSION_ID);
      w.string(event.emissionId);
      w.put(K_OFFER_ID_FIELD);
      w.string(event.offerId);
      w.put(K_USER_ID);
      w.string(event.userId);
      w.put(K_IP);
      w.string(event.ip);
      w.put(K_DC);
      if (event.dc === undefined) w.put(K_NULL);
      else w.string(event.dc);
    }
    w.put(K_LOG_OFFSET);
    w.int(offset);
    w.put(K_END);
    lines.length = w.at;
    this.counted(hour, offset);
  }

  private hourRows(hour: number, seenAt: number): HourRows {
    if (hour === this.lastHour) return this.lastRows as HourRows;
    let rows = this.hours.get(hour);
    if (rows === undefined) {
      rows = { rows: 0, firstSeenAt: seenAt, lines: new LineBuffer() };
      this.hours.set(hour, rows);
    }
    this.lastHour = hour;
    this.lastRows = rows;
    return rows;
  }

  /** An hour opened for a refused record holds nothing: forget it. */
  private dropIfEmpty(hour: HourRows): void {
    if (hour.rows > 0) return;
    for (const [h, rows] of this.hours) {
      if (rows !== hour) continue;
      this.hours.delete(h);
      this.lastHour = NaN;
      this.lastRows = undefined;
    }
  }

  private counted(hour: HourRows, offset: number): void {
    hour.rows++;
    if (this.rows === 0) this.from = offset;
    this.to = offset;
    this.rows++;
  }
}
