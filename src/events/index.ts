/** Events: the wire contract, validation, exact money, timestamps and Avro encoding. */
export {
  avroType,
  CLICK_SCHEMA,
  CONFLUENT_MAGIC_BYTE,
  clickType,
  decodeClick,
  decodeEmission,
  EMISSION_SCHEMA,
  emissionType,
  encodeClick,
  encodeEmission,
  frameConfluent,
  unframeConfluent,
  type WriterTypeLookup,
} from './avro.ts';
export { type EventDecoder, registryDecoder } from './decoder.ts';
export { ReckonError } from './errors.ts';
export { eventToJsonLine, eventToWire } from './json.ts';
export {
  formatMoney,
  MAX_PRICE_MICROS,
  MICROS_PER_UNIT,
  type Micros,
  MONEY_SCALE,
  parseMoney,
  sumMoney,
} from './money.ts';
export { compareTsThenId, DEFAULT_STATS_RULES, ipBlocklistMatcher, type StatsRules } from './rules.ts';
export { describeType, formatTimestamp, MAX_TIMESTAMP_MS, parseRfc3339, parseTimestamp } from './time.ts';
export { type Click, type Emission, EVENT_TYPES, type EventType, type Offer, type ReckonEvent } from './types.ts';
export {
  describeRejection,
  MAX_ID_LENGTH,
  MAX_OFFERS,
  type ParseResult,
  parseEventLine,
  type Rejection,
  validateEvent,
} from './validate.ts';
export { type CanonicalSchema, canonicalAvroSchema } from './canonical-schema.ts';
export {
  COMPATIBILITY_LEVELS,
  type CompatibilityLevel,
  compatibilityProblems,
  DEFAULT_COMPATIBILITY,
  isTransitive,
  parseCompatibilityLevel,
  type PreviousSchema,
} from './compatibility.ts';
export {
  CONFLUENT_ERROR_CODES,
  registryHttpStatus,
  SchemaRegistryError,
  type SchemaRegistryErrorCode,
} from './registry-errors.ts';
export {
  type CompatibilityResult,
  type InsertVersionResult,
  MAX_SUBJECT_LENGTH,
  parseSchemaVersion,
  type RegisteredSchema,
  SchemaRegistry,
  type SchemaRegistryOptions,
  type SchemaStore,
  type SchemaVersion,
} from './registry.ts';
export { AvroOutput, EventTranscoder, type TranscodedEvent } from './transcode.ts';
