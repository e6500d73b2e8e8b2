/**
 * Parse threads for the collector. Parsing, validating and encoding a body is most of the cost of
 * ingest; on the HTTP thread it would leave the machine's other cores idle. Bodies go to a pool
 * of worker threads round-robin and their records come back ready to append; small bodies are
 * parsed inline, where a thread hop would cost more than it saves.
 *
 * Given the event topics' partition counts (a log that takes encoded batches), a thread lays the
 * records out as the log's batches, one per partition, in one transferred buffer: the HTTP
 * thread then only stamps offsets and writes, with no work per event.
 */
import type { Worker } from 'node:worker_threads';
import type { RecordInput } from '../log/index.ts';
import { siblingModule, startModuleThread } from '../workers/index.ts';
import {
  BatchSink,
  type BodyProblem,
  type EncodedBody,
  encodedBody,
  type IngestLimits,
  ingestJson,
  ingestNdjson,
  isBodyProblem,
  type PreparedBatch,
  prepareJson,
  prepareNdjson,
  type RejectedLine,
  type TopicPartitions,
  type WriterSchemaIds,
} from './ingest.ts';

/** A buffer of batches given back to the parse thread that filled it, to be filled again. */
export interface ReleaseMessage {
  release: ArrayBuffer;
}

/** A body to parse. */
export interface ParseRequest {
  id: number;
  kind: 'ndjson' | 'json';
  body: Uint8Array;
  ids: WriterSchemaIds;
  limits: IngestLimits;
  /** Given: lay the records out as batches of these partitions. */
  partitions?: TopicPartitions;
}

/** Records of one topic: keys, and (start, end, timestamp) triples into the shared bytes. */
export interface PackedRecords {
  keys: string[];
  meta: Float64Array;
}

/** A parse result from a thread. */
export interface ParseResponse {
  id: number;
  /** Parsing this body threw: the same body would fail again, so it is the client's problem. */
  parseError?: string;
  /** The body, moved back to the HTTP thread (it was moved here, not copied). */
  body?: Uint8Array;
  /** The thread died: nothing about the body is known, and a retry may succeed. */
  error?: string;
  problem?: BodyProblem;
  /** The batches (see {@link BatchSink.drain}), when the request gave partitions. */
  encoded?: { bytes: ArrayBuffer; emissions: number[]; clicks: number[] };
  bytes?: ArrayBuffer;
  emissions?: PackedRecords;
  clicks?: PackedRecords;
  rejected?: (Omit<RejectedLine, 'raw'> & { raw: Uint8Array })[];
}

/** The sink kept for these partition counts, or a new one when they differ. */
export function sinkFor(kept: BatchSink | undefined, partitions: TopicPartitions): BatchSink {
  return kept !== undefined &&
    kept.partitions.emissions === partitions.emissions &&
    kept.partitions.clicks === partitions.clicks
    ? kept
    : new BatchSink(partitions);
}

/** Bodies below this are parsed on the calling thread. */
const INLINE_BELOW_BYTES = 32 * 1024;

function unpack(bytes: Buffer, packed: PackedRecords): RecordInput[] {
  const out: RecordInput[] = new Array(packed.keys.length);
  const m = packed.meta;
  for (let i = 0; i < out.length; i++) {
    out[i] = { key: packed.keys[i]!, value: bytes.subarray(m[i * 3]!, m[i * 3 + 1]!), timestamp: m[i * 3 + 2]! };
  }
  return out;
}

/**
 * A body whose parsing threw (a bug's or a hostile body's way past the checks): parsing it again
 * would throw again, so it is answered 400 and kept with its reason, never 503.
 */
export function unparsable(e: unknown): BodyProblem {
  const why = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return {
    status: 400,
    code: 'RECKON_INGEST_UNREADABLE_BODY',
    message: `the body could not be parsed (${why}); it was kept with this reason, and sending it again fails again`,
  };
}

/**
 * Parses a body into batches laid out by `sink`: the batches in one new buffer, and the rejected
 * lines. A body refused whole leaves nothing behind in the sink.
 */
export function encodeBody(
  kind: 'ndjson' | 'json',
  body: Buffer,
  ids: WriterSchemaIds,
  limits: IngestLimits,
  sink: BatchSink,
  alloc?: (size: number) => Buffer,
): (ReturnType<BatchSink['drain']> & { rejected: RejectedLine[] }) | BodyProblem {
  let rejected: RejectedLine[] | BodyProblem;
  try {
    rejected = kind === 'ndjson' ? ingestNdjson(body, ids, limits, sink) : ingestJson(body, ids, limits, sink);
  } catch (e) {
    sink.reset();
    throw e;
  }
  if (isBodyProblem(rejected)) {
    sink.reset();
    return rejected;
  }
  return { ...sink.drain(alloc), rejected };
}

/** A pool of parse threads; `threads: 0` parses everything inline. */
export class ParsePool {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, { resolve: (r: ParseResponse) => void; index: number; bytes: number }>();
  /** Bytes of bodies sent to each thread and not yet answered: a body goes to the least loaded. */
  private readonly queued: number[] = [];
  private nextId = 1;
  private inlineSink: BatchSink | undefined;

  constructor(threads: number) {
    const url = siblingModule(import.meta.url, 'parse-worker');
    for (let i = 0; i < threads; i++) {
      this.workers.push(this.spawn(url, i));
      this.queued.push(0);
    }
  }

  private spawn(url: URL, index: number): Worker {
    const worker = startModuleThread(url);
    worker.on('message', (r: ParseResponse) => {
      const waiting = this.pending.get(r.id);
      if (waiting === undefined) return;
      this.pending.delete(r.id);
      this.queued[waiting.index]! -= waiting.bytes;
      waiting.resolve(r);
    });
    // A thread that dies fails what is pending (those requests answer 503) and is replaced.
    worker.on('error', (e) => {
      this.failAll(e);
      if (this.workers[index] === worker) this.workers[index] = this.spawn(url, index);
    });
    return worker;
  }

  /**
   * Parses a body (NDJSON or JSON) into records to append and rejected lines; given the event
   * topics' `partitions`, into encoded batches of them instead. A body parsed by a thread is
   * moved there when it owns its memory: the caller must not use it afterwards, and a whole-body
   * problem gives it back as its `body`.
   */
  prepare(
    kind: 'ndjson' | 'json',
    body: Buffer,
    ids: WriterSchemaIds,
    limits: IngestLimits,
  ): Promise<PreparedBatch | BodyProblem>;
  prepare(
    kind: 'ndjson' | 'json',
    body: Buffer,
    ids: WriterSchemaIds,
    limits: IngestLimits,
    partitions: TopicPartitions | undefined,
  ): Promise<PreparedBatch | EncodedBody | BodyProblem>;
  async prepare(
    kind: 'ndjson' | 'json',
    body: Buffer,
    ids: WriterSchemaIds,
    limits: IngestLimits,
    partitions?: TopicPartitions,
  ): Promise<PreparedBatch | EncodedBody | BodyProblem> {
    if (this.workers.length === 0 || body.length < INLINE_BELOW_BYTES) {
      try {
        if (partitions === undefined)
          return kind === 'ndjson' ? prepareNdjson(body, ids, limits) : prepareJson(body, ids, limits);
        this.inlineSink = sinkFor(this.inlineSink, partitions);
        const r = encodeBody(kind, body, ids, limits, this.inlineSink);
        return isBodyProblem(r) ? r : encodedBody(r, r.rejected);
      } catch (e) {
        return unparsable(e);
      }
    }
    const id = this.nextId++;
    // Round robin would queue a body behind a thread that is slow just now (descheduled, or
    // collecting garbage) while the other waits: the least loaded thread takes it.
    let index = 0;
    for (let i = 1; i < this.workers.length; i++) if (this.queued[i]! < this.queued[index]!) index = i;
    const worker = this.workers[index]!;
    // A body that owns its memory is moved to the thread and back, not copied.
    const owned =
      body.byteOffset === 0 && body.byteLength === body.buffer.byteLength && body.buffer instanceof ArrayBuffer;
    const response = await new Promise<ParseResponse>((resolve) => {
      this.pending.set(id, { resolve, index, bytes: body.length });
      this.queued[index]! += body.length;
      worker.postMessage(
        { id, kind, body, ids, limits, partitions } satisfies ParseRequest,
        owned ? [body.buffer] : [],
      );
    });
    const back =
      response.body === undefined
        ? body
        : Buffer.from(response.body.buffer, response.body.byteOffset, response.body.byteLength);
    if (response.parseError !== undefined) return { ...unparsable(response.parseError), body: back };
    if (response.error !== undefined) throw new Error(`parse thread failed: ${response.error}`);
    if (response.problem !== undefined) return { ...response.problem, body: back };
    const rejected = response.rejected!.map((r) => ({
      ...r,
      raw: Buffer.from(r.raw.buffer, r.raw.byteOffset, r.raw.byteLength),
    }));
    if (response.encoded !== undefined) {
      const buffer = response.encoded.bytes;
      return {
        ...encodedBody({ ...response.encoded, bytes: Buffer.from(buffer) }, rejected),
        // Back to the thread that filled it: one buffer per body in flight, not one per body.
        release: () => {
          if (this.workers.includes(worker)) worker.postMessage({ release: buffer }, [buffer]);
        },
      };
    }
    const bytes = Buffer.from(response.bytes!);
    return {
      emissions: unpack(bytes, response.emissions!),
      clicks: unpack(bytes, response.clicks!),
      rejected,
    };
  }

  private failAll(e: Error): void {
    for (const [id, { resolve }] of this.pending) resolve({ id, error: e.message });
    this.pending.clear();
    this.queued.fill(0);
  }

  /** Stops the threads. */
  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }
}
