/**
 * Parquet files of the lake, written by an in-process DuckDB: staging tables (see `staging.ts`)
 * are filled through appenders on one connection, and each event hour of a closed table is copied
 * to its own file on another, so consumption goes on while a flush writes. The SELECTs below
 * define the files' schema, which the batch layer reads.
 */
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { type ArchivedKind, STAGING_COLUMNS, StagingTable } from './staging.ts';

/** A SQL string literal. */
export function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

/** The Parquet schema of each kind, as DuckDB reports it (column name, type). */
export const LAKE_SCHEMAS: Readonly<Record<ArchivedKind, readonly (readonly [string, string])[]>> = {
  emission: [
    ['id', 'VARCHAR'],
    ['ts', 'TIMESTAMP'],
    ['placement', 'VARCHAR'],
    ['dc', 'VARCHAR'],
    ['offers', 'STRUCT(offer_id VARCHAR, click_cost_micros BIGINT)[]'],
    ['log_partition', 'INTEGER'],
    ['log_offset', 'BIGINT'],
  ],
  click: [
    ['id', 'VARCHAR'],
    ['ts', 'TIMESTAMP'],
    ['emission_id', 'VARCHAR'],
    ['offer_id', 'VARCHAR'],
    ['user_id', 'VARCHAR'],
    ['ip', 'VARCHAR'],
    ['dc', 'VARCHAR'],
    ['log_partition', 'INTEGER'],
    ['log_offset', 'BIGINT'],
  ],
};

const OFFERS_JSON_TYPE = `'[{"offer_id":"VARCHAR","click_cost_micros":"BIGINT"}]'`;

/** The rows of one hour of a staging table, as the lake stores them. */
function selectHour(kind: ArchivedKind, table: string, partition: number, hourStartMs: number): string {
  const columns =
    kind === 'emission'
      ? `id, epoch_ms(ts_ms::BIGINT) AS ts, placement, dc, from_json(offers, ${OFFERS_JSON_TYPE}) AS offers`
      : 'id, epoch_ms(ts_ms::BIGINT) AS ts, emission_id, offer_id, user_id, ip, dc';
  // A filtered scan keeps the table's insertion (offset) order.
  return (
    `SELECT ${columns}, ${partition}::INTEGER AS log_partition, log_offset::BIGINT AS log_offset ` +
    `FROM ${table} WHERE hour_ms = ${hourStartMs}`
  );
}

/** The archiver's DuckDB: staging tables and Parquet writes. */
export class LakeWriter {
  private tables = 0;

  private constructor(
    private readonly instance: DuckDBInstance,
    /** Appenders only, all used from the JavaScript thread. */
    private readonly appending: DuckDBConnection,
    /** DDL and COPY, one statement at a time. */
    private readonly copying: DuckDBConnection,
  ) {}

  /** Starts an in-memory DuckDB. */
  static async create(): Promise<LakeWriter> {
    const instance = await DuckDBInstance.create(':memory:');
    return new LakeWriter(instance, await instance.connect(), await instance.connect());
  }

  /** A new, empty staging table with an open appender. */
  async createStaging(kind: ArchivedKind): Promise<StagingTable> {
    const table = `staging_${kind}_${this.tables++}`;
    await this.copying.run(`CREATE TABLE ${table} (${STAGING_COLUMNS[kind]})`);
    return new StagingTable(kind, table, await this.appending.createAppender(table));
  }

  /** Writes each hour of a closed staging table (hour start -> file path) as one Parquet file; not synced. */
  async writeHours(staging: StagingTable, partition: number, paths: Map<number, string>): Promise<void> {
    staging.close();
    for (const [hour, path] of paths) {
      await this.copying.run(
        `COPY (${selectHour(staging.kind, staging.table, partition, hour)}) TO ${sqlString(path)} ` +
          `(FORMAT parquet, COMPRESSION zstd)`,
      );
    }
  }

  /** Drops a staging table. */
  async drop(staging: StagingTable): Promise<void> {
    staging.close();
    await this.copying.run(`DROP TABLE IF EXISTS ${staging.table}`);
  }

  close(): void {
    this.appending.closeSync();
    this.copying.closeSync();
    this.instance.closeSync();
  }
}
