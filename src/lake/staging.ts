/**
 * Staging rows: the events of one log partition waiting to be flushed, kept per event hour in
 * columns of Arrow's layout in shared memory (see `columns.ts`): no object per event, nothing on
 * the JavaScript heap. A flush hands each hour's columns to a Parquet thread (see `parquet.ts`).
 *
 * Two ways in, the same columns out:
 * - `addAvro` reads a Confluent-framed Avro record written with reckon's own schema straight
 *   from its bytes: varints into integer columns, strings copied byte for byte. Anything unusual
 *   (a truncated or over-long record, a long beyond 2^53, a decimal wider than 6 bytes, a
 *   negative array block) is refused before anything is staged, and the caller takes the general
 *   path instead. A string that is not ASCII is decoded as the Avro decoder decodes it (invalid
 *   UTF-8 becomes U+FFFD) and staged as the general path stages it.
 * - `add` stages a decoded event (any writer schema, through the registry's resolver).
 */
import type { Click, Emission } from '../events/index.ts';
import { Int32Column, Int64Column, type Int64Words, Utf8Column, type Utf8Values } from './columns.ts';
import { hourStartOf } from './layout.ts';

/** The two kinds of topic the lake archives. */
export type ArchivedKind = 'emission' | 'click';

/** The columns of one hour of emissions, as the Parquet thread receives them. */
export interface EmissionColumns {
  kind: 'emission';
  rows: number;
  id: Utf8Values;
  /** Event time in epoch microseconds. */
  ts: Int64Words;
  placement: Utf8Values;
  dc: Utf8Values;
  /** Offsets of each emission's offers in the two offer columns. */
  offers: Int32Array;
  offerId: Utf8Values;
  clickCostMicros: Int64Words;
  logOffset: Int64Words;
}

/** The columns of one hour of clicks, as the Parquet thread receives them. */
export interface ClickColumns {
  kind: 'click';
  rows: number;
  id: Utf8Values;
  ts: Int64Words;
  emissionId: Utf8Values;
  offerId: Utf8Values;
  userId: Utf8Values;
  ip: Utf8Values;
  dc: Utf8Values;
  logOffset: Int64Words;
}

export type HourColumns = EmissionColumns | ClickColumns;

/** Staged emissions of one hour. */
class EmissionBuilder {
  readonly id = new Utf8Column();
  readonly ts = new Int64Column();
  readonly placement = new Utf8Column();
  readonly dc = new Utf8Column(true);
  readonly offers = new Int32Column();
  readonly offerId = new Utf8Column();
  readonly clickCostMicros = new Int64Column();
  readonly logOffset = new Int64Column();

  constructor() {
    this.offers.push(0);
  }

  columns(): EmissionColumns {
    return {
      kind: 'emission',
      rows: this.id.length,
      id: this.id.view(),
      ts: this.ts.view(),
      placement: this.placement.view(),
      dc: this.dc.view(),
      offers: this.offers.view(),
      offerId: this.offerId.view(),
      clickCostMicros: this.clickCostMicros.view(),
      logOffset: this.logOffset.view(),
    };
  }
}

/** Staged clicks of one hour. */
class ClickBuilder {
  readonly id = new Utf8Column();
  readonly ts = new Int64Column();
  readonly emissionId = new Utf8Column();
  readonly offerId = new Utf8Column();
  readonly userId = new Utf8Column();
  readonly ip = new Utf8Column();
  readonly dc = new Utf8Column(true);
  readonly logOffset = new Int64Column();

  columns(): ClickColumns {
    return {
      kind: 'click',
      rows: this.id.length,
      id: this.id.view(),
      ts: this.ts.view(),
      emissionId: this.emissionId.view(),
      offerId: this.offerId.view(),
      userId: this.userId.view(),
      ip: this.ip.view(),
      dc: this.dc.view(),
      logOffset: this.logOffset.view(),
    };
  }
}

/** Rows of one event hour within a staging buffer. */
export interface HourRows {
  rows: number;
  /** The archiver's clock when the first of them was staged. */
  firstSeenAt: number;
  /** The hour's columns. */
  builder: EmissionBuilder | ClickBuilder;
}

/** Where in a Confluent frame the Avro body starts (magic byte and 4-byte schema id). */
const BODY_START = 5;
/** Offers of one emission the fast path takes (more: the general path). */
const MAX_FAST_OFFERS = 1024;

/**
 * Reads a record's Avro body into positions (phase one), so that nothing is staged unless the
 * whole record is well formed. Strings are (position, length, ascii) triples.
 */
class AvroScan {
  src!: Uint8Array;
  pos = 0;
  end = 0;
  /** Strings read: start, length, 1 when ASCII. */
  readonly strings = new Int32Array(3 * (8 + MAX_FAST_OFFERS));
  stringCount = 0;
  /** Offer costs read. */
  readonly costs = new Float64Array(MAX_FAST_OFFERS);
  offerCount = 0;
  ts = 0;
  dcNull = false;

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

  string(): boolean {
    const len = this.long();
    if (!(len >= 0) || this.pos + len > this.end) return false;
    const src = this.src;
    let ascii = 1;
    for (let i = this.pos, stop = this.pos + len; i < stop; i++) {
      if ((src[i] as number) >= 0x80) {
        ascii = 0;
        break;
      }
    }
    const k = 3 * this.stringCount++;
    this.strings[k] = this.pos;
    this.strings[k + 1] = len;
    this.strings[k + 2] = ascii;
    this.pos += len;
    return true;
  }

  /** An Avro decimal of up to 6 bytes (two's complement, big-endian); NaN otherwise. */
  decimal(): number {
    const len = this.long();
    if (!(len >= 0) || len > 6 || this.pos + len > this.end) return NaN;
    const src = this.src;
    let v = 0;
    for (let i = 0; i < len; i++) v = v * 256 + (src[this.pos + i] as number);
    if (len > 0 && (src[this.pos] as number) >= 0x80) v -= 2 ** (8 * len);
    this.pos += len;
    return v;
  }

  /** Reads `strings` strings and the time after the first: the common head of both kinds. */
  start(value: Uint8Array): boolean {
    this.src = value;
    this.pos = BODY_START;
    this.end = value.length;
    this.stringCount = 0;
    this.offerCount = 0;
    if (!this.string()) return false;
    this.ts = this.long();
    return !Number.isNaN(this.ts);
  }

  nullableString(): boolean {
    const branch = this.long();
    this.dcNull = branch === 0;
    return branch === 0 || (branch === 1 && this.string());
  }

  emission(value: Uint8Array): boolean {
    if (!this.start(value) || !this.string() || !this.nullableString()) return false;
    for (;;) {
      const count = this.long();
      if (count === 0) break;
      if (!(count > 0) || this.offerCount + count > MAX_FAST_OFFERS) return false;
      for (let i = 0; i < count; i++) {
        if (!this.string()) return false;
        const cost = this.decimal();
        if (Number.isNaN(cost)) return false;
        this.costs[this.offerCount++] = cost;
      }
    }
    return this.pos === this.end;
  }

  click(value: Uint8Array): boolean {
    return (
      this.start(value) &&
      this.string() &&
      this.string() &&
      this.string() &&
      this.string() &&
      this.nullableString() &&
      this.pos === this.end
    );
  }

  /** Stages string `k` of the scan into `column`. */
  put(column: Utf8Column, k: number): void {
    const s = this.strings;
    const pos = s[3 * k] as number;
    const len = s[3 * k + 1] as number;
    if (s[3 * k + 2] === 1) column.pushBytes(this.src, pos, len);
    else
      column.pushString(
        Buffer.from(this.src.buffer, this.src.byteOffset, this.src.length).toString('utf8', pos, pos + len),
      );
  }
}

const scan = new AvroScan();

/** The events of one partition waiting for a flush, per event hour. */
export class StagingRows {
  /** Rows staged. */
  rows = 0;
  /** First and last log offset staged (offsets only grow). */
  from = -1;
  to = -1;
  /** Rows per event hour (start of the UTC hour, epoch ms). */
  readonly hours = new Map<number, HourRows>();
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
  addAvro(value: Uint8Array, offset: number, seenAt: number): boolean {
    if (this.kind === 'emission') {
      if (!scan.emission(value)) return false;
      const hour = this.hourRows(hourStartOf(scan.ts), seenAt);
      const b = hour.builder as EmissionBuilder;
      scan.put(b.id, 0);
      b.ts.push(scan.ts * 1000);
      scan.put(b.placement, 1);
      let next = 2;
      if (scan.dcNull) b.dc.pushNull();
      else scan.put(b.dc, next++);
      for (let i = 0; i < scan.offerCount; i++) {
        scan.put(b.offerId, next++);
        b.clickCostMicros.push(scan.costs[i] as number);
      }
      b.offers.push(b.offerId.length);
      b.logOffset.push(offset);
      this.counted(hour, offset);
      return true;
    }
    if (!scan.click(value)) return false;
    const hour = this.hourRows(hourStartOf(scan.ts), seenAt);
    const b = hour.builder as ClickBuilder;
    scan.put(b.id, 0);
    b.ts.push(scan.ts * 1000);
    scan.put(b.emissionId, 1);
    scan.put(b.offerId, 2);
    scan.put(b.userId, 3);
    scan.put(b.ip, 4);
    if (scan.dcNull) b.dc.pushNull();
    else scan.put(b.dc, 5);
    b.logOffset.push(offset);
    this.counted(hour, offset);
    return true;
  }

  /** Stages a decoded event (the general path). */
  add(event: Emission | Click, offset: number, seenAt: number): void {
    const hour = this.hourRows(hourStartOf(event.ts), seenAt);
    if (event.type === 'emission') {
      const b = hour.builder as EmissionBuilder;
      b.id.pushString(event.id);
      b.ts.push(event.ts * 1000);
      b.placement.pushString(event.placement);
      if (event.dc === undefined) b.dc.pushNull();
      else b.dc.pushString(event.dc);
      for (const o of event.offers) {
        b.offerId.pushString(o.offerId);
        b.clickCostMicros.pushBigInt(o.clickCost);
      }
      b.offers.push(b.offerId.length);
      b.logOffset.push(offset);
    } else {
      const b = hour.builder as ClickBuilder;
      b.id.pushString(event.id);
      b.ts.push(event.ts * 1000);
      b.emissionId.pushString(event.emissionId);
      b.offerId.pushString(event.offerId);
      b.userId.pushString(event.userId);
      b.ip.pushString(event.ip);
      if (event.dc === undefined) b.dc.pushNull();
      else b.dc.pushString(event.dc);
      b.logOffset.push(offset);
    }
    this.counted(hour, offset);
  }

  /** The staged columns of one hour. */
  columns(hour: number): HourColumns | undefined {
    return this.hours.get(hour)?.builder.columns();
  }

  private hourRows(hour: number, seenAt: number): HourRows {
    if (hour === this.lastHour) return this.lastRows as HourRows;
    let rows = this.hours.get(hour);
    if (rows === undefined) {
      rows = {
        rows: 0,
        firstSeenAt: seenAt,
        builder: this.kind === 'emission' ? new EmissionBuilder() : new ClickBuilder(),
      };
      this.hours.set(hour, rows);
    }
    this.lastHour = hour;
    this.lastRows = rows;
    return rows;
  }

  private counted(hour: HourRows, offset: number): void {
    hour.rows++;
    if (this.rows === 0) this.from = offset;
    this.to = offset;
    this.rows++;
  }
}
