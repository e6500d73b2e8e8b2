/**
 * A small seam over the two SQL dialects for stores whose statements are the same in both:
 * `?` placeholders (numbered `$n` on PostgreSQL), one transaction at a time per runner, and two
 * lock markers that only PostgreSQL needs (SQLite's writer holds the whole file).
 */
import type Database from 'better-sqlite3';
import type pg from 'pg';
import { ReckonError } from '../events/index.ts';
import { inTransaction } from './postgres-database.ts';

/** Statements inside one transaction. */
export interface SqlTransaction {
  /** Rows of a query (or of a statement with RETURNING). */
  all<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** Runs a statement; returns the rows it changed. */
  run(sql: string, params?: readonly unknown[]): Promise<number>;
}

/** A database that runs transactions. */
export interface SqlRunner {
  readonly dialect: 'sqlite' | 'postgres';
  transaction<T>(work: (tx: SqlTransaction) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** `FOR UPDATE` on PostgreSQL, nothing on SQLite. */
/** A row as a driver returns it. */
export type Row = Record<string, unknown>;
/** A column as a number (drivers may return big integers as strings). */
export const num = (v: unknown): number => Number(v);
/** A nullable column as a number or null. */
export const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
/** A nullable column as a string or null. */
export const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

export const LOCK = '/*lock*/';
/** `FOR UPDATE SKIP LOCKED` on PostgreSQL, nothing on SQLite. */
export const SKIP_LOCKED = '/*skip-locked*/';

/** Another connection or process holds the write lock past busy_timeout: worth retrying. */
export function busyToRetriable(err: unknown): unknown {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'))) {
    return new ReckonError('RECKON_STORE_BUSY', `the SQLite database is locked by another writer (${code}): retry`, {
      retriable: true,
      cause: err,
    });
  }
  return err;
}

/** A runner over a better-sqlite3 database: transactions are `BEGIN IMMEDIATE` and queued in this process. */
export function sqliteRunner(db: Database.Database): SqlRunner {
  const statements = new Map<string, Database.Statement>();
  const prepare = (sql: string): Database.Statement => {
    const text = sql.replaceAll(LOCK, '').replaceAll(SKIP_LOCKED, '');
    let s = statements.get(text);
    if (s === undefined) {
      s = db.prepare(text);
      statements.set(text, s);
    }
    return s;
  };
  const tx: SqlTransaction = {
    all: async <T>(sql: string, params: readonly unknown[] = []) => {
      const s = prepare(sql);
      return (s.reader ? s.all(...params) : (s.run(...params), [])) as T[];
    },
    run: async (sql, params = []) => prepare(sql).run(...params).changes,
  };
  // better-sqlite3 is synchronous, but `work` may await between statements: a second transaction
  // of this process must wait for the first, or its BEGIN would nest inside it.
  let queue: Promise<unknown> = Promise.resolve();
  return {
    dialect: 'sqlite',
    transaction<T>(work: (t: SqlTransaction) => Promise<T>): Promise<T> {
      const next = queue.then(async () => {
        try {
          db.exec('BEGIN IMMEDIATE');
        } catch (err) {
          throw busyToRetriable(err);
        }
        try {
          const result = await work(tx);
          db.exec('COMMIT');
          return result;
        } catch (err) {
          if (db.inTransaction) db.exec('ROLLBACK');
          throw busyToRetriable(err);
        }
      });
      queue = next.catch(() => undefined);
      return next;
    },
    async close() {
      await queue;
      db.close();
    },
  };
}

/** `?` placeholders as PostgreSQL's `$1, $2, …` (statements here hold no `?` in literals). */
function numbered(sql: string): string {
  let n = 0;
  return sql
    .replaceAll(LOCK, 'FOR UPDATE')
    .replaceAll(SKIP_LOCKED, 'FOR UPDATE SKIP LOCKED')
    .replace(/\?/g, () => `$${++n}`);
}

/** A runner over a `pg` pool: each transaction on one pooled connection. */
export function postgresRunner(pool: pg.Pool): SqlRunner {
  const cache = new Map<string, string>();
  const text = (sql: string): string => {
    let t = cache.get(sql);
    if (t === undefined) {
      t = numbered(sql);
      cache.set(sql, t);
    }
    return t;
  };
  return {
    dialect: 'postgres',
    transaction<T>(work: (t: SqlTransaction) => Promise<T>): Promise<T> {
      return inTransaction(pool, (client) =>
        work({
          all: async <R>(sql: string, params: readonly unknown[] = []) =>
            (await client.query(text(sql), params as unknown[])).rows as R[],
          run: async (sql, params = []) => (await client.query(text(sql), params as unknown[])).rowCount ?? 0,
        }),
      );
    },
    close: () => pool.end(),
  };
}
