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

/** Splits and validates an NDJSON body. Blank lines are skipped but counted, so line numbers match the sender's. */
export function prepareNdjson(body: Buffer, ids: WriterSchemaIds, limits: IngestLimits): PreparedBatch | BodyProblem {
  const out: PreparedBatch = { emissions: [], clicks: [], rejected: [] };
  // Most lines take the single-pass transcoder; the rest (escapes, non-ASCII, errors) the general path.
  const transcoder = new EventTranscoder(ids);
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
    const fast = transcoder.transcode(body, lineStart, lineEnd, avro);
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

/** Validates a JSON body: an array of events (or one event object). Element numbers are 1-based. */
export function prepareJson(body: Buffer, ids: WriterSchemaIds, limits: IngestLimits): PreparedBatch | BodyProblem {
  let value: unknown;
  try {
    value = JSON.parse(UTF8.decode(body));
  } catch (e) {
    return {
      status: 400,
      code: 'RECKON_INGEST_UNREADABLE_BODY',
      message: `the body is not a JSON array of events (${(e as Error).message}); send a JSON array, or one event per line with Content-Type application/x-ndjson`,
    };
  }
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
