/**
 * Parquet files of the lake: each event hour of a flush's staged columns (see `staging.ts`) is
 * written to its own file on a Parquet thread (see `parquet-worker.ts`), so consumption goes on
 * while a flush writes. `LAKE_SCHEMAS` is the files' schema, which the batch layer reads.
 */
import type { Worker } from 'node:worker_threads';
import { siblingModule, startModuleThread } from '../workers/index.ts';
import type { WriteRequest, WriteResponse } from './parquet-worker.ts';
import type { ArchivedKind, HourColumns, StagingRows } from './staging.ts';

/** A SQL string literal. */
export function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

/** The Parquet schema of each kind, as DuckDB reports it (column name, type). */
export const LAKE_SCHEMAS: Readonly<Record<ArchivedKind, readonly (readonly [string, string])[]>> = {
  emission: [
    ['id', 'VARCHAR'],
    ['ts', 'TIMESTAMP'],
    ['placement', 'VARCHAR'],
    ['dc', 'VARCHAR'],
    ['offers', 'STRUCT(offer_id VARCHAR, click_cost_micros BIGINT)[]'],
    ['log_partition', 'INTEGER'],
    ['log_offset', 'BIGINT'],
  ],
  click: [
    ['id', 'VARCHAR'],
    ['ts', 'TIMESTAMP'],
    ['emission_id', 'VARCHAR'],
    ['offer_id', 'VARCHAR'],
    ['user_id', 'VARCHAR'],
    ['ip', 'VARCHAR'],
    ['dc', 'VARCHAR'],
    ['log_partition', 'INTEGER'],
    ['log_offset', 'BIGINT'],
  ],
};

/** Options of {@link LakeWriter}. */
export interface LakeWriterOptions {
  /** Parquet threads. Default 1: the archiver's own thread and the Parquet thread fill both cores. */
  threads?: number;
}

/**
 * The archiver's Parquet threads: each hour of a flush is written by one of them, from the
 * staged columns in shared memory (see `parquet-worker.ts`).
 */
export class LakeWriter {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<
    number,
    { worker: Worker; resolve: (bytes: number) => void; reject: (e: Error) => void }
  >();
  private nextId = 1;
  private next = 0;
  private closed = false;

  private constructor(threads: number) {
    const url = siblingModule(import.meta.url, 'parquet-worker');
    for (let i = 0; i < threads; i++) this.workers.push(this.spawn(url, i));
  }

  /** Starts the Parquet threads. */
  static async create(options: LakeWriterOptions = {}): Promise<LakeWriter> {
    return new LakeWriter(Math.max(1, options.threads ?? 1));
  }

  private spawn(url: URL, index: number): Worker {
    const worker = startModuleThread(url);
    worker.on('message', (r: WriteResponse) => {
      const waiter = this.pending.get(r.id);
      this.pending.delete(r.id);
      if (r.error !== undefined) waiter?.reject(new Error(`writing Parquet failed: ${r.error}`));
      else waiter?.resolve(r.bytes ?? 0);
    });
    // A thread that dies fails what it was writing (the flush is retried) and is replaced.
    worker.on('error', (e) => {
      for (const [id, waiter] of this.pending) {
        this.pending.delete(id);
        waiter.reject(new Error(`the Parquet thread failed: ${e.message}`));
      }
      if (!this.closed && this.workers[index] === worker) this.workers[index] = this.spawn(url, index);
    });
    return worker;
  }

  /** Writes one hour's staged columns of a log partition as a Parquet file; not synced. */
  private writeHour(columns: HourColumns, partition: number, path: string): Promise<number> {
    if (this.closed) return Promise.reject(new Error('the lake writer is closed'));
    const id = this.nextId++;
    const worker = this.workers[this.next++ % this.workers.length] as Worker;
    // A write keeps the process alive (an idle thread does not).
    worker.ref();
    const done = () => {
      if (![...this.pending.values()].some((p) => p.worker === worker)) worker.unref();
    };
    return new Promise((resolve, reject) => {
      this.pending.set(id, {
        worker,
        resolve: (bytes) => {
          done();
          resolve(bytes);
        },
        reject: (e) => {
          done();
          reject(e);
        },
      });
      const request: WriteRequest = { id, path, partition, columns };
      worker.postMessage(request);
    });
  }

  /** Writes each hour of a staging buffer (hour start -> file path) as one Parquet file; not synced. */
  async writeHours(staging: StagingRows, partition: number, paths: Map<number, string>): Promise<void> {
    const writes: Promise<number>[] = [];
    for (const [hour, path] of paths) {
      const columns = staging.columns(hour);
      if (columns === undefined) throw new Error(`no staged rows for hour ${new Date(hour).toISOString()}`);
      writes.push(this.writeHour(columns, partition, path));
    }
    const results = await Promise.allSettled(writes);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
  }

  close(): void {
    this.closed = true;
    for (const w of this.workers) void w.terminate();
  }
}
