/** The log: one interface, an embedded segment log and a Kafka adapter. */
export { BatchBuilder } from './batch.ts';
export { EmbeddedLog, type EmbeddedLogOptions, LOG_FORMAT_VERSION, openEmbeddedLog } from './embedded.ts';
export { checkName, LogErrors } from './errors.ts';
export { processAlive } from './files.ts';
export { KafkaLog, type KafkaLogOptions } from './kafka.ts';
export { murmur2, partitionForKey, partitionForKeyBytes } from './murmur2.ts';
export { assignRoundRobin, GROUP_HEARTBEAT_MS, GROUP_SESSION_MS } from './group.ts';
export type {
  AppendedRange,
  AssignmentListener,
  EncodedBatch,
  GroupMember,
  HeaderValue,
  Log,
  LogRecord,
  PartitionOffset,
  ReadOptions,
  RecordInput,
  RetentionPolicy,
  RetentionReport,
  TopicPartition,
  TopicSpec,
} from './types.ts';
