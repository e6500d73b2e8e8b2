/** The log: one interface, an embedded segment log and a Kafka adapter. */
export { EmbeddedLog, type EmbeddedLogOptions, LOG_FORMAT_VERSION, openEmbeddedLog } from './embedded.ts';
export { checkName, LogErrors } from './errors.ts';
export { KafkaLog, type KafkaLogOptions } from './kafka.ts';
export { murmur2, partitionForKey, partitionForKeyBytes } from './murmur2.ts';
export { openLog } from './open.ts';
export type {
  AppendedRange,
  HeaderValue,
  Log,
  LogRecord,
  PartitionOffset,
  ReadOptions,
  RecordInput,
  RetentionPolicy,
  RetentionReport,
  TopicSpec,
} from './types.ts';
