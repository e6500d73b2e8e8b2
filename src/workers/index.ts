/** Workers: the consumer runtime every reckon consumer runs on. */
export {
  type DeadLetter,
  deadLetterTopic,
  ensureGroupTopics,
  type Gap,
  gapTopic,
  listDeadLetters,
  listGaps,
  recordGap,
  replayDeadLetters,
} from './dead-letters.ts';
export { ContiguousOffsetTracker } from './offsets.ts';
export { type PartitionStatus, stopOnSignals, type WorkerStats, WorkerRuntime } from './runtime.ts';
export { type GroupSample, ScalingAdvisor } from './scaling.ts';
export { type SupervisorOptions, WorkerSupervisor } from './supervisor.ts';
export type {
  CatchUpPolicy,
  RecordObserver,
  SinkOffsets,
  StartFrom,
  TaskContext,
  TopicPartition,
  TopicRecord,
  WorkerOptions,
  WorkerPartitioner,
  WorkerRecord,
  WorkerTask,
} from './types.ts';
export { type PartStatus, publishStatus, readStatuses } from './status-file.ts';
export { siblingModule, startModuleThread } from './threads.ts';
