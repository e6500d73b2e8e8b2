/**
 * One text per Avro schema: parsing a submitted schema, rejecting invalid ones with the reason,
 * and writing it in a canonical form whose sha256 identifies it in the registry.
 */
import { createHash } from 'node:crypto';
import avro from 'avsc';
import { SchemaRegistryError } from './registry-errors.ts';

/** A schema in canonical form and the fingerprint that identifies it. */
export interface CanonicalSchema {
  /** Canonical JSON text: full names, no namespaces, attributes avsc knows plus logical-type attributes. */
  text: string;
  /** Lower-case hex sha256 of `text`. */
  fingerprint: string;
}

/** Keys that avsc exports itself; everything else on a logical type's schema is kept by the type below. */
const STRUCTURAL_KEYS = new Set([
  'type',
  'name',
  'namespace',
  'aliases',
  'doc',
  'fields',
  'items',
  'values',
  'symbols',
  'size',
  'default',
  'order',
  'logicalType',
]);

/**
 * Stands in for every logical type while canonicalising. avsc drops `logicalType` and its
 * attributes (precision, scale) from the schemas it exports unless the logical type is
 * implemented; a registry that forgot them would hand readers a different schema than the
 * writer registered. Attribute keys are sorted so that their order does not change the id.
 */
class PreservedLogicalType extends avro.types.LogicalType {
  private readonly attrs: [string, unknown][];

  constructor(schema: avro.Schema, opts?: unknown) {
    super(schema, opts);
    this.attrs = Object.entries(schema as object)
      .filter(([k]) => !STRUCTURAL_KEYS.has(k))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  protected override _fromValue(value: unknown): unknown {
    return value;
  }

  protected override _toValue(value: unknown): unknown {
    return value;
  }

  protected override _resolve(): (value: unknown) => unknown {
    return (value) => value;
  }

  protected override _export(schema: avro.Schema): void {
    for (const [k, v] of this.attrs) (schema as Record<string, unknown>)[k] = v;
  }
}

/** Every logical type name maps to {@link PreservedLogicalType}. */
const PRESERVE_ALL_LOGICAL_TYPES = new Proxy({} as Record<string, typeof PreservedLogicalType>, {
  get: () => PreservedLogicalType,
});

function invalid(message: string, cause?: unknown): SchemaRegistryError {
  return new SchemaRegistryError('RECKON_REGISTRY_INVALID_SCHEMA', message, { cause });
}

/**
 * Parses a schema given as JSON text or as an object and returns its canonical form.
 * Throws `RECKON_REGISTRY_INVALID_SCHEMA` (Confluent 42201) naming the problem.
 */
export function canonicalAvroSchema(schema: unknown): CanonicalSchema {
  let parsed: unknown = schema;
  if (typeof schema === 'string') {
    if (schema.trim() === '') throw invalid('the schema is empty: send an Avro schema as JSON text');
    try {
      parsed = JSON.parse(schema);
    } catch (err) {
      throw invalid(`the schema is not valid JSON: ${(err as Error).message}`, err);
    }
  }
  if (parsed === null || (typeof parsed !== 'string' && typeof parsed !== 'object')) {
    throw invalid(
      `the schema must be an Avro schema (a JSON object, array or type name), got ${JSON.stringify(parsed)}`,
    );
  }
  let text: string;
  try {
    const type = avro.Type.forSchema(parsed as avro.Schema, {
      // Confluent's (Java) parser requires names on records, enums and fixed types.
      noAnonymousTypes: true,
      logicalTypes: PRESERVE_ALL_LOGICAL_TYPES,
    });
    text = JSON.stringify(type.schema({ exportAttrs: true }));
  } catch (err) {
    if (err instanceof RangeError) throw invalid('invalid Avro schema: it is nested too deeply', err);
    throw invalid(`invalid Avro schema: ${(err as Error).message}`, err);
  }
  return { text, fingerprint: createHash('sha256').update(text).digest('hex') };
}

/**
 * The avsc type of a canonical schema without logical types (their underlying types only), as
 * the Avro specification resolves schemas: compatibility is judged on these.
 */
export function resolutionType(canonicalText: string): avro.Type {
  return avro.Type.forSchema(JSON.parse(canonicalText) as avro.Schema);
}
