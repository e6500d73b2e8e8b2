/**
 * A parse thread of the collector: turns request bodies into Avro records off the HTTP thread.
 * Given the topics' partitions, the records go back laid out as the log's batches in one
 * transferred buffer (which comes back here to be reused once written); otherwise every record's
 * bytes go back in one transferred buffer, with (start, end, timestamp) per record.
 */
import { parentPort } from 'node:worker_threads';
import {
  type BatchSink,
  type BodyProblem,
  isBodyProblem,
  type PreparedBatch,
  prepareJson,
  prepareNdjson,
  type TopicPartitions,
} from './ingest.ts';
import {
  encodeBody,
  type ParseRequest,
  type ParseResponse,
  type PackedRecords,
  type ReleaseMessage,
  sinkFor,
} from './parse-pool.ts';

function pack(records: PreparedBatch['emissions'], into: Buffer, at: number): { packed: PackedRecords; end: number } {
  const keys: string[] = new Array(records.length);
  const meta = new Float64Array(records.length * 3);
  let pos = at;
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    keys[i] = r.key as string;
    r.value.copy(into, pos);
    meta[i * 3] = pos;
    meta[i * 3 + 1] = pos + r.value.length;
    meta[i * 3 + 2] = r.timestamp ?? 0;
    pos += r.value.length;
  }
  return { packed: { keys, meta }, end: pos };
}

/** Kept from one body to the next: its scratch space is reused. */
let sink: BatchSink | undefined;
/**
 * Buffers of batches the HTTP thread gave back once written. Reusing them keeps memory outside
 * the heap flat: a new buffer per body would make the HTTP thread collect its old space over
 * and over for the memory's sake.
 */
const free: ArrayBuffer[] = [];
const KEPT_BUFFERS = 64;
const MIN_BUFFER_BYTES = 256 * 1024;

function batchBuffer(size: number): Buffer {
  for (let i = 0; i < free.length; i++) {
    const ab = free[i]!;
    if (ab.byteLength >= size) {
      free[i] = free[free.length - 1]!;
      free.pop();
      return Buffer.from(ab, 0, size);
    }
  }
  return Buffer.from(new ArrayBuffer(Math.max(size, MIN_BUFFER_BYTES)), 0, size);
}

/** The body being parsed: it goes back with the answer (moved, when it owns its memory). */
let parsing: Uint8Array | undefined;

/** Answers the HTTP thread, moving `transfer` and the body back to it. */
function send(response: ParseResponse, transfer: ArrayBuffer[] = []): void {
  const b = parsing;
  parsing = undefined;
  if (b !== undefined && b.byteOffset === 0 && b.byteLength === b.buffer.byteLength) {
    response.body = b;
    transfer.push(b.buffer as ArrayBuffer);
  }
  parentPort?.postMessage(response, transfer);
}

/** Runs `parse`; a throw or a body refused whole is answered here, and undefined returned. */
function parsed<T extends object>(id: number, parse: () => T | BodyProblem): T | undefined {
  let result: T | BodyProblem;
  try {
    result = parse();
  } catch (e) {
    const parseError = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    send({ id, parseError });
    return undefined;
  }
  if (isBodyProblem(result)) {
    send({ id, problem: result });
    return undefined;
  }
  return result;
}

const copyRaw = (rejected: PreparedBatch['rejected']) => rejected.map((r) => ({ ...r, raw: new Uint8Array(r.raw) }));

/** A body laid out as batches of the given partitions: one transferred buffer holds them all. */
function encoded(request: ParseRequest, partitions: TopicPartitions, body: Buffer): void {
  const current = (sink = sinkFor(sink, partitions));
  const result = parsed(request.id, () =>
    encodeBody(request.kind, body, request.ids, request.limits, current, batchBuffer),
  );
  if (result === undefined) return;
  const bytes = result.bytes.buffer as ArrayBuffer;
  const response: ParseResponse = {
    id: request.id,
    encoded: { bytes, emissions: result.emissions, clicks: result.clicks },
    rejected: copyRaw(result.rejected),
  };
  send(response, [bytes]);
}

parentPort?.on('message', (message: ParseRequest | ReleaseMessage) => {
  if ('release' in message) {
    if (free.length < KEPT_BUFFERS) free.push(message.release);
    return;
  }
  const request = message;
  parsing = request.body;
  const body = Buffer.from(request.body.buffer, request.body.byteOffset, request.body.byteLength);
  if (request.partitions !== undefined) return encoded(request, request.partitions, body);
  const result = parsed(request.id, () =>
    request.kind === 'ndjson'
      ? prepareNdjson(body, request.ids, request.limits)
      : prepareJson(body, request.ids, request.limits),
  );
  if (result === undefined) return;
  let total = 0;
  for (const r of result.emissions) total += r.value.length;
  for (const r of result.clicks) total += r.value.length;
  const bytes = Buffer.allocUnsafeSlow(total);
  const emissions = pack(result.emissions, bytes, 0);
  const clicks = pack(result.clicks, bytes, emissions.end);
  const rejected = copyRaw(result.rejected);
  const response: ParseResponse = {
    id: request.id,
    bytes: bytes.buffer as ArrayBuffer,
    emissions: emissions.packed,
    clicks: clicks.packed,
    rejected,
  };
  send(response, [bytes.buffer as ArrayBuffer]);
});
