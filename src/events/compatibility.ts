/**
 * Schema compatibility as Confluent defines it, judged with Avro schema resolution (avsc's
 * resolvers): a reader schema can read data written with a writer schema when a resolver from
 * the writer to the reader exists.
 */
import avro from 'avsc';
import { SchemaRegistryError } from './registry-errors.ts';

/** A subject's compatibility level, as Confluent names them. */
export type CompatibilityLevel =
  'BACKWARD' | 'BACKWARD_TRANSITIVE' | 'FORWARD' | 'FORWARD_TRANSITIVE' | 'FULL' | 'FULL_TRANSITIVE' | 'NONE';

/** Every compatibility level. */
export const COMPATIBILITY_LEVELS: readonly CompatibilityLevel[] = [
  'BACKWARD',
  'BACKWARD_TRANSITIVE',
  'FORWARD',
  'FORWARD_TRANSITIVE',
  'FULL',
  'FULL_TRANSITIVE',
  'NONE',
];

/** The level that applies when neither the subject nor the registry sets one (Confluent's default). */
export const DEFAULT_COMPATIBILITY: CompatibilityLevel = 'BACKWARD';

/** Parses a level case-insensitively; throws `RECKON_REGISTRY_INVALID_COMPATIBILITY` (42203) otherwise. */
export function parseCompatibilityLevel(value: unknown): CompatibilityLevel {
  const upper = typeof value === 'string' ? value.trim().toUpperCase() : undefined;
  const level = COMPATIBILITY_LEVELS.find((l) => l === upper);
  if (level === undefined) {
    throw new SchemaRegistryError(
      'RECKON_REGISTRY_INVALID_COMPATIBILITY',
      `invalid compatibility level ${JSON.stringify(value)}: use one of ${COMPATIBILITY_LEVELS.join(', ')}`,
    );
  }
  return level;
}

/** True when the level checks against every earlier version rather than the latest only. */
export function isTransitive(level: CompatibilityLevel): boolean {
  return level.endsWith('_TRANSITIVE');
}

/** One earlier version of a subject, parsed for resolution. */
export interface PreviousSchema {
  version: number;
  type: avro.Type;
}

/** Whether `reader` can read data written with `writer`; the reason (and where) when not. */
function readProblem(reader: avro.Type, writer: avro.Type): string | undefined {
  try {
    reader.createResolver(writer);
    return undefined;
  } catch (err) {
    const root = reader.name ?? `the top-level ${reader.typeName}`;
    let where = root;
    try {
      where = locate(reader, writer, root);
    } catch {
      // Too deep to narrow down: the root will do.
    }
    return `${(err as Error).message} (at ${where})`;
  }
}

function resolves(reader: avro.Type, writer: avro.Type): boolean {
  try {
    reader.createResolver(writer);
    return true;
  } catch {
    return false;
  }
}

/**
 * Narrows a failed resolution down to the innermost field, array items or map values that
 * fail, so that the message says where the schemas disagree (avsc's message often does not).
 */
function locate(reader: avro.Type, writer: avro.Type, path: string): string {
  if (avro.Type.isType(reader, 'record') && avro.Type.isType(writer, 'record')) {
    const writerRecord = writer as avro.types.RecordType;
    for (const field of (reader as avro.types.RecordType).fields) {
      const source =
        writerRecord.fields.find((f) => f.name === field.name) ??
        writerRecord.fields.find((f) => field.aliases.includes(f.name));
      if (source !== undefined && !resolves(field.type, source.type)) {
        return locate(field.type, source.type, `${path}.${field.name}`);
      }
    }
  } else if (avro.Type.isType(reader, 'array') && avro.Type.isType(writer, 'array')) {
    const items = (t: avro.Type) => (t as avro.types.ArrayType).itemsType;
    if (!resolves(items(reader), items(writer))) return locate(items(reader), items(writer), `${path}[]`);
  } else if (avro.Type.isType(reader, 'map') && avro.Type.isType(writer, 'map')) {
    const values = (t: avro.Type) => (t as avro.types.MapType).valuesType as avro.Type;
    if (!resolves(values(reader), values(writer))) return locate(values(reader), values(writer), `${path}{}`);
  }
  return path;
}

/**
 * Checks a new schema against earlier versions (ascending) under a level and returns one
 * message per failed check; an empty list means compatible. Non-transitive levels check the
 * last of `previous` only.
 */
export function compatibilityProblems(
  candidate: avro.Type,
  previous: readonly PreviousSchema[],
  level: CompatibilityLevel,
): string[] {
  if (level === 'NONE') return [];
  const against = isTransitive(level) ? previous : previous.slice(-1);
  const backward = level.startsWith('BACKWARD') || level.startsWith('FULL');
  const forward = level.startsWith('FORWARD') || level.startsWith('FULL');
  const problems: string[] = [];
  for (const p of against) {
    if (backward) {
      const problem = readProblem(candidate, p.type);
      if (problem !== undefined) {
        problems.push(`${level}: the new schema cannot read data written with version ${p.version}: ${problem}`);
      }
    }
    if (forward) {
      const problem = readProblem(p.type, candidate);
      if (problem !== undefined) {
        problems.push(`${level}: version ${p.version} cannot read data written with the new schema: ${problem}`);
      }
    }
  }
  return problems;
}
