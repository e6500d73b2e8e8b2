/**
 * A single-pass JSON-to-Avro transcoder for the ingest hot path: it scans one event line's bytes
 * and writes the Confluent-framed Avro record directly, without building JSON objects.
 *
 * It is an optimisation of `parseEventLine` + `encodeEmission`/`encodeClick`, never a second
 * definition of the contract: it takes only lines it can decide cheaply (ASCII strings without
 * escapes, each field once, integer or RFC 3339 timestamps) and uses the same checks
 * (`parseTimestamp`, `parseMoney`, `isIP`, the same length limits). Anything else, valid or not,
 * is declined, and the general path decides it and words the rejection. A property test checks
 * that every line it accepts is accepted by the general path with identical bytes.
 */
import { isIP } from 'node:net';
import { MAX_TIMESTAMP_MS, parseTimestamp } from './time.ts';
import { MAX_ID_LENGTH, MAX_OFFERS } from './validate.ts';

/**
 * A transcoded event: its type, its record key (the emission id) and time, and where its bytes
 * are in the output. The transcoder reuses one for every line: read it before the next.
 */
export interface TranscodedEvent {
  type: 'emission' | 'click';
  /** The key is the ASCII text `line[keyStart, keyEnd)` of the source buffer. */
  keyStart: number;
  keyEnd: number;
  ts: number;
  /** The record is `output.subarray(start, end)` of the writer it was written to. */
  start: number;
  end: number;
}

/** A growable output buffer that records are written to back to back. */
export class AvroOutput {
  buf: Buffer;
  pos = 0;

  constructor(capacity: number) {
    this.buf = Buffer.allocUnsafe(Math.max(64, capacity));
  }

  /** Makes room for `n` more bytes; earlier records keep the buffer they were written to. */
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

// Field bits.
const F_TYPE = 1;
const F_ID = 2;
const F_TS = 4;
const F_PLACEMENT = 8;
const F_DC = 16;
const F_OFFERS = 32;
const F_EMISSION_ID = 64;
const F_OFFER_ID = 128;
const F_USER_ID = 256;
const F_IP = 512;
const EMISSION_REQUIRED = F_TYPE | F_ID | F_TS | F_PLACEMENT | F_OFFERS;
const EMISSION_ALLOWED = EMISSION_REQUIRED | F_DC;
const CLICK_REQUIRED = F_TYPE | F_ID | F_TS | F_EMISSION_ID | F_OFFER_ID | F_USER_ID | F_IP;
const CLICK_ALLOWED = CLICK_REQUIRED | F_DC;

/** Byte codes of the field names, for matching without building strings. */
const FIELD_NAMES: [number[], number][] = [
  ['type', F_TYPE],
  ['id', F_ID],
  ['ts', F_TS],
  ['placement', F_PLACEMENT],
  ['dc', F_DC],
  ['offers', F_OFFERS],
  ['emissionId', F_EMISSION_ID],
  ['offerId', F_OFFER_ID],
  ['userId', F_USER_ID],
  ['ip', F_IP],
].map(([name, bit]) => [[...Buffer.from(name as string)], bit as number]);
/** The name's bytes by its field bit. */
const FIELD_NAME_OF: number[][] = [];
for (const [name, bit] of FIELD_NAMES) FIELD_NAME_OF[bit] = name;
const OFFER_ID = [...Buffer.from('offerId')];
const OFFER_HEAD = [...Buffer.from('{"offerId":"')];
const OFFER_MIDDLE = [...Buffer.from('","clickCost":"')];
const CLICK_COST = [...Buffer.from('clickCost')];
/** The compact offer's literals as little-endian words, for comparing four bytes at a time. */
const word = (bytes: number[], at: number) => Buffer.from(bytes).readUInt32LE(at);
const HEAD_0 = word(OFFER_HEAD, 0);
const HEAD_4 = word(OFFER_HEAD, 4);
const HEAD_8 = word(OFFER_HEAD, 8);
const MIDDLE_0 = word(OFFER_MIDDLE, 0);
const MIDDLE_4 = word(OFFER_MIDDLE, 4);
const MIDDLE_8 = word(OFFER_MIDDLE, 8);
const MIDDLE_11 = word(OFFER_MIDDLE, 11);
const EMISSION = [...Buffer.from('emission')];
const CLICK = [...Buffer.from('click')];

/** True when src[a, aEnd) and src[b, bEnd) hold the same bytes. */
function sameRange(src: Buffer, a: number, aEnd: number, b: number, bEnd: number): boolean {
  if (aEnd - a !== bEnd - b) return false;
  for (let i = 0; i < aEnd - a; i++) if (src[a + i] !== src[b + i]) return false;
  return true;
}

/** True when src[s, e) holds exactly the bytes of `name`. */
function same(src: Buffer, s: number, e: number, name: number[]): boolean {
  if (e - s !== name.length) return false;
  for (let i = 0; i < name.length; i++) if (src[s + i] !== name[i]) return false;
  return true;
}

/**
 * The index of the quote that closes an ASCII string without escapes or control characters whose
 * text starts at src[from], or -1 (the string is something the transcoder does not take).
 */
function asciiStringEnd(src: Buffer, from: number, end: number): number {
  for (let i = from; i < end; i++) {
    const c = src[i]!;
    if (c === QUOTE) return i;
    if (c < 0x20 || c === BACKSLASH || c >= 0x80) return -1;
  }
  return -1;
}

/** Declines a line: the general path decides it. */
class Decline {}
const DECLINE = new Decline();

/** Transcodes event lines for fixed writer schema ids. */
export class EventTranscoder {
  private src: Buffer = Buffer.alloc(0);
  private at = 0;
  private end = 0;
  // Byte ranges of the fields' string values in src, and parsed values.
  private idS = 0;
  private idE = 0;
  private placementS = 0;
  private placementE = 0;
  private dcS = -1;
  private dcE = -1;
  private emissionIdS = 0;
  private emissionIdE = 0;
  private offerIdS = 0;
  private offerIdE = 0;
  private userIdS = 0;
  private userIdE = 0;
  private ipS = 0;
  private ipE = 0;
  private type = '';
  private ts = 0;
  private readonly offerIdStarts: number[] = [];
  private readonly offerIdEnds: number[] = [];
  private readonly offerCosts: number[] = [];
  private offerCount = 0;
  private readonly result: TranscodedEvent = { type: 'emission', keyStart: 0, keyEnd: 0, ts: 0, start: 0, end: 0 };

  constructor(private readonly ids: { emission: number; click: number }) {}

  private done(
    type: 'emission' | 'click',
    keyStart: number,
    keyEnd: number,
    start: number,
    end: number,
  ): TranscodedEvent {
    const r = this.result;
    r.type = type;
    r.keyStart = keyStart;
    r.keyEnd = keyEnd;
    r.ts = this.ts;
    r.start = start;
    r.end = end;
    return r;
  }

  /**
   * Transcodes the line `src[start, end)` into `out`, or returns undefined when the general path
   * must decide it (then nothing was written). The result is valid until the next call.
   */
  transcode(src: Buffer, start: number, end: number, out: AvroOutput): TranscodedEvent | undefined {
    return this.scan(src, start, end) === undefined ? undefined : this.write(out);
  }

  /**
   * Reads and checks the line `src[start, end)`: its event's type, key and time (not yet its
   * bytes: see {@link write}), or undefined when the general path must decide it. Knowing the key
   * before writing lets the caller pick where the record goes (its partition's batch).
   */
  scan(src: Buffer, start: number, end: number): TranscodedEvent | undefined {
    this.src = src;
    this.at = start;
    this.end = end;
    this.scanned = undefined;
    try {
      const fields = this.object();
      this.ws();
      if (this.at !== this.end) return undefined;
      if (this.type === 'emission') {
        if ((fields & EMISSION_REQUIRED) !== EMISSION_REQUIRED || (fields & ~EMISSION_ALLOWED) !== 0) return undefined;
        if ((fields & F_DC) === 0) this.dcS = -1;
        this.scanned = 'emission';
        return this.done('emission', this.idS, this.idE, 0, 0);
      }
      if (this.type === 'click') {
        if ((fields & CLICK_REQUIRED) !== CLICK_REQUIRED || (fields & ~CLICK_ALLOWED) !== 0) return undefined;
        if ((fields & F_DC) === 0) this.dcS = -1;
        const ip = src.toString('latin1', this.ipS, this.ipE);
        if (isIP(ip) === 0) return undefined;
        this.scanned = 'click';
        return this.done('click', this.emissionIdS, this.emissionIdE, 0, 0);
      }
      return undefined;
    } catch (e) {
      if (e === DECLINE) return undefined;
      throw e;
    }
  }

  /** Writes the framed Avro record of the line {@link scan} just accepted to `out`. */
  write(out: AvroOutput): TranscodedEvent {
    if (this.scanned === 'emission') return this.writeEmission(out);
    if (this.scanned === 'click') return this.writeClick(out);
    throw new Error('EventTranscoder.write: no line was accepted by scan');
  }

  private scanned: 'emission' | 'click' | undefined;

  // The scanning loops keep their position in a local and store it once: a field written per
  // byte costs a memory store per byte.
  private ws(): void {
    const s = this.src;
    const end = this.end;
    let i = this.at;
    while (i < end) {
      const c = s[i]!;
      if (c !== 0x20 && c !== 0x09 && c !== 0x0d && c !== 0x0a) break;
      i++;
    }
    this.at = i;
  }

  private expect(byte: number): void {
    this.ws();
    if (this.at >= this.end || this.src[this.at] !== byte) throw DECLINE;
    this.at++;
  }

  /** An ASCII string without escapes; sets [strS, strE) and returns nothing to avoid allocation. */
  private strS = 0;
  private strE = 0;
  private string(): void {
    this.expect(QUOTE);
    const from = this.at;
    const close = asciiStringEnd(this.src, from, this.end);
    if (close < 0) throw DECLINE;
    this.strS = from;
    this.strE = close;
    this.at = close + 1;
  }

  /** A string field value of 1 to MAX_ID_LENGTH characters. */
  private idString(): void {
    this.string();
    const n = this.strE - this.strS;
    if (n === 0 || n > MAX_ID_LENGTH) throw DECLINE;
  }

  private object(): number {
    this.expect(OPEN_BRACE);
    let fields = 0;
    this.ws();
    if (this.src[this.at] === CLOSE_BRACE) throw DECLINE;
    for (;;) {
      this.string();
      const bit = this.fieldBit(this.strS, this.strE);
      if (bit === 0 || (fields & bit) !== 0) throw DECLINE;
      fields |= bit;
      this.expect(COLON);
      this.value(bit);
      this.ws();
      const c = this.src[this.at];
      this.at++;
      if (c === CLOSE_BRACE) return fields;
      if (c !== COMMA) throw DECLINE;
    }
  }

  /** The bit of the field named by src[s, e), or 0: picked by length and first byte, then compared whole. */
  private fieldBit(s: number, e: number): number {
    const src = this.src;
    const first = src[s];
    let candidate: number;
    switch (e - s) {
      case 2:
        candidate = first === 0x69 ? (src[s + 1] === 0x64 ? F_ID : F_IP) : first === 0x74 ? F_TS : F_DC;
        break;
      case 4:
        candidate = F_TYPE;
        break;
      case 6:
        candidate = first === 0x6f ? F_OFFERS : F_USER_ID;
        break;
      case 7:
        candidate = F_OFFER_ID;
        break;
      case 9:
        candidate = F_PLACEMENT;
        break;
      case 10:
        candidate = F_EMISSION_ID;
        break;
      default:
        return 0;
    }
    return same(src, s, e, FIELD_NAME_OF[candidate]!) ? candidate : 0;
  }

  private value(bit: number): void {
    switch (bit) {
      case F_TYPE:
        this.string();
        this.type = same(this.src, this.strS, this.strE, EMISSION)
          ? 'emission'
          : same(this.src, this.strS, this.strE, CLICK)
            ? 'click'
            : '';
        return;
      case F_TS:
        this.timestamp();
        return;
      case F_OFFERS:
        this.offers();
        return;
      default:
        this.idString();
    }
    const s = this.strS;
    const e = this.strE;
    switch (bit) {
      case F_ID:
        this.idS = s;
        this.idE = e;
        break;
      case F_PLACEMENT:
        this.placementS = s;
        this.placementE = e;
        break;
      case F_DC:
        this.dcS = s;
        this.dcE = e;
        break;
      case F_EMISSION_ID:
        this.emissionIdS = s;
        this.emissionIdE = e;
        break;
      case F_OFFER_ID:
        this.offerIdS = s;
        this.offerIdE = e;
        break;
      case F_USER_ID:
        this.userIdS = s;
        this.userIdE = e;
        break;
      case F_IP:
        this.ipS = s;
        this.ipE = e;
        break;
    }
  }

  private timestamp(): void {
    this.ws();
    const s = this.src;
    let value: unknown;
    if (s[this.at] === QUOTE) {
      this.string();
      const canonical = canonicalUtcBytes(s, this.strS, this.strE);
      if (canonical >= 0) {
        this.ts = canonical;
        return;
      }
      value = s.toString('latin1', this.strS, this.strE);
    } else {
      // Plain non-negative integers only; other numbers go to the general path. Up to 15 digits
      // are exact in a double, so they are summed here as JSON.parse would read them.
      const from = this.at;
      const end = this.end;
      let i = from;
      let ms = 0;
      while (i < end) {
        const c = s[i]!;
        if (c < 0x30 || c > 0x39) break;
        ms = ms * 10 + (c - 0x30);
        i++;
      }
      this.at = i;
      const n = i - from;
      if (n === 0 || n > 15 || (n > 1 && s[from] === 0x30)) throw DECLINE;
      const c = s[i];
      if (c === 0x2e || c === 0x65 || c === 0x45) throw DECLINE;
      value = ms;
    }
    const ts = parseTimestamp(value);
    if (typeof ts === 'string') throw DECLINE;
    this.ts = ts;
  }

  private offers(): void {
    this.expect(OPEN_BRACKET);
    const starts = this.offerIdStarts;
    const ends = this.offerIdEnds;
    const costs = this.offerCosts;
    let n = 0;
    this.ws();
    if (this.src[this.at] === CLOSE_BRACKET) throw DECLINE;
    for (;;) {
      this.ws();
      let idS = -1;
      let idE = -1;
      let cost = -1;
      // Most offers come as `{"offerId":"…","clickCost":"…"}`, read here without tokenizing.
      if (this.compactOffer()) {
        idS = this.strS;
        idE = this.strE;
        cost = this.cost;
      } else this.expect(OPEN_BRACE);
      if (idS < 0)
        for (;;) {
          this.string();
          const nameS = this.strS;
          const nameE = this.strE;
          this.expect(COLON);
          if (idS < 0 && same(this.src, nameS, nameE, OFFER_ID)) {
            this.idString();
            idS = this.strS;
            idE = this.strE;
          } else if (cost < 0 && same(this.src, nameS, nameE, CLICK_COST)) {
            this.string();
            cost = this.money(this.strS, this.strE);
          } else throw DECLINE;
          this.ws();
          const c = this.src[this.at];
          this.at++;
          if (c === CLOSE_BRACE) break;
          if (c !== COMMA) throw DECLINE;
        }
      if (idS < 0 || cost < 0 || n >= MAX_OFFERS) throw DECLINE;
      // An offer listed twice is an error the general path words.
      for (let i = 0; i < n; i++) {
        if (sameRange(this.src, starts[i]!, ends[i]!, idS, idE)) throw DECLINE;
      }
      starts[n] = idS;
      ends[n] = idE;
      costs[n] = cost;
      n++;
      this.ws();
      const c = this.src[this.at];
      this.at++;
      if (c === CLOSE_BRACKET) {
        this.offerCount = n;
        return;
      }
      if (c !== COMMA) throw DECLINE;
    }
  }

  private cost = 0;
  private viewOf: Buffer | undefined;
  private dataView: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));

  /** A DataView of the line's buffer, made once per buffer (a request body holds many lines). */
  private view(src: Buffer): DataView<ArrayBufferLike> {
    if (this.viewOf !== src) {
      this.viewOf = src;
      this.dataView = new DataView(src.buffer, src.byteOffset, src.byteLength);
    }
    return this.dataView;
  }

  /**
   * Reads an offer written exactly as `{"offerId":"<id>","clickCost":"<money>"}` at the current
   * position: sets [strS, strE) to the id and `cost`, moves past it and returns true. Returns
   * false, moving nothing, for any other spelling (spaces, other order), which the tokenizing
   * path then reads; an invalid id or amount declines the line as that path would.
   */
  private compactOffer(): boolean {
    const s = this.src;
    const end = this.end;
    let i = this.at;
    if (i + OFFER_HEAD.length + OFFER_MIDDLE.length + 4 > end) return false;
    // The literals are compared four bytes at a time.
    const v = this.view(s);
    if (v.getUint32(i, true) !== HEAD_0 || v.getUint32(i + 4, true) !== HEAD_4 || v.getUint32(i + 8, true) !== HEAD_8)
      return false;
    i += OFFER_HEAD.length;
    const idS = i;
    const idE = asciiStringEnd(s, idS, end);
    if (idE < 0) return false;
    i = idE;
    if (i + OFFER_MIDDLE.length > end) return false;
    if (
      v.getUint32(i, true) !== MIDDLE_0 ||
      v.getUint32(i + 4, true) !== MIDDLE_4 ||
      v.getUint32(i + 8, true) !== MIDDLE_8 ||
      v.getUint32(i + 11, true) !== MIDDLE_11
    )
      return false;
    i += OFFER_MIDDLE.length;
    const costS = i;
    i = asciiStringEnd(s, costS, end);
    if (i < 0 || i + 1 >= end || s[i + 1] !== CLOSE_BRACE) return false;
    if (idE === idS || idE - idS > MAX_ID_LENGTH) throw DECLINE;
    this.cost = this.money(costS, i);
    this.strS = idS;
    this.strE = idE;
    this.at = i + 2;
    return true;
  }

  /**
   * Micros of a decimal `0|[1-9][0-9]{0,8}` with at most 6 fraction digits, read from bytes; the
   * same grammar as parseMoney, limited to amounts below 1e9 so a Number holds the micros exactly.
   * Anything else declines.
   */
  private money(s: number, e: number): number {
    const src = this.src;
    let i = s;
    let units = 0;
    const first = src[i];
    if (first === 0x30) {
      i++;
    } else {
      while (i < e && src[i]! >= 0x30 && src[i]! <= 0x39) units = units * 10 + (src[i++]! - 0x30);
      if (i === s || i - s > 9) throw DECLINE;
    }
    let micros = units * 1_000_000;
    if (i < e) {
      if (src[i] !== 0x2e) throw DECLINE;
      i++;
      const fracStart = i;
      let scale = 100_000;
      while (i < e && src[i]! >= 0x30 && src[i]! <= 0x39) {
        micros += (src[i++]! - 0x30) * scale;
        scale /= 10;
      }
      if (i === fracStart || i - fracStart > 6) throw DECLINE;
    }
    if (i !== e) throw DECLINE;
    return micros;
  }

  private header(out: AvroOutput, schemaId: number, maxBody: number): number {
    out.ensure(5 + maxBody);
    const start = out.pos;
    out.buf[start] = 0;
    out.buf.writeUInt32BE(schemaId, start + 1);
    out.pos += 5;
    return start;
  }

  private writeEmission(out: AvroOutput): TranscodedEvent {
    const n = this.offerCount;
    // Upper bound of the body: strings with 10-byte length prefixes, the ts, and 7 bytes per cost.
    let max = 3 * 10 + (this.idE - this.idS) + (this.placementE - this.placementS) + 10 + 2;
    if (this.dcS >= 0) max += 10 + (this.dcE - this.dcS);
    for (let i = 0; i < n; i++) max += 10 + (this.offerIdEnds[i]! - this.offerIdStarts[i]!) + 8;
    const start = this.header(out, this.ids.emission, max);
    this.bytes(out, this.idS, this.idE);
    writeLong(out, this.ts);
    this.bytes(out, this.placementS, this.placementE);
    this.union(out);
    writeLong(out, n);
    for (let i = 0; i < n; i++) {
      this.bytes(out, this.offerIdStarts[i]!, this.offerIdEnds[i]!);
      writeDecimal(out, this.offerCosts[i]!);
    }
    writeLong(out, 0);
    return this.done('emission', this.idS, this.idE, start, out.pos);
  }

  private writeClick(out: AvroOutput): TranscodedEvent {
    const max =
      7 * 10 +
      1 +
      (this.idE - this.idS) +
      (this.emissionIdE - this.emissionIdS) +
      (this.offerIdE - this.offerIdS) +
      (this.userIdE - this.userIdS) +
      (this.ipE - this.ipS) +
      (this.dcS >= 0 ? this.dcE - this.dcS : 0);
    const start = this.header(out, this.ids.click, max);
    this.bytes(out, this.idS, this.idE);
    writeLong(out, this.ts);
    this.bytes(out, this.emissionIdS, this.emissionIdE);
    this.bytes(out, this.offerIdS, this.offerIdE);
    this.bytes(out, this.userIdS, this.userIdE);
    this.bytes(out, this.ipS, this.ipE);
    this.union(out);
    return this.done('click', this.emissionIdS, this.emissionIdE, start, out.pos);
  }

  /** An Avro string copied from the source line (ASCII, so bytes are characters). */
  private bytes(out: AvroOutput, s: number, e: number): void {
    writeLong(out, e - s);
    const src = this.src;
    const b = out.buf;
    // Short strings copy faster byte by byte than through Buffer#copy.
    if (e - s > 64) {
      src.copy(b, out.pos, s, e);
      out.pos += e - s;
    } else {
      let p = out.pos;
      for (let i = s; i < e; i++) b[p++] = src[i]!;
      out.pos = p;
    }
  }

  /** The `dc` union: index 0 is null, index 1 a string. */
  private union(out: AvroOutput): void {
    if (this.dcS < 0) {
      out.buf[out.pos++] = 0;
    } else {
      out.buf[out.pos++] = 2;
      this.bytes(out, this.dcS, this.dcE);
    }
  }
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** The number of `count` ASCII digits at src[from], or -1. */
function digitsAt(src: Buffer, from: number, count: number): number {
  let n = 0;
  for (let i = from; i < from + count; i++) {
    const d = src[i]! - 0x30;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/** Days from 1970-01-01 to a proleptic Gregorian date (year >= 1, month 1-12). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

/**
 * `YYYY-MM-DDTHH:MM:SS.sss` with `Z` or a `+HH:MM`/`-HH:MM` zone, read from bytes with exactly
 * the checks of `parseRfc3339` (no string is made); -1 for anything else, which then goes
 * through `parseTimestamp` as text (and is explained there if wrong).
 */
function canonicalUtcBytes(src: Buffer, s: number, e: number): number {
  const n = e - s;
  if (
    (n !== 24 && n !== 29) ||
    src[s + 4] !== 0x2d ||
    src[s + 7] !== 0x2d ||
    src[s + 10] !== 0x54 ||
    src[s + 13] !== 0x3a ||
    src[s + 16] !== 0x3a ||
    src[s + 19] !== 0x2e
  )
    return -1;
  let offsetMinutes = 0;
  if (n === 24) {
    if (src[s + 23] !== 0x5a) return -1;
  } else {
    const sign = src[s + 23];
    if ((sign !== 0x2b && sign !== 0x2d) || src[s + 26] !== 0x3a) return -1;
    const oh = digitsAt(src, s + 24, 2);
    const om = digitsAt(src, s + 27, 2);
    if (oh < 0 || om < 0 || oh > 23 || om > 59) return -1;
    offsetMinutes = (sign === 0x2d ? -1 : 1) * (oh * 60 + om);
  }
  const year = digitsAt(src, s, 4);
  const month = digitsAt(src, s + 5, 2);
  const day = digitsAt(src, s + 8, 2);
  const hour = digitsAt(src, s + 11, 2);
  const minute = digitsAt(src, s + 14, 2);
  const second = digitsAt(src, s + 17, 2);
  const millis = digitsAt(src, s + 20, 3);
  if (year < 1970 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23) return -1;
  if (minute < 0 || minute > 59 || second < 0 || second > 59 || millis < 0) return -1;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  if (day > (month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1]!)) return -1;
  const ms =
    daysFromCivil(year, month, day) * 86_400_000 + ((hour * 60 + minute - offsetMinutes) * 60 + second) * 1000 + millis;
  return ms < 0 || ms > MAX_TIMESTAMP_MS ? -1 : ms;
}

/** Avro long: zig-zag varint (non-negative values here, up to 2^53). */
function writeLong(out: AvroOutput, n: number): void {
  const b = out.buf;
  if (n < 0x40000000) {
    let z = n << 1;
    while (z >= 0x80) {
      b[out.pos++] = (z & 0x7f) | 0x80;
      z >>>= 7;
    }
    b[out.pos++] = z;
    return;
  }
  let z = n * 2;
  while (z >= 0x80) {
    b[out.pos++] = (z % 0x80) | 0x80;
    z = Math.floor(z / 0x80);
  }
  b[out.pos++] = z;
}

/** Avro decimal bytes: the shortest two's complement big-endian form, as reckon's decimal type writes it. */
function writeDecimal(out: AvroOutput, n: number): void {
  // Costs are non-negative (the grammar has no sign) and below 1e15 micros: the shortest
  // big-endian form whose top bit is clear.
  const b = out.buf;
  if (n < 0x80000000) {
    const size = n < 0x80 ? 1 : n < 0x8000 ? 2 : n < 0x800000 ? 3 : 4;
    b[out.pos++] = size << 1;
    for (let shift = (size - 1) * 8; shift >= 0; shift -= 8) b[out.pos++] = (n >>> shift) & 0xff;
    return;
  }
  let size = 5;
  while (n >= 2 ** (8 * size - 1)) size++;
  writeLong(out, size);
  let v = n;
  for (let i = size - 1; i >= 0; i--) {
    b[out.pos + i] = v % 256;
    v = Math.floor(v / 256);
  }
  out.pos += size;
}
