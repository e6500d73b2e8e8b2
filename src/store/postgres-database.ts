/**
 * What every PostgreSQL store shares: transactions on one pooled connection and the numbered
 * migrations, applied under an advisory lock so that several starting processes do not race.
 */
import pg from 'pg';
import { pendingMigrations, POSTGRES_MIGRATIONS } from './migrations.ts';

/**
 * Key of the advisory lock that migrations hold: concurrent `CREATE TABLE IF NOT EXISTS` in
 * several starting processes would otherwise fail on PostgreSQL's catalog constraints.
 * An arbitrary constant ("reckon" in ASCII), fixed forever.
 */
const MIGRATION_LOCK_KEY = '125762928021358';

/** Runs `work` in a transaction on one pooled connection; rolls back when it throws. */
export async function inTransaction<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<T>,
  begin = 'BEGIN',
): Promise<T> {
  const client = await pool.connect();
  // A checked-out client has no 'error' listener of the pool's: a connection lost mid-transaction
  // would otherwise be an uncaught 'error' event that ends the process. The failing query rejects
  // too, so this listener only has to mark the connection as unusable.
  let broken = false;
  const onError = () => {
    broken = true;
  };
  client.on('error', onError);
  try {
    await client.query(begin);
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    try {
      await client.query('ROLLBACK');
    } catch {
      broken = true; // the connection is gone: do not hand it out again
    }
    throw err;
  } finally {
    client.removeListener('error', onError);
    client.release(broken);
  }
}

/**
 * Creates a pool for a connection string or a `pg` pool configuration and applies missing
 * migrations; ends the pool again when that fails.
 */
export async function openPostgresPool(connection: string | pg.PoolConfig): Promise<pg.Pool> {
  const pool = new pg.Pool(typeof connection === 'string' ? { connectionString: connection } : connection);
  // An idle connection that the server drops emits 'error' on the pool; unhandled, that would
  // end the process. The pool discards the connection and the next query opens a new one.
  pool.on('error', () => undefined);
  try {
    await inTransaction(pool, async (client) => {
      await client.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`);
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
      const applied = (await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map(
        (r) => r.version,
      );
      for (const m of pendingMigrations(POSTGRES_MIGRATIONS, applied, 'the PostgreSQL database')) {
        await client.query(m.sql);
        await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      }
    });
  } catch (err) {
    await pool.end();
    throw err;
  }
  return pool;
}
