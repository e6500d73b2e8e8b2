/**
 * Parquet files of the lake, written by an in-process DuckDB: each event hour of a flush's staging
 * lines (see `staging.ts`) is read by DuckDB's JSON reader and copied to its own file, on DuckDB's
 * threads, so consumption goes on while a flush writes. The SELECTs below define the files'
 * schema, which the batch layer reads.
 */
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { rm, writeFile } from 'node:fs/promises';
import { type ArchivedKind, STAGING_COLUMNS, type StagingRows } from './staging.ts';

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

/** DuckDB's `read_json` of one hour's staging lines (see `staging.ts`). */
function readStaging(kind: ArchivedKind, path: string): string {
  const columns = Object.entries(STAGING_COLUMNS[kind])
    .map(([name, type]) => `${name}: ${sqlString(type)}`)
    .join(', ');
  return `read_json(${sqlString(path)}, format = 'newline_delimited', records = true, columns = {${columns}})`;
}

/** The rows of one hour's staging lines, as the lake stores them. */
function selectHour(kind: ArchivedKind, path: string, partition: number): string {
  const columns =
    kind === 'emission'
      ? 'id, epoch_ms(ts) AS ts, placement, dc, offers'
      : 'id, epoch_ms(ts) AS ts, emission_id, offer_id, user_id, ip, dc';
  // DuckDB keeps the lines' (offset) order: insertion order is preserved by default.
  return `SELECT ${columns}, ${partition}::INTEGER AS log_partition, log_offset ` + `FROM ${readStaging(kind, path)}`;
}

/** The archiver's DuckDB: turns staging lines into Parquet files. */
export class LakeWriter {
  private constructor(
    private readonly instance: DuckDBInstance,
    /** COPY, one statement at a time. */
    private readonly copying: DuckDBConnection,
  ) {}

  /** Starts an in-memory DuckDB. */
  static async create(): Promise<LakeWriter> {
    const instance = await DuckDBInstance.create(':memory:');
    return new LakeWriter(instance, await instance.connect());
  }

  /**
   * Writes each hour of a staging buffer (hour start -> file path) as one Parquet file; not
   * synced. The hour's lines go through a file next to it, removed afterwards.
   */
  async writeHours(staging: StagingRows, partition: number, paths: Map<number, string>): Promise<void> {
    for (const [hour, path] of paths) {
      const rows = staging.hours.get(hour);
      if (rows === undefined) throw new Error(`no staged rows for hour ${new Date(hour).toISOString()}`);
      const lines = `${path}.ndjson`;
      try {
        // Not synced: the lines are read back at once and never kept.
        await writeFile(lines, rows.lines.chunks());
        await this.copying.run(
          `COPY (${selectHour(staging.kind, lines, partition)}) TO ${sqlString(path)} (FORMAT parquet, COMPRESSION zstd)`,
        );
      } finally {
        await rm(lines, { force: true });
      }
    }
  }

  close(): void {
    this.copying.closeSync();
    this.instance.closeSync();
  }
}
