/**
 * Typed errors of the schema registry. Each carries reckon's stable code and the error code a
 * Confluent Schema Registry answers with, so the HTTP layer can answer as clients expect.
 */
import { ReckonError } from './errors.ts';

/** Stable codes of the registry's errors. */
export type SchemaRegistryErrorCode =
  | 'RECKON_REGISTRY_SUBJECT_NOT_FOUND'
  | 'RECKON_REGISTRY_VERSION_NOT_FOUND'
  | 'RECKON_REGISTRY_SCHEMA_NOT_FOUND'
  | 'RECKON_REGISTRY_SUBJECT_CONFIG_NOT_FOUND'
  | 'RECKON_REGISTRY_INCOMPATIBLE'
  | 'RECKON_REGISTRY_INVALID_SCHEMA'
  | 'RECKON_REGISTRY_INVALID_VERSION'
  | 'RECKON_REGISTRY_INVALID_COMPATIBILITY'
  | 'RECKON_REGISTRY_INVALID_SUBJECT'
  | 'RECKON_REGISTRY_BUSY';

/** Confluent's `error_code` for each of reckon's codes. */
export const CONFLUENT_ERROR_CODES: Readonly<Record<SchemaRegistryErrorCode, number>> = {
  RECKON_REGISTRY_SUBJECT_NOT_FOUND: 40401,
  RECKON_REGISTRY_VERSION_NOT_FOUND: 40402,
  RECKON_REGISTRY_SCHEMA_NOT_FOUND: 40403,
  RECKON_REGISTRY_SUBJECT_CONFIG_NOT_FOUND: 40408,
  RECKON_REGISTRY_INCOMPATIBLE: 409,
  RECKON_REGISTRY_INVALID_SCHEMA: 42201,
  RECKON_REGISTRY_INVALID_VERSION: 42202,
  RECKON_REGISTRY_INVALID_COMPATIBILITY: 42203,
  RECKON_REGISTRY_INVALID_SUBJECT: 42208,
  RECKON_REGISTRY_BUSY: 50001,
};

/** An error of the schema registry: `code` is reckon's, `errorCode` is Confluent's `error_code`. */
export class SchemaRegistryError extends ReckonError {
  /** Confluent's numeric error code, e.g. 40401; its first three digits are the HTTP status. */
  readonly errorCode: number;

  constructor(code: SchemaRegistryErrorCode, message: string, options: { retriable?: boolean; cause?: unknown } = {}) {
    super(code, message, options);
    this.name = 'SchemaRegistryError';
    this.errorCode = CONFLUENT_ERROR_CODES[code];
  }
}

/** The HTTP status for a Confluent error code: 40401 -> 404, 42201 -> 422, 409 -> 409. */
export function registryHttpStatus(errorCode: number): number {
  return errorCode >= 1000 ? Math.floor(errorCode / 100) : errorCode;
}
