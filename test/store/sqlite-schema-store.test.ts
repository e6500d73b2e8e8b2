/** The SchemaStore contract against SQLite files in a temp dir, plus what only the SQLite store promises. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import Database from 'better-sqlite3';
import { openSqliteSchemaStore } from '../../src/store/index.ts';
import { SQLITE_MIGRATIONS } from '../../src/store/migrations.ts';
import { schemaStoreContract } from './schema-store-contract.ts';

schemaStoreContract(
  'SQLite',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reckon-sqlite-store-'));
    let n = 0;
    return {
      createDatabase: async () => join(dir, `db-${n++}`, 'reckon.sqlite'),
      open: (path) => openSqliteSchemaStore(path),
      teardown: async () => rmSync(dir, { recursive: true, force: true }),
    };
  },
  (h) => {
    it('uses WAL, creates the registry_ tables and records each migration once', async () => {
      const path = await h().createDatabase();
      const store = await openSqliteSchemaStore(path);
      await store.close();
      const again = await openSqliteSchemaStore(path);
      await again.close();
      const db = new Database(path, { readonly: true });
      try {
        assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
        assert.deepEqual(
          db.prepare('SELECT version FROM schema_migrations ORDER BY version').all(),
          SQLITE_MIGRATIONS.map((m) => ({ version: m.version })),
        );
        const tables = db
          .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'registry_%' ORDER BY name")
          .all();
        assert.deepEqual(tables, [
          { name: 'registry_config' },
          { name: 'registry_schemas' },
          { name: 'registry_versions' },
        ]);
      } finally {
        db.close();
      }
    });

    it('refuses a database written by a newer reckon', async () => {
      const path = await h().createDatabase();
      await (await openSqliteSchemaStore(path)).close();
      const db = new Database(path);
      db.prepare("INSERT INTO schema_migrations (version, name) VALUES (99, 'from the future')").run();
      db.close();
      await assert.rejects(openSqliteSchemaStore(path), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'RECKON_STORE_SCHEMA_TOO_NEW');
        assert.match(err.message, /schema version 99.*upgrade reckon/);
        return true;
      });
    });
  },
);
