/** The worker runtime's public types: records, tasks, partitioners and options. */
import type { Log, LogRecord, TopicPartition } from '../log/index.ts';

export type { TopicPartition };

/** A record as fetched from one topic: a log record that knows its topic. */
export interface TopicRecord extends Omit<LogRecord, 'size'> {
  topic: string;
}

/** A record handed to a task. */
export interface WorkerRecord extends TopicRecord {
  /** Which sub-partition (task) of its partition it belongs to. */
  subpartition: number;
  /** 1 on the first try, then 2, 3, ... on retries. */
  attempt: number;
}

/** Spreads one partition over several tasks; records of one sub-partition stay ordered. */
export interface WorkerPartitioner {
  /** The sub-partition of a record, in [0, count(its partition)). */
  subpartition(record: TopicRecord): number;
  /** How many sub-partitions a partition has. */
  count(tp: TopicPartition): number;
}

/** Completes one record (or one batch): call exactly one of the two, once. */
export interface RecordObserver {
  success(): void;
  failure(error: Error): void;
}

/** What a task can do beyond processing. */
export interface TaskContext {
  readonly topicPartition: TopicPartition;
  readonly subpartition: number;
  /** Stops fetching this task's partition (e.g. a multi-DC merger whose source runs ahead). */
  pause(): void;
  /** Resumes fetching this task's partition. */
  resume(): void;
  /** Offers the head record again soon, after `accept` refused it and the reason has gone. */
  offer(): void;
}

/**
 * A task processes the records of one sub-partition, one record (or one batch) at a time, in
 * offset order. Processing may be synchronous or asynchronous; completion is reported through
 * the observer, and a record not completed within the processing timeout counts as failed.
 */
export interface WorkerTask {
  init?(context: TaskContext): void | Promise<void>;
  /** May the head record be taken now? When false, it is offered again later (on punctuate). */
  accept?(record: WorkerRecord): boolean;
  process(record: WorkerRecord, observer: RecordObserver): void | Promise<void>;
  /** Batch form for throughput: used instead of `process` when present. */
  processBatch?(records: WorkerRecord[], observer: RecordObserver): void | Promise<void>;
  /** Called every punctuate interval with the wall clock. */
  punctuate?(now: number): void | Promise<void>;
  close?(): void | Promise<void>;
}

/** Offsets kept by the task's sink (committed with its results in one transaction). */
export interface SinkOffsets {
  /**
   * The next offset to process for each partition the sink has seen. A sink that must wait before
   * it may take a partition (another process is still handing it over) stops waiting once
   * `stillAssigned` turns false for it, and answers `'declined'` for it: the runtime leaves it out.
   */
  committed(
    topic: string,
    partitions: number[],
    stillAssigned: (partition: number) => boolean,
  ): Promise<Map<number, number | 'declined'>>;
}

/** Where to start a partition with no committed offset. */
export type StartFrom = 'earliest' | 'latest';

/** Catch-up after an outage: `full` (default) processes every record; `skipForward` may jump, recording each skipped range. */
export type CatchUpPolicy = { kind: 'full' } | { kind: 'skipForward'; maxLagRecords: number };

/** Options of a worker runtime. */
export interface WorkerOptions {
  log: Log;
  /** Consumer group: committed offsets, dead letters and gap records are kept under it. */
  group: string;
  topics: string[];
  /** Creates the task of one sub-partition. */
  taskFactory: (tp: TopicPartition, subpartition: number) => WorkerTask;
  /** Default: one sub-partition per partition. */
  partitioner?: WorkerPartitioner;
  /** Partitions to consume; default all partitions of the topics (see also `groupMembership`). */
  assignment?: TopicPartition[];
  /**
   * Share the topics' partitions with the other members of the group (other processes, other
   * machines): the log assigns partitions and moves them when members come and go.
   */
  groupMembership?: boolean;
  /** How long a revoked partition's in-flight records may take before it is handed over. Default 10 s. */
  revokeTimeoutMs?: number;
  /** Bound of each sub-partition queue in bytes; its partition pauses above it. Default 1 MiB (one fetch). */
  queueBytes?: number;
  /** A paused partition resumes when all its queues are below this fraction of the bound. Default 0.5. */
  resumeRatio?: number;
  /** A record (or batch) not completed within this counts as failed. Default 30 s. */
  processingTimeoutMs?: number;
  /** Commit contiguous offsets this often. Default 1 s. */
  commitIntervalMs?: number;
  /** `at_least_once` (default): retry, then dead-letter or stop. `none`: log, count, skip. */
  guarantee?: 'at_least_once' | 'none';
  /** Retries with exponential back-off. Default 5 attempts, 100 ms doubling up to 10 s. */
  retry?: { maxAttempts?: number; initialBackoffMs?: number; maxBackoffMs?: number };
  /** After the last attempt: `dead_letter` (default) or `stop`. */
  onExhausted?: 'dead_letter' | 'stop';
  /** Offsets kept by the sink instead of the log. */
  sinkOffsets?: SinkOffsets;
  /** Default `earliest`. */
  startFrom?: StartFrom;
  /** Default `{kind: 'full'}`. */
  catchUp?: CatchUpPolicy;
  /** Most records in one batch given to processBatch. Default 500. */
  maxBatchRecords?: number;
  /** Bytes per fetch. Default 1 MiB. */
  fetchMaxBytes?: number;
  /** How long an idle fetch waits for new records. Default 500 ms. */
  fetchWaitMs?: number;
  /** Punctuate tasks this often. Default 1 s. */
  punctuateIntervalMs?: number;
  /** Where failures and warnings are reported. Default: stderr. */
  onError?: (message: string, error?: Error) => void;
  /**
   * Called once if the runtime stops itself on an error (it processes nothing more): its owner
   * should stop too, so that a supervisor restarts the process.
   */
  onFatal?: (error: Error) => void;
}
