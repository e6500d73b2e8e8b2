/**
 * The queue of one sub-partition of the worker runtime: its records in offset order, the bytes
 * they hold, whether its task is busy, and the {@link Completion} a task answers through. The
 * runtime feeds each queue's task (one record or batch at a time) and takes the finished ones off
 * its head; offsets are finished in the partition's tracker as they leave.
 */
import { ReckonError } from '../events/index.ts';
import type { LogRecord } from '../log/index.ts';
import type { ContiguousOffsetTracker } from './offsets.ts';
import type { RecordObserver, WorkerRecord, WorkerTask } from './types.ts';

/** Per-record memory overhead counted on top of key and value bytes. */
const RECORD_OVERHEAD_BYTES = 96;
/** A record waiting in (or taken from) a sub-partition's queue, with its delivery attempt. */
export class QueuedRecord implements WorkerRecord {
  attempt = 1;
  /** Memory this record holds while queued. */
  readonly bytes: number;
  constructor(
    readonly topic: string,
    readonly raw: LogRecord,
    public subpartition: number,
  ) {
    this.bytes = raw.size + RECORD_OVERHEAD_BYTES;
  }
  get partition(): number {
    return this.raw.partition;
  }
  get offset(): number {
    return this.raw.offset;
  }
  get key(): Buffer | null {
    return this.raw.key;
  }
  get value(): Buffer {
    return this.raw.value;
  }
  get timestamp(): number {
    return this.raw.timestamp;
  }
  get headers(): Readonly<Record<string, Buffer>> {
    return this.raw.headers;
  }
}

/** What a sub-partition queue needs of its partition. */
export interface QueuedPartition {
  readonly tracker: ContiguousOffsetTracker;
  /** Handed over to another member: no new records are taken. */
  revoked: boolean;
}

/** Where a {@link Completion} reports: the runtime. */
export interface CompletionHandler<P extends QueuedPartition> {
  readonly stats: { timedOut: number };
  completed(completion: Completion<P>): void;
  failed(completion: Completion<P>, error: Error): void;
  report(message: string, error?: Error): void;
}

/** One sub-partition's queue and its task's state. */
export class SubPartitionQueue<P extends QueuedPartition = QueuedPartition> {
  queue: QueuedRecord[] = [];
  /** Index of the first record not yet finished. */
  head = 0;
  /** Memory the queued records hold. */
  bytes = 0;
  /** The task holds a record or batch. */
  busy = false;
  draining = false;
  /** A retry is scheduled: nothing is taken before it fires. */
  retryTimer: NodeJS.Timeout | undefined = undefined;
  /** An `offer()` is scheduled. */
  offerPending = false;
  /** The rest of a drain is scheduled after a yield to the event loop. */
  yieldPending = false;

  constructor(
    readonly part: P,
    readonly index: number,
    readonly task: WorkerTask,
  ) {}

  /** Appends a record fetched for this sub-partition. */
  push(record: QueuedRecord): void {
    this.queue.push(record);
    this.bytes += record.bytes;
  }

  /** Takes the finished record (or batch) off the head and finishes its offsets. */
  dequeue(first: QueuedRecord, batch: QueuedRecord[] | undefined): void {
    const tracker = this.part.tracker;
    if (batch === undefined) {
      tracker.finish(first.offset);
      this.bytes -= first.bytes;
      this.head++;
    } else {
      for (const r of batch) {
        tracker.finish(r.offset);
        this.bytes -= r.bytes;
      }
      this.head += batch.length;
    }
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }
}

/** A record (or batch) being processed: the observer handed to the task. */
export class Completion<P extends QueuedPartition = QueuedPartition> implements RecordObserver {
  done = false;
  timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly runtime: CompletionHandler<P>,
    readonly sub: SubPartitionQueue<P>,
    /** The record, or the first of the batch. */
    readonly first: QueuedRecord,
    /** The whole batch, for processBatch; undefined for a single record (no array per record). */
    readonly batch: QueuedRecord[] | undefined,
  ) {}

  /** Every record this completion covers. */
  get records(): QueuedRecord[] {
    return this.batch ?? [this.first];
  }

  success(): void {
    if (this.finish('success')) this.runtime.completed(this);
  }

  failure(error: Error): void {
    if (this.finish('failure')) this.runtime.failed(this, error instanceof Error ? error : new Error(String(error)));
  }

  timeout(ms: number): void {
    if (this.done) return;
    this.runtime.stats.timedOut++;
    const first = this.records[0] as QueuedRecord;
    this.failure(
      new ReckonError(
        'RECKON_WORKER_TIMEOUT',
        `${first.topic}/${first.partition}@${first.offset} was not completed within ${ms} ms`,
        { retriable: true },
      ),
    );
  }

  private finish(kind: string): boolean {
    if (this.done) {
      const first = this.records[0] as QueuedRecord;
      this.runtime.report(
        `observer of ${first.topic}/${first.partition}@${first.offset} called (${kind}) after completion or timeout; ignored`,
      );
      return false;
    }
    this.done = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    return true;
  }
}
