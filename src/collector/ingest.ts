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
  parseEventLine,
  validateEvent,
} from '../events/index.ts';
import type { RecordInput } from '../log/index.ts';

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

/** A problem with the whole body: the HTTP status it maps to and a message that says what to do. */
export interface BodyProblem {
  status: 400 | 413;
  code: string;
  message: string;
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

function accept(result: ParseResult & { ok: true }, ids: WriterSchemaIds, out: PreparedBatch): void {
  const e = result.event;
  // Clicks are keyed by their emission, so each click lands on its emission's partition.
  if (e.type === 'emission') out.emissions.push({ key: e.id, value: encodeEmission(ids.emission, e), timestamp: e.ts });
  else out.clicks.push({ key: e.emissionId, value: encodeClick(ids.click, e), timestamp: e.ts });
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
 * Splits and validates an NDJSON body. Blank lines are skipped but counted, so line numbers match
 * the sender's. `fastPath: false` sends every line through the general path (the differential
 * tests compare the two; the answers must be identical).
 */
export function prepareNdjson(
  body: Buffer,
  ids: WriterSchemaIds,
  limits: IngestLimits,
  { fastPath = true }: { fastPath?: boolean } = {},
): PreparedBatch | BodyProblem {
  const out: PreparedBatch = { emissions: [], clicks: [], rejected: [] };
  // Most lines take the single-pass transcoder; the rest (escapes, non-ASCII, errors) the general path.
  const transcoder = fastPath ? new EventTranscoder(ids) : undefined;
  const avro = new AvroOutput(body.length);
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
    const fast = transcoder?.transcode(body, lineStart, lineEnd, avro);
    if (fast !== undefined) {
      const record = { key: fast.key, value: avro.buf.subarray(fast.start, fast.end), timestamp: fast.ts };
      if (fast.type === 'emission') out.emissions.push(record);
      else out.clicks.push(record);
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
    if (result.ok) accept(result, ids, out);
    else
      out.rejected.push({
        line: lineNo,
        kind: rejectionKind(result),
        reason: describeRejection(result),
        raw: body.subarray(lineStart, lineEnd),
      });
  }
  return out;
}

function unreadableJson(why: string): BodyProblem {
  return {
    status: 400,
    code: 'RECKON_INGEST_UNREADABLE_BODY',
    message: `the body is not a JSON array of events (${why}); send a JSON array, or one event per line with Content-Type application/x-ndjson`,
  };
}

/** Validates a JSON body: an array of events (or one event object). Element numbers are 1-based. */
export function prepareJson(body: Buffer, ids: WriterSchemaIds, limits: IngestLimits): PreparedBatch | BodyProblem {
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
  const out: PreparedBatch = { emissions: [], clicks: [], rejected: [] };
  items.forEach((item, i) => {
    const result = validateEvent(item);
    if (result.ok) accept(result, ids, out);
    else
      out.rejected.push({
        line: i + 1,
        kind: 'invalid_event',
        reason: describeRejection(result),
        raw: Buffer.from(JSON.stringify(item) ?? String(item)),
      });
  });
  return out;
}

/** True when the value is a whole-body problem rather than a prepared batch. */
export function isBodyProblem(v: PreparedBatch | BodyProblem): v is BodyProblem {
  return 'status' in v;
}
