/**
 * The SchemaStore contract against a real PostgreSQL cluster started by the test, plus what
 * several reckon processes sharing one database rely on: racing migrations and registrations.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import pg from 'pg';
import { SchemaRegistry, type SchemaStore } from '../../src/events/index.ts';
import { openPostgresSchemaStore } from '../../src/store/index.ts';
import { POSTGRES_MIGRATIONS } from '../../src/store/migrations.ts';
import { startPostgres } from '../support/postgres.ts';
import { schemaStoreContract, schemaText } from './schema-store-contract.ts';

/** A record with `n` optional fields: any two of these are backward and forward compatible. */
function evolvingSchema(n: number): object {
  return {
    type: 'record',
    name: 'Evolving',
    namespace: 'reckon.test',
    fields: [
      { name: 'id', type: 'string' },
      ...Array.from({ length: n }, (_, i) => ({ name: `f${i}`, type: ['null', 'string'], default: null })),
    ],
  };
}

function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

schemaStoreContract(
  'PostgreSQL 15 (temporary cluster)',
  async () => {
    const server = await startPostgres();
    const admin = new pg.Client(server.connectionString);
    await admin.connect();
    let n = 0;
    return {
      async createDatabase() {
        const name = `reckon_test_${n++}`;
        await admin.query(`CREATE DATABASE ${name}`);
        const url = new URL(server.connectionString);
        url.pathname = `/${name}`;
        return url.toString();
      },
      open: (connectionString) => openPostgresSchemaStore(connectionString),
      async teardown() {
        await admin.end();
        await server.stop();
      },
    };
  },
  (h) => {
    it('creates the registry_ tables once when three processes start on an empty database at the same time', async () => {
      const db = await h().createDatabase();
      const stores = await Promise.all([0, 1, 2].map(() => openPostgresSchemaStore(db)));
      try {
        const client = new pg.Client(db);
        await client.connect();
        try {
          const migrations = await client.query('SELECT version FROM schema_migrations ORDER BY version');
          assert.deepEqual(
            migrations.rows,
            POSTGRES_MIGRATIONS.map((m) => ({ version: m.version })),
          );
          const tables = await client.query(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE 'registry\\_%' ORDER BY tablename",
          );
          assert.deepEqual(
            tables.rows.map((r) => r.tablename),
            ['registry_config', 'registry_schemas', 'registry_versions'],
          );
        } finally {
          await client.end();
        }
      } finally {
        for (const s of stores) await s.close();
      }
    });

    it('lets exactly one of many inserts racing from three pools win each version', async () => {
      const db = await h().createDatabase();
      const stores = await Promise.all([0, 1, 2].map(() => openPostgresSchemaStore(db)));
      try {
        const attempts = Array.from({ length: 12 }, (_, i) => {
          const t = schemaText(`Racer${i}`);
          return (stores[i % 3] as SchemaStore).insertVersion('race-value', t.text, t.fingerprint, 0);
        });
        const results = await Promise.all(attempts);
        assert.equal(results.filter((r) => r.status === 'inserted').length, 1);
        assert.equal((await (stores[0] as SchemaStore).versions('race-value')).length, 1);
      } finally {
        for (const s of stores) await s.close();
      }
    });

    it('never produces duplicate versions or two ids for one schema when three processes register concurrently', async () => {
      const db = await h().createDatabase();
      const stores = await Promise.all([0, 1, 2].map(() => openPostgresSchemaStore(db)));
      try {
        const schemas = Array.from({ length: 8 }, (_, i) => evolvingSchema(i));
        const subjects = ['evolving-a', 'evolving-b'];
        // Each "process" registers all eight schemas in its own order under both subjects.
        const outcomes = await Promise.all(
          stores.map(async (store, p) => {
            const registry = new SchemaRegistry(store);
            const seen: { subject: string; schema: number; id: number; version: number }[] = [];
            for (const i of shuffled([0, 1, 2, 3, 4, 5, 6, 7], p + 1)) {
              await Promise.all(
                subjects.map(async (subject) => {
                  const r = await registry.register(subject, schemas[i] as object);
                  seen.push({ subject, schema: i, ...r });
                }),
              );
            }
            return seen;
          }),
        );
        const reader = stores[0] as SchemaStore;
        const idOf = new Map<number, number>();
        for (const subject of subjects) {
          const versions = await reader.versions(subject);
          assert.deepEqual(
            versions.map((v) => v.version),
            [1, 2, 3, 4, 5, 6, 7, 8],
            `${subject} has dense versions`,
          );
          assert.equal(new Set(versions.map((v) => v.id)).size, 8, `${subject} holds each schema once`);
        }
        for (const { subject, schema, id, version } of outcomes.flat()) {
          // Every process got the same id for a schema, under both subjects, and the version it names holds it.
          assert.equal(idOf.get(schema) ?? id, id, `schema ${schema} has one id`);
          idOf.set(schema, id);
          assert.equal((await reader.version(subject, version))?.id, id);
        }
        assert.equal(new Set(idOf.values()).size, 8);
        const client = new pg.Client(db);
        await client.connect();
        try {
          const count = await client.query('SELECT count(*)::int AS n FROM registry_schemas');
          assert.equal(count.rows[0].n, 8, 'no schema was stored twice');
        } finally {
          await client.end();
        }
      } finally {
        for (const s of stores) await s.close();
      }
    });
  },
);
