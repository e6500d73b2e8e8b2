/** Store: relational state in SQLite (embedded) or PostgreSQL (distributed); so far the schema registry's. */
export { openPostgresSchemaStore } from './postgres-schema-store.ts';
export { openSqliteSchemaStore } from './sqlite-schema-store.ts';
