/** Lake: the archiver into Hive-partitioned Parquet, its layout, manifests, sealed hours and late arrivals. */
export { Archiver, type ArchiverFigures, type ArchiverOptions } from './archiver.ts';
export {
  compactedFileName,
  HOUR_MS,
  hourDirectory,
  hourGlob,
  hourPartition,
  hourStartOf,
  manifestPath,
  partFileName,
  topicGlob,
} from './layout.ts';
export {
  type CompactedHour,
  COMPACTION_CRASH_AT,
  COMPACTION_STEPS,
  compactSealedHours,
  type CompactionJournal,
  type CompactionOptions,
  type CompactionReport,
  lakeHourFiles,
  lakeTopicFiles,
  recoverCompactions,
} from './compaction.ts';
export {
  type AwaitLakeInput,
  awaitLakeInput,
  describeHours,
  type LakeBacklog,
  type LakeInputState,
  lakeInputState,
  type LogEndsReader,
  readLogEnds,
} from './completeness.ts';
export { lakeOffsets, lakeRowsByHour, type ManifestEntry, readManifest } from './manifest.ts';
export { LAKE_SCHEMAS } from './parquet.ts';
export { dropLakeDays } from './retention.ts';
export type { ArchivedKind } from './staging.ts';
export {
  DEFAULT_ALLOWED_LATENESS_MS,
  isHourSealed,
  lateArrivals,
  type LateArrival,
  sealedHours,
  type SealedHour,
} from './sealing.ts';
