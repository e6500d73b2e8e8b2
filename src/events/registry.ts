/**
 * reckon's Confluent-compatible schema registry: subjects with ascending versions of Avro
 * schemas, global schema ids, compatibility levels, and writer-schema lookup for decoding.
 * Storage is behind {@link SchemaStore} (SQLite embedded, PostgreSQL distributed).
 */
import type avro from 'avsc';
import {
  avroType,
  CLICK_SCHEMA,
  clickType,
  EMISSION_SCHEMA,
  emissionType,
  unframeConfluent,
  type WriterTypeLookup,
} from './avro.ts';
import { type CanonicalSchema, canonicalAvroSchema, resolutionType } from './canonical-schema.ts';
import {
  type CompatibilityLevel,
  compatibilityProblems,
  DEFAULT_COMPATIBILITY,
  parseCompatibilityLevel,
  type PreviousSchema,
} from './compatibility.ts';
import { SchemaRegistryError } from './registry-errors.ts';

/** One version of a subject. */
export interface SchemaVersion {
  subject: string;
  version: number;
  /** Global schema id: the same schema has the same id under every subject. */
  id: number;
  /** The schema in canonical JSON text. */
  schema: string;
}

/** What {@link SchemaStore.insertVersion} did. */
export type InsertVersionResult =
  | { status: 'inserted'; id: number; version: number }
  /** The subject's latest version is no longer the one expected, or it already holds the schema: read again. */
  | { status: 'conflict' };

/** Durable storage of the registry; every method may be called concurrently, also from other processes. */
export interface SchemaStore {
  /** The canonical text of the schema with this global id, or undefined. */
  schemaById(id: number): Promise<string | undefined>;
  /** The global id of the schema with this fingerprint, or undefined when it was never registered. */
  findSchemaId(fingerprint: string): Promise<number | undefined>;
  /** Every subject with at least one version, sorted. */
  subjects(): Promise<string[]>;
  /** A subject's versions in ascending order; empty when the subject does not exist. */
  versions(subject: string): Promise<SchemaVersion[]>;
  /** One version of a subject, or undefined. */
  version(subject: string, version: number): Promise<SchemaVersion | undefined>;
  /** A subject's highest version, or undefined when it has none. */
  latest(subject: string): Promise<SchemaVersion | undefined>;
  /**
   * In one transaction: reuses the id of the schema with this fingerprint or creates one, and
   * appends it to the subject as version `expectedLatestVersion + 1` (0 = no version yet).
   * Answers 'conflict' and changes nothing when the subject's latest version is not
   * `expectedLatestVersion` any more or the subject already holds the schema.
   */
  insertVersion(
    subject: string,
    schema: string,
    fingerprint: string,
    expectedLatestVersion: number,
  ): Promise<InsertVersionResult>;
  /** The compatibility level set for a subject, or globally for null; undefined when none is set. */
  compatibility(subject: string | null): Promise<CompatibilityLevel | undefined>;
  /** Sets the compatibility level of a subject, or the global one for null. */
  setCompatibility(subject: string | null, level: CompatibilityLevel): Promise<void>;
  /** Releases the connection(s). */
  close(): Promise<void>;
}

/** Id and version of a registered schema. */
export interface RegisteredSchema {
  id: number;
  version: number;
}

/** Outcome of a compatibility check: one message per failed check. */
export interface CompatibilityResult {
  isCompatible: boolean;
  messages: string[];
}

/** Options of {@link SchemaRegistry}. */
export interface SchemaRegistryOptions {
  /**
   * Attempts of a registration that meets concurrent writers. Each conflict means another
   * writer appended a version, so k concurrent writers need at most k attempts. Default 10.
   */
  maxAttempts?: number;
}

/** Longest subject name accepted. */
export const MAX_SUBJECT_LENGTH = 1024;
const MAX_VERSION = 2 ** 31 - 1;
// eslint-disable-next-line no-control-regex -- control characters are what this rejects
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;

function checkSubject(subject: string): void {
  if (subject === '' || subject.length > MAX_SUBJECT_LENGTH || CONTROL_CHARACTERS.test(subject)) {
    throw new SchemaRegistryError(
      'RECKON_REGISTRY_INVALID_SUBJECT',
      `invalid subject ${JSON.stringify(subject)}: a subject is 1 to ${MAX_SUBJECT_LENGTH} characters without control characters`,
    );
  }
}

/** Parses a version as in Confluent's paths: a number from 1 to 2^31-1, `latest` or -1 (= latest). */
export function parseSchemaVersion(value: string | number): number | 'latest' {
  const text = String(value).trim();
  if (text === 'latest' || text === '-1') return 'latest';
  const n = /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_VERSION) {
    throw new SchemaRegistryError(
      'RECKON_REGISTRY_INVALID_VERSION',
      `invalid version ${JSON.stringify(value)}: use a number from 1 to ${MAX_VERSION} or "latest"`,
    );
  }
  return n;
}

function subjectNotFound(subject: string): SchemaRegistryError {
  return new SchemaRegistryError('RECKON_REGISTRY_SUBJECT_NOT_FOUND', `subject ${JSON.stringify(subject)} not found`);
}

/** reckon's own schemas, so that decoding records written with them takes avsc's resolver-free path. */
let readerTypes: Map<string, avro.Type> | undefined;
function readerTypeOf(canonicalText: string): avro.Type | undefined {
  readerTypes ??= new Map([
    [canonicalAvroSchema(EMISSION_SCHEMA).text, emissionType],
    [canonicalAvroSchema(CLICK_SCHEMA).text, clickType],
  ]);
  return readerTypes.get(canonicalText);
}

/** The schema registry over a {@link SchemaStore}; what Confluent's REST API exposes, as methods. */
export class SchemaRegistry {
  private readonly store: SchemaStore;
  private readonly maxAttempts: number;
  /** Writer types by id, with reckon's logical types. Ids never change their schema, so entries never go stale. */
  private readonly writerTypes = new Map<number, avro.Type>();
  /** Types for compatibility checks by id. */
  private readonly resolutionTypes = new Map<number, avro.Type>();
  private readonly lookupWriter: WriterTypeLookup = (id) => this.writerTypes.get(id);

  constructor(store: SchemaStore, options: SchemaRegistryOptions = {}) {
    this.store = store;
    this.maxAttempts = options.maxAttempts ?? 10;
  }

  /**
   * Registers a schema under a subject and returns its global id and version. Idempotent: a
   * schema the subject already holds returns its existing id and version. A schema that
   * breaks the subject's compatibility level is refused with `RECKON_REGISTRY_INCOMPATIBLE` (409).
   */
  async register(subject: string, schema: string | object): Promise<RegisteredSchema> {
    checkSubject(subject);
    const canonical = canonicalAvroSchema(schema);
    for (let attempt = 1; ; attempt++) {
      const history = await this.store.versions(subject);
      const existing = await this.existingVersion(history, canonical);
      if (existing !== undefined) return { id: existing.id, version: existing.version };
      const level = await this.effectiveLevel(subject);
      const problems = compatibilityProblems(resolutionType(canonical.text), this.previous(history), level);
      if (problems.length > 0) {
        throw new SchemaRegistryError(
          'RECKON_REGISTRY_INCOMPATIBLE',
          `schema being registered is incompatible with an earlier schema of subject ${JSON.stringify(subject)} ` +
            `(compatibility ${level}): ${problems.join('; ')}`,
        );
      }
      const expected = history.at(-1)?.version ?? 0;
      const result = await this.store.insertVersion(subject, canonical.text, canonical.fingerprint, expected);
      if (result.status === 'inserted') return { id: result.id, version: result.version };
      if (attempt >= this.maxAttempts) {
        throw new SchemaRegistryError(
          'RECKON_REGISTRY_BUSY',
          `subject ${JSON.stringify(subject)} changed during each of ${attempt} attempts to register: retry later`,
          { retriable: true },
        );
      }
    }
  }

  /** Finds a schema among a subject's versions (Confluent's `POST /subjects/{subject}`). */
  async lookup(subject: string, schema: string | object): Promise<SchemaVersion> {
    checkSubject(subject);
    const canonical = canonicalAvroSchema(schema);
    const history = await this.store.versions(subject);
    if (history.length === 0) throw subjectNotFound(subject);
    const found = await this.existingVersion(history, canonical);
    if (found === undefined) {
      throw new SchemaRegistryError(
        'RECKON_REGISTRY_SCHEMA_NOT_FOUND',
        `schema not found under subject ${JSON.stringify(subject)}: register it first`,
      );
    }
    return found;
  }

  /** The canonical text of the schema with this id; `RECKON_REGISTRY_SCHEMA_NOT_FOUND` (40403) otherwise. */
  async schemaById(id: number): Promise<string> {
    const text = Number.isSafeInteger(id) && id >= 0 ? await this.store.schemaById(id) : undefined;
    if (text === undefined) {
      throw new SchemaRegistryError('RECKON_REGISTRY_SCHEMA_NOT_FOUND', `schema ${id} not found`);
    }
    return text;
  }

  /** Every subject, sorted. */
  subjects(): Promise<string[]> {
    return this.store.subjects();
  }

  /** A subject's version numbers, ascending; `RECKON_REGISTRY_SUBJECT_NOT_FOUND` (40401) for an unknown subject. */
  async versions(subject: string): Promise<number[]> {
    const history = await this.store.versions(subject);
    if (history.length === 0) throw subjectNotFound(subject);
    return history.map((v) => v.version);
  }

  /** One version of a subject, or its latest; 40401 for an unknown subject, 40402 for an unknown version. */
  async getVersion(subject: string, version: number | 'latest'): Promise<SchemaVersion> {
    const found = version === 'latest' ? await this.store.latest(subject) : await this.store.version(subject, version);
    if (found !== undefined) return found;
    if ((await this.store.latest(subject)) === undefined) throw subjectNotFound(subject);
    throw new SchemaRegistryError(
      'RECKON_REGISTRY_VERSION_NOT_FOUND',
      `version ${version} of subject ${JSON.stringify(subject)} not found`,
    );
  }

  /**
   * Checks a schema against a subject under its compatibility level without registering it:
   * against `latest` (every version for transitive levels), or one given version.
   */
  async checkCompatibility(
    subject: string,
    schema: string | object,
    version: number | 'latest' = 'latest',
  ): Promise<CompatibilityResult> {
    checkSubject(subject);
    const canonical = canonicalAvroSchema(schema);
    let previous: SchemaVersion[];
    if (version === 'latest') {
      // Like Confluent: anything is compatible with a subject that has no version yet.
      previous = await this.store.versions(subject);
    } else {
      previous = [await this.getVersion(subject, version)];
    }
    const level = await this.effectiveLevel(subject);
    const messages = compatibilityProblems(resolutionType(canonical.text), this.previous(previous), level);
    return { isCompatible: messages.length === 0, messages };
  }

  /**
   * The compatibility level of a subject, or the global one for null. A subject without its own
   * level answers `RECKON_REGISTRY_SUBJECT_CONFIG_NOT_FOUND` (40408), as Confluent does, unless
   * `defaultToGlobal` is set.
   */
  async getConfig(
    subject: string | null = null,
    options: { defaultToGlobal?: boolean } = {},
  ): Promise<CompatibilityLevel> {
    if (subject === null) return (await this.store.compatibility(null)) ?? DEFAULT_COMPATIBILITY;
    checkSubject(subject);
    const own = await this.store.compatibility(subject);
    if (own !== undefined) return own;
    if (options.defaultToGlobal) return this.getConfig(null);
    throw new SchemaRegistryError(
      'RECKON_REGISTRY_SUBJECT_CONFIG_NOT_FOUND',
      `subject ${JSON.stringify(subject)} does not have subject-level compatibility configured`,
    );
  }

  /** Sets the compatibility level of a subject, or the global one for null; returns the parsed level. */
  async setConfig(subject: string | null, level: unknown): Promise<CompatibilityLevel> {
    if (subject !== null) checkSubject(subject);
    const parsed = parseCompatibilityLevel(level);
    await this.store.setCompatibility(subject, parsed);
    return parsed;
  }

  /**
   * Loads the writer type of a schema id into the cache and returns it, with reckon's logical
   * types (decimals as bigint micros); 40403 for an unknown id.
   */
  async typeFor(id: number): Promise<avro.Type> {
    const cached = this.writerTypes.get(id);
    if (cached !== undefined) return cached;
    const text = await this.schemaById(id);
    const type = readerTypeOf(text) ?? avroType(JSON.parse(text));
    this.writerTypes.set(id, type);
    return type;
  }

  /** Loads the writer type of a schema id into the cache; false when no schema has that id. */
  async preload(id: number): Promise<boolean> {
    try {
      await this.typeFor(id);
      return true;
    } catch (err) {
      if (err instanceof SchemaRegistryError && err.code === 'RECKON_REGISTRY_SCHEMA_NOT_FOUND') return false;
      throw err;
    }
  }

  /**
   * A synchronous lookup over the cache filled by {@link typeFor}/{@link preload}, for
   * `decodeEmission`/`decodeClick`; undefined for an id not loaded yet.
   */
  writerTypeLookup(): WriterTypeLookup {
    return this.lookupWriter;
  }

  /**
   * Decodes a Confluent-framed message with a decoder such as `decodeClick`, loading its writer
   * schema first when needed. An unknown id fails with the decoder's retriable error.
   */
  async decode<T>(message: Buffer, decoder: (message: Buffer, writerOf: WriterTypeLookup) => T): Promise<T> {
    const { schemaId } = unframeConfluent(message);
    if (!this.writerTypes.has(schemaId)) await this.preload(schemaId);
    return decoder(message, this.lookupWriter);
  }

  private async existingVersion(
    history: readonly SchemaVersion[],
    canonical: CanonicalSchema,
  ): Promise<SchemaVersion | undefined> {
    if (history.length === 0) return undefined;
    const id = await this.store.findSchemaId(canonical.fingerprint);
    return id === undefined ? undefined : history.find((v) => v.id === id);
  }

  private async effectiveLevel(subject: string): Promise<CompatibilityLevel> {
    return (await this.store.compatibility(subject)) ?? (await this.store.compatibility(null)) ?? DEFAULT_COMPATIBILITY;
  }

  private previous(history: readonly SchemaVersion[]): PreviousSchema[] {
    return history.map((v) => {
      let type = this.resolutionTypes.get(v.id);
      if (type === undefined) {
        type = resolutionType(v.schema);
        this.resolutionTypes.set(v.id, type);
      }
      return { version: v.version, type };
    });
  }
}
