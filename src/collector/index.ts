/** Collector: HTTP ingest into the log, with tokens, limits, back-pressure and a dead-letter store. */
export { type AccessHook, accessHook, type Scope, type Tokens } from './auth.ts';
export {
  type BodyProblem,
  CLICKS_TOPIC,
  EMISSIONS_TOPIC,
  type IngestLimits,
  isBodyProblem,
  jsonTooDeepAt,
  MAX_JSON_DEPTH,
  type PreparedBatch,
  prepareJson,
  prepareNdjson,
  type RejectedLine,
  type RejectionKind,
  type WriterSchemaIds,
} from './ingest.ts';
export { CollectorMetrics } from './metrics.ts';
export { ParsePool } from './parse-pool.ts';
export { listRejected, REJECTED_TOPIC, type RejectedRecord } from './rejected.ts';
export { type CollectorLimits, type CollectorOptions, collectorRoutes } from './routes.ts';
export { ensureCollectorTopics } from './topics.ts';
export {
  SCHEMA_REGISTRY_MEDIA_TYPE,
  type RegistryAccessHook,
  schemaRegistryRoutes,
  type SchemaRegistryRoutesOptions,
} from './registry-routes.ts';
