/** The `Log` interface: what every part of reckon sees of the log, embedded or Kafka. */

/** A header value; strings are stored as UTF-8. */
export type HeaderValue = Buffer | string;

/** A record to append. */
export interface RecordInput {
  /** Decides the partition (Kafka's murmur2) unless `partition` is given; null spreads records round-robin. */
  key?: Buffer | string | null;
  value: Buffer;
  /** Event or producer time, epoch ms; default now. */
  timestamp?: number;
  headers?: Record<string, HeaderValue>;
  /** An explicit partition, overriding the key. */
  partition?: number;
}

/** A record read back from the log. */
export interface LogRecord {
  partition: number;
  /** Dense per partition: 0, 1, 2, ... (below the earliest offset, records have been removed by retention). */
  offset: number;
  key: Buffer | null;
  value: Buffer;
  timestamp: number;
  headers: Readonly<Record<string, Buffer>>;
  /** Bytes of key and value, for memory accounting without touching them. */
  size: number;
}

/** Retention: whole segments are removed once older than `ms` or while the partition exceeds `bytes`. */
export interface RetentionPolicy {
  ms?: number;
  bytes?: number;
}

/** A topic and its fixed number of partitions. */
export interface TopicSpec {
  name: string;
  partitions: number;
  retention?: RetentionPolicy;
}

/**
 * Records of one partition already laid out as one batch of the embedded log's format (see
 * `BatchBuilder`); the writer stamps its base offset and CRC, so it must not be shared.
 */
export interface EncodedBatch {
  partition: number;
  bytes: Buffer;
  /** How many records the batch holds (its header says the same). */
  count: number;
}

/** Where an append put one partition's share of a batch. */
export interface AppendedRange {
  partition: number;
  baseOffset: number;
  count: number;
}

/** Options of a read. */
export interface ReadOptions {
  /** At most about this many bytes of records (at least one record is returned when one exists). Default 1 MiB. */
  maxBytes?: number;
  /** When nothing is there yet, wait up to this long for records to arrive (no busy polling). Default 0. */
  waitMs?: number;
  /** Stops a waiting read early. */
  signal?: AbortSignal;
}

/** A committed consumer position: the next offset the group will read. */
export interface PartitionOffset {
  partition: number;
  offset: number;
}

/** A topic and one of its partitions. */
export interface TopicPartition {
  topic: string;
  partition: number;
}

/**
 * Called with a member's whole new assignment whenever it changes: at once, also while an earlier
 * call is still applying its assignment. The listener orders its own work (and may skip to the newest).
 */
export type AssignmentListener = (assigned: TopicPartition[]) => Promise<void>;

/** A member of a consumer group: the log decides which partitions each member owns. */
export interface GroupMember {
  readonly memberId: string;
  /** Commits the group's next offsets as this member (Kafka needs the member's generation). */
  commit(topic: string, offsets: readonly PartitionOffset[]): Promise<void>;
  /** Leaves the group; its partitions go to the remaining members. */
  leave(): Promise<void>;
}

/** What a retention pass removed. */
export interface RetentionReport {
  segmentsDeleted: number;
  bytesDeleted: number;
}

/**
 * The log: topics of fixed partitions, durable batched appends, reads by offset, consumer-group
 * offsets. Both implementations (embedded segment log, Kafka) pass the same contract suite.
 */
export interface Log {
  /** Which implementation this is, for messages and metrics. */
  readonly kind: 'embedded' | 'kafka';
  /** Creates a topic; succeeds without change when it exists with the same partition count. */
  createTopic(spec: TopicSpec): Promise<void>;
  /** The partition count of a topic; throws RECKON_LOG_UNKNOWN_TOPIC when there is none. */
  partitionCount(topic: string): Promise<number>;
  /** Appends records; resolves only when every one of them is durable. */
  append(topic: string, records: readonly RecordInput[]): Promise<AppendedRange[]>;
  /**
   * Appends batches laid out by `BatchBuilder` for this topic's partitions, all or none; resolves
   * when every record is durable. Only where the log's own format is the batch format (the
   * embedded log); elsewhere append records.
   */
  appendEncoded?(topic: string, batches: readonly EncodedBatch[]): Promise<AppendedRange[]>;
  /** Reads records at and after `offset` of one partition, in offset order. */
  read(topic: string, partition: number, offset: number, options?: ReadOptions): Promise<LogRecord[]>;
  /** The first offset still in the partition. */
  earliestOffset(topic: string, partition: number): Promise<number>;
  /** The offset the next appended record will get (the end of the durable log). */
  latestOffset(topic: string, partition: number): Promise<number>;
  /** Durably records the group's next offsets. */
  commitOffsets(group: string, topic: string, offsets: readonly PartitionOffset[]): Promise<void>;
  /** The group's committed next offsets by partition; partitions never committed are absent. */
  committedOffsets(group: string, topic: string): Promise<Map<number, number>>;
  /**
   * Joins a consumer group for `topics`. Partitions are spread over the live members and moved
   * when members come and go (also when one is killed); `onAssignment` gets each new assignment.
   */
  joinGroup(group: string, topics: string[], onAssignment: AssignmentListener): Promise<GroupMember>;
  /** Resolves when appends can be made now; throws a ReckonError saying why not (for readiness checks). */
  checkWritable(): Promise<void>;
  /** Removes whole segments past the topics' retention. */
  applyRetention(now?: number): Promise<RetentionReport>;
  close(): Promise<void>;
}
