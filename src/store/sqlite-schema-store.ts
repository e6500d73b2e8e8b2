/**
 * The registry's storage in a SQLite file (embedded mode), through better-sqlite3. Calls are
 * synchronous underneath; the async surface is the {@link SchemaStore} seam's.
 */
import {
  type CompatibilityLevel,
  type InsertVersionResult,
  parseCompatibilityLevel,
  type SchemaStore,
  type SchemaVersion,
} from '../events/index.ts';
import { GLOBAL_CONFIG_SUBJECT } from './migrations.ts';
import { openSqliteDatabase } from './sqlite-database.ts';

interface VersionRow {
  subject: string;
  version: number;
  id: number;
  schema: string;
}

const VERSION_COLUMNS = `v.subject AS subject, v.version AS version, s.id AS id, s.schema AS schema
  FROM registry_versions v JOIN registry_schemas s ON s.id = v.schema_id`;

function toVersion(row: VersionRow | undefined): SchemaVersion | undefined {
  return row === undefined ? undefined : { subject: row.subject, version: row.version, id: row.id, schema: row.schema };
}

/**
 * Opens (creating it and its folder if needed) the SQLite file at `path` as a
 * {@link SchemaStore}, applying missing migrations.
 */
export async function openSqliteSchemaStore(path: string): Promise<SchemaStore> {
  const db = openSqliteDatabase(path);

  const q = {
    schemaById: db.prepare('SELECT schema FROM registry_schemas WHERE id = ?'),
    schemaIdByFingerprint: db.prepare('SELECT id FROM registry_schemas WHERE fingerprint = ?'),
    subjects: db.prepare('SELECT DISTINCT subject FROM registry_versions ORDER BY subject'),
    versions: db.prepare(`SELECT ${VERSION_COLUMNS} WHERE v.subject = ? ORDER BY v.version`),
    version: db.prepare(`SELECT ${VERSION_COLUMNS} WHERE v.subject = ? AND v.version = ?`),
    latest: db.prepare(`SELECT ${VERSION_COLUMNS} WHERE v.subject = ? ORDER BY v.version DESC LIMIT 1`),
    maxVersion: db.prepare('SELECT max(version) AS version FROM registry_versions WHERE subject = ?'),
    subjectHolds: db.prepare('SELECT 1 AS held FROM registry_versions WHERE subject = ? AND schema_id = ?'),
    insertSchema: db.prepare('INSERT INTO registry_schemas (fingerprint, schema) VALUES (?, ?)'),
    insertVersion: db.prepare('INSERT INTO registry_versions (subject, version, schema_id) VALUES (?, ?, ?)'),
    compatibility: db.prepare('SELECT compatibility FROM registry_config WHERE subject = ?'),
    setCompatibility: db.prepare(
      `INSERT INTO registry_config (subject, compatibility) VALUES (?, ?)
       ON CONFLICT (subject) DO UPDATE SET compatibility = excluded.compatibility,
         updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`,
    ),
  };

  // Runs under the write lock (IMMEDIATE), so what it reads cannot change before it writes.
  const insertVersion = db.transaction(
    (subject: string, schema: string, fingerprint: string, expected: number): InsertVersionResult => {
      const latest = (q.maxVersion.get(subject) as { version: number | null }).version ?? 0;
      if (latest !== expected) return { status: 'conflict' };
      let id = (q.schemaIdByFingerprint.get(fingerprint) as { id: number } | undefined)?.id;
      if (id !== undefined && q.subjectHolds.get(subject, id) !== undefined) return { status: 'conflict' };
      id ??= Number(q.insertSchema.run(fingerprint, schema).lastInsertRowid);
      q.insertVersion.run(subject, expected + 1, id);
      return { status: 'inserted', id, version: expected + 1 };
    },
  );

  return {
    async schemaById(id) {
      return (q.schemaById.get(id) as { schema: string } | undefined)?.schema;
    },
    async findSchemaId(fingerprint) {
      return (q.schemaIdByFingerprint.get(fingerprint) as { id: number } | undefined)?.id;
    },
    async subjects() {
      return (q.subjects.all() as { subject: string }[]).map((r) => r.subject);
    },
    async versions(subject) {
      return (q.versions.all(subject) as VersionRow[]).map((r) => toVersion(r) as SchemaVersion);
    },
    async version(subject, version) {
      return toVersion(q.version.get(subject, version) as VersionRow | undefined);
    },
    async latest(subject) {
      return toVersion(q.latest.get(subject) as VersionRow | undefined);
    },
    async insertVersion(subject, schema, fingerprint, expectedLatestVersion) {
      return insertVersion.immediate(subject, schema, fingerprint, expectedLatestVersion);
    },
    async compatibility(subject): Promise<CompatibilityLevel | undefined> {
      const row = q.compatibility.get(subject ?? GLOBAL_CONFIG_SUBJECT) as { compatibility: string } | undefined;
      return row === undefined ? undefined : parseCompatibilityLevel(row.compatibility);
    },
    async setCompatibility(subject, level) {
      q.setCompatibility.run(subject ?? GLOBAL_CONFIG_SUBJECT, level);
    },
    async close() {
      if (db.open) db.close();
    },
  };
}
