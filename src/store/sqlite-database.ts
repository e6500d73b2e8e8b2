/**
 * Opening a reckon SQLite file: the pragmas every store relies on and the numbered migrations.
 * The registry and the statistics store may share one file; whichever opens it first applies
 * every missing migration of both.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { pendingMigrations, SQLITE_MIGRATIONS } from './migrations.ts';

function migrate(db: Database.Database, path: string): void {
  // IMMEDIATE takes the write lock first, so two processes opening a new file do not both migrate.
  db.transaction(() => {
    db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version INTEGER PRIMARY KEY,
      name TEXT NOT NULL,
      applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    )`);
    const applied = (db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map(
      (r) => r.version,
    );
    const record = db.prepare('INSERT INTO schema_migrations (version, name) VALUES (?, ?)');
    for (const m of pendingMigrations(SQLITE_MIGRATIONS, applied, path)) {
      db.exec(m.sql);
      record.run(m.version, m.name);
    }
  }).immediate();
}

/**
 * Opens (creating it and its folder if needed) the SQLite file at `path` in WAL mode with
 * `synchronous=FULL`, and applies missing migrations.
 */
export function openSqliteDatabase(path: string): Database.Database {
  if (path !== ':memory:' && !path.startsWith('file:')) mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    // FULL: in WAL mode, NORMAL may lose the last commits on power loss (the WAL is synced at
    // checkpoints only). A schema id handed out and then forgotten could be reused for another
    // schema while records framed with the first one sit in the log, and a batch interval the
    // scheduler saw committed must stay committed. Speed-layer writes come in large batches, so
    // one sync per commit costs little there too.
    db.pragma('synchronous = FULL');
    // Other processes and connections may hold the write lock briefly: wait for it.
    db.pragma('busy_timeout = 5000');
    db.pragma('foreign_keys = ON');
    migrate(db, path);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}
