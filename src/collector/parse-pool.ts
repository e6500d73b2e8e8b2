/**
 * Parse threads for the collector. Parsing, validating and encoding a body is most of the cost of
 * ingest; on the HTTP thread it would leave the machine's other cores idle. Bodies go to a pool
 * of worker threads round-robin and their records come back ready to append; small bodies are
 * parsed inline, where a thread hop would cost more than it saves.
 */
import type { Worker } from 'node:worker_threads';
import type { RecordInput } from '../log/index.ts';
import { siblingModule, startModuleThread } from '../workers/index.ts';
import {
  type BodyProblem,
  type IngestLimits,
  type PreparedBatch,
  prepareJson,
  prepareNdjson,
  type RejectedLine,
  type WriterSchemaIds,
} from './ingest.ts';

/** A body to parse. */
export interface ParseRequest {
  id: number;
  kind: 'ndjson' | 'json';
  body: Uint8Array;
  ids: WriterSchemaIds;
  limits: IngestLimits;
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
  /** The thread died: nothing about the body is known, and a retry may succeed. */
  error?: string;
  problem?: BodyProblem;
  bytes?: ArrayBuffer;
  emissions?: PackedRecords;
  clicks?: PackedRecords;
  rejected?: (Omit<RejectedLine, 'raw'> & { raw: Uint8Array })[];
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

/** A pool of parse threads; `threads: 0` parses everything inline. */
export class ParsePool {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, (r: ParseResponse) => void>();
  private next = 0;
  private nextId = 1;

  constructor(threads: number) {
    const url = siblingModule(import.meta.url, 'parse-worker');
    for (let i = 0; i < threads; i++) this.workers.push(this.spawn(url, i));
  }

  private spawn(url: URL, index: number): Worker {
    const worker = startModuleThread(url);
    worker.on('message', (r: ParseResponse) => {
      const resolve = this.pending.get(r.id);
      this.pending.delete(r.id);
      resolve?.(r);
    });
    // A thread that dies fails what is pending (those requests answer 503) and is replaced.
    worker.on('error', (e) => {
      this.failAll(e);
      if (this.workers[index] === worker) this.workers[index] = this.spawn(url, index);
    });
    return worker;
  }

  /** Parses a body (NDJSON or JSON) into records to append and rejected lines. */
  async prepare(
    kind: 'ndjson' | 'json',
    body: Buffer,
    ids: WriterSchemaIds,
    limits: IngestLimits,
  ): Promise<PreparedBatch | BodyProblem> {
    if (this.workers.length === 0 || body.length < INLINE_BELOW_BYTES) {
      try {
        return kind === 'ndjson' ? prepareNdjson(body, ids, limits) : prepareJson(body, ids, limits);
      } catch (e) {
        return unparsable(e);
      }
    }
    const id = this.nextId++;
    const worker = this.workers[this.next++ % this.workers.length]!;
    const response = await new Promise<ParseResponse>((resolve) => {
      this.pending.set(id, resolve);
      worker.postMessage({ id, kind, body, ids, limits } satisfies ParseRequest);
    });
    if (response.parseError !== undefined) return unparsable(response.parseError);
    if (response.error !== undefined) throw new Error(`parse thread failed: ${response.error}`);
    if (response.problem !== undefined) return response.problem;
    const bytes = Buffer.from(response.bytes!);
    return {
      emissions: unpack(bytes, response.emissions!),
      clicks: unpack(bytes, response.clicks!),
      rejected: response.rejected!.map((r) => ({
        ...r,
        raw: Buffer.from(r.raw.buffer, r.raw.byteOffset, r.raw.byteLength),
      })),
    };
  }

  private failAll(e: Error): void {
    for (const [id, resolve] of this.pending) resolve({ id, error: e.message });
    this.pending.clear();
  }

  /** Stops the threads. */
  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }
}
