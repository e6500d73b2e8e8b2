/**
 * The registry's storage in PostgreSQL (distributed mode), through a `pg` pool. Several reckon
 * processes may share one database: migrations serialise on an advisory lock, and unique
 * constraints turn racing registrations into a 'conflict' the registry retries.
 */
import pg from 'pg';
import {
  type CompatibilityLevel,
  type InsertVersionResult,
  parseCompatibilityLevel,
  type SchemaStore,
  type SchemaVersion,
} from '../events/index.ts';
import { GLOBAL_CONFIG_SUBJECT } from './migrations.ts';
import { inTransaction, openPostgresPool } from './postgres-database.ts';

const VERSION_COLUMNS = `v.subject AS subject, v.version AS version, s.id AS id, s.schema AS schema
  FROM registry_versions v JOIN registry_schemas s ON s.id = v.schema_id`;

interface VersionRow {
  subject: string;
  version: number;
  id: number;
  schema: string;
}

function toVersion(row: VersionRow | undefined): SchemaVersion | undefined {
  return row === undefined ? undefined : { subject: row.subject, version: row.version, id: row.id, schema: row.schema };
}

/** Thrown inside a transaction to roll it back and answer 'conflict'. */
class Conflict extends Error {}

/**
 * Connects to PostgreSQL (a connection string or a `pg` pool configuration), applies missing
 * migrations and returns the database as a {@link SchemaStore}.
 */
export async function openPostgresSchemaStore(connection: string | pg.PoolConfig): Promise<SchemaStore> {
  const pool = await openPostgresPool(connection);

  let closed = false;
  const one = async <R extends pg.QueryResultRow>(sql: string, params: unknown[]): Promise<R | undefined> =>
    (await pool.query<R>(sql, params)).rows[0];

  return {
    async schemaById(id) {
      return (await one<{ schema: string }>('SELECT schema FROM registry_schemas WHERE id = $1', [id]))?.schema;
    },
    async findSchemaId(fingerprint) {
      return (await one<{ id: number }>('SELECT id FROM registry_schemas WHERE fingerprint = $1', [fingerprint]))?.id;
    },
    async subjects() {
      const result = await pool.query<{ subject: string }>(
        'SELECT subject FROM registry_versions GROUP BY subject ORDER BY subject COLLATE "C"',
      );
      return result.rows.map((r) => r.subject);
    },
    async versions(subject) {
      const result = await pool.query<VersionRow>(`SELECT ${VERSION_COLUMNS} WHERE v.subject = $1 ORDER BY v.version`, [
        subject,
      ]);
      return result.rows.map((r) => toVersion(r) as SchemaVersion);
    },
    async version(subject, version) {
      return toVersion(
        await one<VersionRow>(`SELECT ${VERSION_COLUMNS} WHERE v.subject = $1 AND v.version = $2`, [subject, version]),
      );
    },
    async latest(subject) {
      return toVersion(
        await one<VersionRow>(`SELECT ${VERSION_COLUMNS} WHERE v.subject = $1 ORDER BY v.version DESC LIMIT 1`, [
          subject,
        ]),
      );
    },
    async insertVersion(subject, schema, fingerprint, expected): Promise<InsertVersionResult> {
      try {
        return await inTransaction(pool, async (client) => {
          const latest = await client.query<{ version: number | null }>(
            'SELECT max(version) AS version FROM registry_versions WHERE subject = $1',
            [subject],
          );
          if ((latest.rows[0]?.version ?? 0) !== expected) throw new Conflict();
          // Under READ COMMITTED, ON CONFLICT waits for a concurrent insert of the same
          // fingerprint to commit, and the SELECT that follows (a new snapshot) then sees it:
          // one schema never gets two ids.
          await client.query(
            'INSERT INTO registry_schemas (fingerprint, schema) VALUES ($1, $2) ON CONFLICT (fingerprint) DO NOTHING',
            [fingerprint, schema],
          );
          const id = (
            await client.query<{ id: number }>('SELECT id FROM registry_schemas WHERE fingerprint = $1', [fingerprint])
          ).rows[0]?.id;
          if (id === undefined) throw new Conflict(); // the concurrent insert rolled back after all
          // (subject, version) and (subject, schema_id) are unique: a writer that appended the
          // same version, or the same schema, first makes this insert a no-op.
          const inserted = await client.query(
            `INSERT INTO registry_versions (subject, version, schema_id) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING RETURNING version`,
            [subject, expected + 1, id],
          );
          if (inserted.rowCount !== 1) throw new Conflict();
          return { status: 'inserted' as const, id, version: expected + 1 };
        });
      } catch (err) {
        if (err instanceof Conflict) return { status: 'conflict' };
        throw err;
      }
    },
    async compatibility(subject): Promise<CompatibilityLevel | undefined> {
      const row = await one<{ compatibility: string }>('SELECT compatibility FROM registry_config WHERE subject = $1', [
        subject ?? GLOBAL_CONFIG_SUBJECT,
      ]);
      return row === undefined ? undefined : parseCompatibilityLevel(row.compatibility);
    },
    async setCompatibility(subject, level) {
      await pool.query(
        `INSERT INTO registry_config (subject, compatibility) VALUES ($1, $2)
         ON CONFLICT (subject) DO UPDATE SET compatibility = excluded.compatibility, updated_at = now()`,
        [subject ?? GLOBAL_CONFIG_SUBJECT, level],
      );
    },
    async close() {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
}
