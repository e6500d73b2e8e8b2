/**
 * The ingest hot path, free of HTTP: a request body (NDJSON or a JSON array) becomes Avro records
 * for the `emissions` and `clicks` topics plus one rejection per bad line. Nothing here throws on
 * bad input; whole-body problems come back as a {@link BodyProblem}.
 */
import {
  AvroOutput,
  describeRejection,
  EventTranscoder,
  encodeClick,
  encodeEmission,
  type ParseResult,
  type TranscodedEvent,
  parseEventLine,
  validateEvent,
} from '../events/index.ts';
import { BatchBuilder, type EncodedBatch, type RecordInput } from '../log/index.ts';

/** Topic of emissions. */
export const EMISSIONS_TOPIC = 'emissions';
/** Topic of clicks. */
export const CLICKS_TOPIC = 'clicks';

/** Registry ids of the schemas events are written with. */
export interface WriterSchemaIds {
  emission: number;
  click: number;
}

/** Per-request limits. */
export interface IngestLimits {
  maxLineBytes: number;
  maxEvents: number;
}

/** Why one line (or array element) was rejected: a category for metrics, and the message for people. */
export type RejectionKind = 'invalid_json' | 'invalid_event' | 'line_too_long' | 'invalid_utf8';

/** One rejected line: 1-based line (or element) number, its reason, and its raw bytes. */
export interface RejectedLine {
  line: number;
  kind: RejectionKind;
  reason: string;
  raw: Buffer;
}

/** A body split into records to append and lines rejected. */
export interface PreparedBatch {
  emissions: RecordInput[];
  clicks: RecordInput[];
  rejected: RejectedLine[];
}

/** One topic's accepted events laid out as batches of its partitions, for `Log.appendEncoded`. */
export interface EncodedEvents {
  batches: EncodedBatch[];
  count: number;
}

/** A body's accepted events as encoded batches, and its rejected lines. */
export interface EncodedBody {
  emissions: EncodedEvents;
  clicks: EncodedEvents;
  rejected: RejectedLine[];
  /** Gives the batches' memory back for reuse: call once their appends have settled, not before. */
  release?: () => void;
}

/** Partition counts of the event topics, for laying out their batches. */
export interface TopicPartitions {
  emissions: number;
  clicks: number;
}

/** Where a body's accepted events go: records to append, or batches laid out for the log. */
export interface EventSink {
  /** A line `transcoder` has just scanned and accepted as `event`: the sink has it write the record. */
  addScanned(line: Buffer, event: TranscodedEvent, transcoder: EventTranscoder): void;
  /** An event the general path accepted. */
  addRecord(type: 'emission' | 'click', key: string, value: Buffer, ts: number): void;
}

/** Collects records for `Log.append`; their values are views of one body's output. */
export class RecordSink implements EventSink {
  readonly emissions: RecordInput[] = [];
  readonly clicks: RecordInput[] = [];
  readonly avro: AvroOutput;

  constructor(bodyBytes: number) {
    this.avro = new AvroOutput(bodyBytes);
  }

  addScanned(line: Buffer, _event: TranscodedEvent, transcoder: EventTranscoder): void {
    const e = transcoder.write(this.avro);
    this.addRecord(e.type, line.toString('latin1', e.keyStart, e.keyEnd), this.avro.buf.subarray(e.start, e.end), e.ts);
  }

  addRecord(type: 'emission' | 'click', key: string, value: Buffer, ts: number): void {
    (type === 'emission' ? this.emissions : this.clicks).push({ key, value, timestamp: ts });
  }
}

/**
 * Lays out accepted events as the log's batches, one per partition of each event topic, as they
 * are read: the transcoder writes each record straight into its batch. Kept from one
 * body to the next (by a parse thread), it allocates nothing per event.
 */
export class BatchSink implements EventSink {
  readonly emissions: BatchBuilder;
  readonly clicks: BatchBuilder;

  constructor(readonly partitions: TopicPartitions) {
    this.emissions = new BatchBuilder(partitions.emissions);
    this.clicks = new BatchBuilder(partitions.clicks);
  }

  addScanned(line: Buffer, e: TranscodedEvent, transcoder: EventTranscoder): void {
    const builder = e.type === 'emission' ? this.emissions : this.clicks;
    // The record is written straight into its partition's batch.
    transcoder.write(builder.begin(line, e.keyStart, e.keyEnd, e.ts));
    builder.commit();
  }

  addRecord(type: 'emission' | 'click', key: string, value: Buffer, ts: number): void {
    (type === 'emission' ? this.emissions : this.clicks).addStringKey(key, value, 0, value.length, ts);
  }

  /**
   * Moves the batches laid out so far into one new buffer (transferable to another thread) and
   * lists them per topic as flat (partition, start, end, count) quadruples.
   */
  drain(alloc: (size: number) => Buffer = (size) => Buffer.allocUnsafeSlow(size)): {
    bytes: Buffer;
    emissions: number[];
    clicks: number[];
  } {
    const bytes = alloc(this.emissions.byteLength + this.clicks.byteLength);
    const emissions: number[] = [];
    const clicks: number[] = [];
    this.clicks.drainTo(bytes, this.emissions.drainTo(bytes, 0, emissions), clicks);
    return { bytes, emissions, clicks };
  }

  /** Forgets what was laid out (a body refused as a whole), without copying it anywhere. */
  reset(): void {
    this.emissions.clear();
    this.clicks.clear();
  }
}

/** A body's batches as {@link BatchSink.drain} lists them, and its rejected lines. */
export function encodedBody(
  drained: { bytes: Buffer; emissions: readonly number[]; clicks: readonly number[] },
  rejected: RejectedLine[],
): EncodedBody {
  return {
    emissions: encodedEvents(drained.bytes, drained.emissions),
    clicks: encodedEvents(drained.bytes, drained.clicks),
    rejected,
  };
}

/** The encoded batches listed by {@link BatchSink.drain} as views of `bytes`. */
export function encodedEvents(bytes: Buffer, list: readonly number[]): EncodedEvents {
  const batches: EncodedBatch[] = [];
  let count = 0;
  for (let i = 0; i < list.length; i += 4) {
    batches.push({ partition: list[i]!, bytes: bytes.subarray(list[i + 1]!, list[i + 2]!), count: list[i + 3]! });
    count += list[i + 3]!;
  }
  return { batches, count };
}

/** A problem with the whole body: the HTTP status it maps to and a message that says what to do. */
export interface BodyProblem {
  status: 400 | 413;
  code: string;
  message: string;
  /** The body the problem is about, when it was moved away to be parsed (see `ParsePool.prepare`). */
  body?: Buffer;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });
const NEWLINE = 0x0a;

/**
 * How deep JSON may nest in a body or line. An event nests three levels (the event, its offers,
 * an offer) and a JSON body's array adds one; anything far deeper can never be an event, and
 * would only cost stack and time further on.
 */
export const MAX_JSON_DEPTH = 32;

/**
 * The byte offset at which JSON in `bytes[start, end)` opens its `max + 1`-th nested level, or -1
 * if it never nests that deep. Brackets inside strings do not count. One pass, no allocation.
 */
export function jsonTooDeepAt(bytes: Uint8Array, start: number, end: number, max = MAX_JSON_DEPTH): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < end; i++) {
    const b = bytes[i]!;
    if (inString) {
      if (b === 0x5c) i++;
      else if (b === 0x22) inString = false;
    } else if (b === 0x22) inString = true;
    else if (b === 0x5b || b === 0x7b) {
      if (++depth > max) return i;
    } else if (b === 0x5d || b === 0x7d) depth--;
  }
  return -1;
}

function tooDeep(max: number, at: number, offset: number): string {
  return `nests deeper than ${max} levels (at byte ${at - offset + 1}), and an event nests 3 (the event, its offers, an offer)`;
}

function accept(result: ParseResult & { ok: true }, ids: WriterSchemaIds, sink: EventSink): void {
  const e = result.event;
  // Clicks are keyed by their emission, so each click lands on its emission's partition.
  if (e.type === 'emission') sink.addRecord('emission', e.id, encodeEmission(ids.emission, e), e.ts);
  else sink.addRecord('click', e.emissionId, encodeClick(ids.click, e), e.ts);
}

function rejectionKind(result: ParseResult & { ok: false }): RejectionKind {
  return result.field === '$' && result.reason.startsWith('not valid JSON') ? 'invalid_json' : 'invalid_event';
}

function tooMany(n: number, limits: IngestLimits): BodyProblem {
  return {
    status: 413,
    code: 'RECKON_INGEST_TOO_MANY_EVENTS',
    message: `the request holds ${n > limits.maxEvents ? `more than ${limits.maxEvents}` : n} events; at most ${limits.maxEvents} per request are accepted (ingestMaxEvents): split it into smaller requests`,
  };
}

/**
 * Splits and validates an NDJSON body into records (see {@link ingestNdjson}).
 * `fastPath: false` sends every line through the general path (the differential tests compare
 * the two; the answers must be identical).
 */
export function prepareNdjson(
  body: Buffer,
  ids: WriterSchemaIds,
  limits: IngestLimits,
  { fastPath = true }: { fastPath?: boolean } = {},
): PreparedBatch | BodyProblem {
  const sink = new RecordSink(body.length);
  const rejected = ingestNdjson(body, ids, limits, sink, { fastPath });
  return isBodyProblem(rejected) ? rejected : { emissions: sink.emissions, clicks: sink.clicks, rejected };
}

const TRANSCODERS = new Map<string, EventTranscoder>();

/** One transcoder per pair of writer schema ids, kept (it holds scratch space only). */
function transcoderFor(ids: WriterSchemaIds): EventTranscoder {
  const key = `${ids.emission}/${ids.click}`;
  let t = TRANSCODERS.get(key);
  if (t === undefined) TRANSCODERS.set(key, (t = new EventTranscoder(ids)));
  return t;
}

/**
 * Splits and validates an NDJSON body: accepted events go to `sink`, rejected lines come back.
 * Blank lines are skipped but counted, so line numbers match the sender's.
 */
export function ingestNdjson(
  body: Buffer,
  ids: WriterSchemaIds,
  limits: IngestLimits,
  sink: EventSink,
  { fastPath = true }: { fastPath?: boolean } = {},
): RejectedLine[] | BodyProblem {
  const out = { rejected: [] as RejectedLine[] };
  // Most lines take the single-pass transcoder; the rest (escapes, non-ASCII, errors) the general path.
  const transcoder = fastPath ? transcoderFor(ids) : undefined;
  let events = 0;
  let lineNo = 0;
  let start = 0;
  while (start < body.length) {
    let end = body.indexOf(NEWLINE, start);
    if (end < 0) end = body.length;
    lineNo++;
    const lineStart = start;
    let lineEnd = end;
    start = end + 1;
    if (lineEnd > lineStart && body[lineEnd - 1] === 0x0d) lineEnd--;
    if (lineEnd === lineStart) continue;
    const bytes = lineEnd - lineStart;
    if (++events > limits.maxEvents) return tooMany(events, limits);
    if (bytes > limits.maxLineBytes) {
      out.rejected.push({
        line: lineNo,
        kind: 'line_too_long',
        reason: `line is ${bytes} bytes long; at most ${limits.maxLineBytes} are accepted (ingestMaxLineBytes)`,
        raw: body.subarray(lineStart, lineStart + Math.min(bytes, limits.maxLineBytes)),
      });
      continue;
    }
    const scanned = transcoder?.scan(body, lineStart, lineEnd);
    if (scanned !== undefined) {
      sink.addScanned(body, scanned, transcoder!);
      continue;
    }
    let line: string;
    try {
      line = UTF8.decode(body.subarray(lineStart, lineEnd));
    } catch {
      out.rejected.push({
        line: lineNo,
        kind: 'invalid_utf8',
        reason: 'line is not valid UTF-8',
        raw: body.subarray(lineStart, lineEnd),
      });
      continue;
    }
    // A line of only blanks is skipped like an empty one.
    if (line.trim().length === 0) {
      events--;
      continue;
    }
    const deep = jsonTooDeepAt(body, lineStart, lineEnd);
    if (deep >= 0) {
      out.rejected.push({
        line: lineNo,
        kind: 'invalid_json',
        reason: `$: the line ${tooDeep(MAX_JSON_DEPTH, deep, lineStart)}`,
        raw: body.subarray(lineStart, lineEnd),
      });
      continue;
    }
    const result = parseEventLine(line);
    if (result.ok) accept(result, ids, sink);
    else
      out.rejected.push({
        line: lineNo,
        kind: rejectionKind(result),
        reason: describeRejection(result),
        raw: body.subarray(lineStart, lineEnd),
      });
  }
  return out.rejected;
}

function unreadableJson(why: string): BodyProblem {
  return {
    status: 400,
    code: 'RECKON_INGEST_UNREADABLE_BODY',
    message: `the body is not a JSON array of events (${why}); send a JSON array, or one event per line with Content-Type application/x-ndjson`,
  };
}

/** Validates a JSON body into records (see {@link ingestJson}). */
export function prepareJson(body: Buffer, ids: WriterSchemaIds, limits: IngestLimits): PreparedBatch | BodyProblem {
  const sink = new RecordSink(0);
  const rejected = ingestJson(body, ids, limits, sink);
  return isBodyProblem(rejected) ? rejected : { emissions: sink.emissions, clicks: sink.clicks, rejected };
}

/**
 * Validates a JSON body, an array of events (or one event object): accepted events go to `sink`,
 * rejected elements come back. Element numbers are 1-based.
 */
export function ingestJson(
  body: Buffer,
  ids: WriterSchemaIds,
  limits: IngestLimits,
  sink: EventSink,
): RejectedLine[] | BodyProblem {
  // Refused before parsing: such a body can never hold events, and deep values overflow the stack
  // of everything that walks them afterwards.
  const deep = jsonTooDeepAt(body, 0, body.length, MAX_JSON_DEPTH + 1);
  if (deep >= 0) return unreadableJson(`it ${tooDeep(MAX_JSON_DEPTH + 1, deep, 0)}`);
  let value: unknown;
  try {
    value = JSON.parse(UTF8.decode(body));
  } catch (e) {
    return unreadableJson((e as Error).message);
  }
  if (value === null || typeof value !== 'object')
    return unreadableJson(
      `it is ${value === null ? 'null' : `a JSON ${typeof value}`}, neither an event object nor an array of them`,
    );
  const items = Array.isArray(value) ? value : [value];
  if (items.length > limits.maxEvents) return tooMany(items.length, limits);
  const rejected: RejectedLine[] = [];
  items.forEach((item, i) => {
    const result = validateEvent(item);
    if (result.ok) accept(result, ids, sink);
    else
      rejected.push({
        line: i + 1,
        kind: 'invalid_event',
        reason: describeRejection(result),
        raw: Buffer.from(JSON.stringify(item) ?? String(item)),
      });
  });
  return rejected;
}

/** True when the value is a whole-body problem rather than what a body held. */
export function isBodyProblem<T extends object>(v: T | BodyProblem): v is BodyProblem {
  return !Array.isArray(v) && 'status' in v;
}
