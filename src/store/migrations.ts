/**
 * The store's relational schema as numbered migrations, one list per dialect. Every opener of
 * a database runs the missing ones in order and records each in `schema_migrations`, so a new
 * table or column is a new entry at the end of both lists, never an edit of an applied one.
 */
import { COMPATIBILITY_LEVELS, ReckonError } from '../events/index.ts';

/** One step of the schema. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** Subject key of the global compatibility level in `registry_config` (the registry refuses empty subjects). */
export const GLOBAL_CONFIG_SUBJECT = '';

const LEVELS_SQL = COMPATIBILITY_LEVELS.map((l) => `'${l}'`).join(', ');

/** Column types of a dialect: `I` the 64-bit integer, `T` the key text (code point order). */
interface DialectTypes {
  I: string;
  T: string;
}
const SQLITE_TYPES: DialectTypes = { I: 'INTEGER', T: 'TEXT' };
const POSTGRES_TYPES: DialectTypes = { I: 'bigint', T: 'text COLLATE "C"' };

/** The value columns of a statistics row (counts, and money in micros), one line each. */
const statsValueColumns = (I: string): string =>
  ['emissions', 'clicks', 'click_cost', 'duplicate_clicks', 'fraud_clicks', 'fraud_cost', 'invalid_clicks']
    .map(
      (column) => `
        ${column} ${I} NOT NULL,`,
    )
    .join('');

/** Bucket sizes of the statistics tables (ms). */
const BUCKET_MS = { minute: 60_000, day: 86_400_000 } as const;

/**
 * A statistics table of one side and bucket, keyed by (bucket start, offer, placement), with its
 * lookups by offer and by placement. It writes the text migrations 2 and 4 were applied with
 * (`test/store/migrations.test.ts` holds every applied migration to its bytes).
 */
function statsTableSql(
  { I, T }: DialectTypes,
  side: 'speed' | 'batch',
  level: keyof typeof BUCKET_MS,
  suffix: string,
): string {
  const table = `stats_${side}_${level}`;
  return `
      CREATE TABLE ${table} (
        bucket_start ${I} NOT NULL CHECK (bucket_start >= 0 AND bucket_start % ${BUCKET_MS[level]} = 0),
        offer_id ${T} NOT NULL,
        placement ${T} NOT NULL,${statsValueColumns(I)}
        PRIMARY KEY (bucket_start, offer_id, placement)
      )${suffix};
      CREATE INDEX ${table}_offer ON ${table} (offer_id, bucket_start);
      CREATE INDEX ${table}_placement ON ${table} (placement, bucket_start);`;
}

/** Fills the day rollups from the minute rows (the same statement in both dialects). */
const DAY_BACKFILL = ['speed', 'batch']
  .map(
    (side) => `
      INSERT INTO stats_${side}_day
      SELECT bucket_start - bucket_start % 86400000, offer_id, placement, sum(emissions), sum(clicks), sum(click_cost),
        sum(duplicate_clicks), sum(fraud_clicks), sum(fraud_cost), sum(invalid_clicks)
      FROM stats_${side}_minute GROUP BY bucket_start - bucket_start % 86400000, offer_id, placement;`,
  )
  .join('');

/**
 * Scheduler state (both dialects; `I` is the integer type, `T` the text type): DAGs, pools,
 * runs, task instances with their tries, SLA misses, the alert outbox and the late arrivals
 * already acted on. Times are epoch milliseconds (UTC).
 */
function schedulerSql(I: string, T: string, serial: string, suffix: string): string {
  return `
      CREATE TABLE sched_dags (
        dag_id ${T} PRIMARY KEY,
        max_active_runs ${I} NOT NULL,
        updated_at ${I} NOT NULL
      )${suffix};
      CREATE TABLE sched_pools (
        name ${T} PRIMARY KEY,
        slots ${I} NOT NULL CHECK (slots >= 1)
      )${suffix};
      CREATE TABLE sched_dag_runs (
        dag_id ${T} NOT NULL,
        logical_date ${I} NOT NULL,
        run_id ${T} NOT NULL,
        run_type ${T} NOT NULL CHECK (run_type IN ('scheduled', 'manual', 'backfill')),
        interval_start ${I} NOT NULL,
        interval_end ${I} NOT NULL,
        state ${T} NOT NULL CHECK (state IN ('queued', 'running', 'success', 'failed')),
        max_active ${I} NOT NULL,
        queued_at ${I} NOT NULL,
        started_at ${I},
        ended_at ${I},
        clear_count ${I} NOT NULL DEFAULT 0,
        pending_clear ${T},
        PRIMARY KEY (dag_id, logical_date),
        UNIQUE (dag_id, run_id)
      )${suffix};
      CREATE INDEX sched_dag_runs_state ON sched_dag_runs (state, dag_id, logical_date);
      CREATE TABLE sched_task_instances (
        dag_id ${T} NOT NULL,
        logical_date ${I} NOT NULL,
        task_id ${T} NOT NULL,
        task_order ${I} NOT NULL,
        state ${T} NOT NULL CHECK (state IN ('none', 'scheduled', 'running', 'up_for_retry', 'up_for_reschedule',
          'success', 'failed', 'upstream_failed')),
        try_number ${I} NOT NULL DEFAULT 0,
        max_tries ${I} NOT NULL,
        retries ${I} NOT NULL,
        pool ${T} NOT NULL,
        sla_ms ${I},
        next_try_at ${I},
        first_poke_at ${I},
        started_at ${I},
        ended_at ${I},
        duration_ms ${I},
        owner ${T},
        heartbeat_at ${I},
        error ${T},
        PRIMARY KEY (dag_id, logical_date, task_id)
      )${suffix};
      CREATE INDEX sched_task_instances_state ON sched_task_instances (state, pool, logical_date);
      CREATE TABLE sched_task_tries (
        dag_id ${T} NOT NULL,
        logical_date ${I} NOT NULL,
        task_id ${T} NOT NULL,
        try_number ${I} NOT NULL,
        state ${T} NOT NULL,
        started_at ${I} NOT NULL,
        ended_at ${I} NOT NULL,
        duration_ms ${I} NOT NULL,
        owner ${T} NOT NULL,
        error ${T},
        PRIMARY KEY (dag_id, logical_date, task_id, try_number)
      )${suffix};
      CREATE INDEX sched_task_tries_task ON sched_task_tries (dag_id, task_id, started_at);
      CREATE TABLE sched_sla_misses (
        dag_id ${T} NOT NULL,
        logical_date ${I} NOT NULL,
        task_id ${T} NOT NULL,
        clear_count ${I} NOT NULL,
        deadline ${I} NOT NULL,
        detected_at ${I} NOT NULL,
        PRIMARY KEY (dag_id, logical_date, task_id)
      )${suffix};
      CREATE TABLE alerts (
        id ${serial} PRIMARY KEY,
        alert_key ${T} NOT NULL UNIQUE,
        kind ${T} NOT NULL,
        source ${T} NOT NULL,
        message ${T} NOT NULL,
        details ${T} NOT NULL,
        created_at ${I} NOT NULL,
        state ${T} NOT NULL CHECK (state IN ('pending', 'delivering', 'delivered', 'failed')),
        attempts ${I} NOT NULL DEFAULT 0,
        lease_owner ${T},
        lease_until ${I},
        delivered_at ${I},
        last_error ${T}
      )${suffix};
      CREATE INDEX alerts_state ON alerts (state, id);
      CREATE TABLE sched_late_arrivals (
        arrival_key ${T} PRIMARY KEY,
        hour_start ${I} NOT NULL,
        handled_at ${I} NOT NULL
      )${suffix};
    `;
}

/**
 * The business checks' latest robust scores per scope (`hourly`, `daily`), placement and column:
 * what `/metrics` shows as `reckon_anomaly_score`. Each check replaces its scope's rows.
 */
function anomalySql(I: string, R: string, T: string, suffix: string): string {
  return `
      CREATE TABLE anomaly_scores (
        scope ${T} NOT NULL,
        placement ${T} NOT NULL,
        column_name ${T} NOT NULL,
        interval_start ${I} NOT NULL,
        value ${R} NOT NULL,
        baseline ${R} NOT NULL,
        score ${R} NOT NULL,
        computed_at ${I} NOT NULL,
        PRIMARY KEY (scope, placement, column_name)
      )${suffix};
    `;
}

/**
 * The serving store rebuilt for rollups (both dialects; `I` the integer type, `T` the key text
 * type, `table` the suffix that makes a table clustered by its key, `runKey` the run id column
 * that numbers itself). Speed flushes append runs (`stats_speed_run_rows`, keyed by the query key and
 * the run) that the compactor folds into `stats_speed_minute` and its new hour rollup; batch
 * runs write generations aside (`stats_batch_gen_*`) and switch them in by an interval record
 * naming the generation. The minute-level secondary indexes go: queries read hour and day
 * rollups for whole buckets, and a minute range is a primary-key range. The batch rows of
 * before become generation 1, which every existing interval names.
 */
function rollupStoreSql(I: string, T: string, table: string, runKey: string): string {
  const columns = (key: string) => `${key}
        bucket_start ${I} NOT NULL,
        offer_id ${T} NOT NULL,
        placement ${T} NOT NULL,${statsValueColumns(I)}`;
  const sums = `sum(emissions), sum(clicks), sum(click_cost), sum(duplicate_clicks), sum(fraud_clicks),
        sum(fraud_cost), sum(invalid_clicks)`;
  const keyCols = 'bucket_start, offer_id, placement';
  const genTable = (level: string) => `
      CREATE TABLE stats_batch_gen_${level} (${columns(`
        generation ${I} NOT NULL,`)}
        PRIMARY KEY (generation, bucket_start, offer_id, placement)
      )${table};`;
  const rollup = (size: number) => `bucket_start - bucket_start % ${size}`;
  // Filtered queries over days and weeks read the hour and day rollups by offer or placement:
  // the rollups, written only by compactions and batch switches, keep those indexes.
  const rollupIndexes = ['hour', 'day']
    .flatMap((level) =>
      ['offer_id', 'placement'].flatMap((column) => [
        `CREATE INDEX stats_speed_${level}_${column} ON stats_speed_${level} (${column}, bucket_start);`,
        `CREATE INDEX stats_batch_gen_${level}_${column} ON stats_batch_gen_${level} (generation, ${column}, bucket_start);`,
      ]),
    )
    .join('\n      ');
  return `
      DROP INDEX stats_speed_minute_offer;
      DROP INDEX stats_speed_minute_placement;
      DROP INDEX stats_speed_day_offer;
      DROP INDEX stats_speed_day_placement;
      CREATE TABLE stats_speed_hour (${columns('')}
        PRIMARY KEY (bucket_start, offer_id, placement)
      )${table};
      INSERT INTO stats_speed_hour (${keyCols}, emissions, clicks, click_cost, duplicate_clicks, fraud_clicks, fraud_cost, invalid_clicks)
        SELECT ${rollup(3600000)}, offer_id, placement, ${sums}
        FROM stats_speed_minute GROUP BY ${rollup(3600000)}, offer_id, placement;
      CREATE TABLE stats_speed_runs (
        run_id ${runKey},
        group_id text NOT NULL,
        row_count ${I} NOT NULL,
        created_at ${I} NOT NULL
      )${table === '' ? '' : ' STRICT'};
      CREATE TABLE stats_speed_run_rows (${columns('')}
        run_id ${I} NOT NULL,
        PRIMARY KEY (bucket_start, offer_id, placement, run_id)
      )${table};
      CREATE TABLE stats_batch_generations (
        generation ${I} PRIMARY KEY,
        from_ms ${I} NOT NULL,
        to_ms ${I} NOT NULL,
        run_id text NOT NULL,
        state text NOT NULL CHECK (state IN ('staging', 'live', 'retired')),
        created_at ${I} NOT NULL
      )${table === '' ? '' : ' STRICT'};
      INSERT INTO stats_batch_generations (generation, from_ms, to_ms, run_id, state, created_at)
        SELECT 1, coalesce(min(from_ms), 0), coalesce(max(to_ms), 60000), 'migrated', 'live', 0 FROM stats_batch_intervals;
      ALTER TABLE stats_batch_intervals ADD COLUMN generation ${I} NOT NULL DEFAULT 1;
      ALTER TABLE stats_batch_intervals ADD COLUMN seq ${I} NOT NULL DEFAULT 0;
      ${genTable('minute')}${genTable('hour')}${genTable('day')}
      ${rollupIndexes}
      INSERT INTO stats_batch_gen_minute SELECT 1, * FROM stats_batch_minute;
      INSERT INTO stats_batch_gen_hour SELECT 1, ${rollup(3600000)}, offer_id, placement, ${sums}
        FROM stats_batch_minute GROUP BY ${rollup(3600000)}, offer_id, placement;
      INSERT INTO stats_batch_gen_day SELECT 1, * FROM stats_batch_day;
      DROP TABLE stats_batch_minute;
      DROP TABLE stats_batch_day;
    `;
}

/**
 * Migration 8: whether a batch interval was computed from complete lake input (a forced run of
 * an incomplete interval is served but never final; intervals written before are complete, as
 * they were recorded as final), and what a waiting sensor waits for.
 */
function inputAndWaitingSql(I: string, T: string): string {
  return `
      ALTER TABLE stats_batch_intervals ADD COLUMN complete ${I} NOT NULL DEFAULT 1;
      ALTER TABLE sched_task_instances ADD COLUMN waiting_for ${T};
    `;
}

/** SQLite migrations. */
export const SQLITE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'schema registry',
    sql: `
      CREATE TABLE registry_schemas (
        id INTEGER PRIMARY KEY,
        fingerprint TEXT NOT NULL UNIQUE,
        schema TEXT NOT NULL,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
      );
      CREATE TABLE registry_versions (
        subject TEXT NOT NULL,
        version INTEGER NOT NULL CHECK (version >= 1),
        schema_id INTEGER NOT NULL REFERENCES registry_schemas (id),
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        PRIMARY KEY (subject, version),
        UNIQUE (subject, schema_id)
      );
      CREATE TABLE registry_config (
        subject TEXT PRIMARY KEY,
        compatibility TEXT NOT NULL CHECK (compatibility IN (${LEVELS_SQL})),
        updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
      );
    `,
  },
  {
    version: 2,
    name: 'statistics',
    // Money columns hold micros in a 64-bit integer; times are epoch milliseconds (UTC).
    // STRICT: a count or an amount that is not an integer is refused, never stored as REAL.
    // WITHOUT ROWID: rows live in primary-key order, so a bucket range is one contiguous scan.
    sql: `${statsTableSql(SQLITE_TYPES, 'speed', 'minute', ' STRICT, WITHOUT ROWID')}${statsTableSql(SQLITE_TYPES, 'batch', 'minute', ' STRICT, WITHOUT ROWID')}
      CREATE TABLE stats_batch_intervals (
        from_ms INTEGER NOT NULL,
        to_ms INTEGER NOT NULL,
        run_id TEXT NOT NULL,
        written_at INTEGER NOT NULL,
        PRIMARY KEY (from_ms, to_ms),
        CHECK (from_ms >= 0 AND from_ms < to_ms AND from_ms % 60000 = 0 AND to_ms % 60000 = 0)
      ) STRICT;
      CREATE TABLE stats_speed_offsets (
        group_id TEXT NOT NULL,
        topic TEXT NOT NULL,
        "partition" INTEGER NOT NULL CHECK ("partition" >= 0),
        next_offset INTEGER NOT NULL CHECK (next_offset >= 0),
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (group_id, topic, "partition")
      ) STRICT, WITHOUT ROWID;
    `,
  },
  {
    version: 3,
    name: 'speed and batch discrepancies',
    // Per interval and column, the speed layer's total and the batch run's (money in micros).
    sql: `
      CREATE TABLE stats_discrepancies (
        from_ms INTEGER NOT NULL,
        to_ms INTEGER NOT NULL,
        column_name TEXT NOT NULL,
        speed INTEGER NOT NULL,
        batch INTEGER NOT NULL,
        run_id TEXT NOT NULL,
        computed_at INTEGER NOT NULL,
        PRIMARY KEY (from_ms, to_ms, column_name)
      ) STRICT;
    `,
  },
  {
    version: 4,
    name: 'day rollups',
    // Per (day, offer, placement), the sum of the minute rows of the same side: a day bucket that
    // one side covers whole is read from here, a row per key instead of up to 1,440. Filled from
    // the minute rows already there.
    sql: `${statsTableSql(SQLITE_TYPES, 'speed', 'day', ' STRICT, WITHOUT ROWID')}${statsTableSql(SQLITE_TYPES, 'batch', 'day', ' STRICT, WITHOUT ROWID')}
      ${DAY_BACKFILL}
    `,
  },
  {
    version: 5,
    name: 'scheduler state and alerts',
    sql: schedulerSql('INTEGER', 'TEXT', 'INTEGER', ' STRICT'),
  },
  {
    version: 6,
    name: 'anomaly scores',
    sql: anomalySql('INTEGER', 'REAL', 'TEXT', ' STRICT'),
  },
  {
    version: 7,
    name: 'append-only runs, rollups and batch generations',
    sql: rollupStoreSql('INTEGER', 'TEXT', ' STRICT, WITHOUT ROWID', 'INTEGER PRIMARY KEY'),
  },
  {
    version: 8,
    name: 'complete batch input and what sensors wait for',
    sql: inputAndWaitingSql('INTEGER', 'TEXT'),
  },
];

/** PostgreSQL migrations. */
export const POSTGRES_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'schema registry',
    sql: `
      CREATE TABLE registry_schemas (
        id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        fingerprint text NOT NULL UNIQUE,
        schema text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE registry_versions (
        subject text NOT NULL,
        version integer NOT NULL CHECK (version >= 1),
        schema_id integer NOT NULL REFERENCES registry_schemas (id),
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (subject, version),
        UNIQUE (subject, schema_id)
      );
      CREATE TABLE registry_config (
        subject text PRIMARY KEY,
        compatibility text NOT NULL CHECK (compatibility IN (${LEVELS_SQL})),
        updated_at timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
  {
    version: 2,
    name: 'statistics',
    // Money columns hold micros in a 64-bit integer; times are epoch milliseconds (UTC).
    // COLLATE "C": keys order by code point (as in SQLite), whatever the database's locale, so
    // pages and cursors mean the same in both dialects. fillfactor leaves room on each page for
    // the speed layer's updates to stay heap-only (no key column changes).
    sql: `${statsTableSql(POSTGRES_TYPES, 'speed', 'minute', ' WITH (fillfactor = 80)')}${statsTableSql(POSTGRES_TYPES, 'batch', 'minute', '')}
      CREATE TABLE stats_batch_intervals (
        from_ms bigint NOT NULL,
        to_ms bigint NOT NULL,
        run_id text NOT NULL,
        written_at bigint NOT NULL,
        PRIMARY KEY (from_ms, to_ms),
        CHECK (from_ms >= 0 AND from_ms < to_ms AND from_ms % 60000 = 0 AND to_ms % 60000 = 0)
      );
      CREATE TABLE stats_speed_offsets (
        group_id text NOT NULL,
        topic text NOT NULL,
        "partition" integer NOT NULL CHECK ("partition" >= 0),
        next_offset bigint NOT NULL CHECK (next_offset >= 0),
        updated_at bigint NOT NULL,
        PRIMARY KEY (group_id, topic, "partition")
      );
    `,
  },
  {
    version: 3,
    name: 'speed and batch discrepancies',
    sql: `
      CREATE TABLE stats_discrepancies (
        from_ms bigint NOT NULL,
        to_ms bigint NOT NULL,
        column_name text NOT NULL,
        speed bigint NOT NULL,
        batch bigint NOT NULL,
        run_id text NOT NULL,
        computed_at bigint NOT NULL,
        PRIMARY KEY (from_ms, to_ms, column_name)
      );
    `,
  },
  {
    version: 4,
    name: 'day rollups',
    sql: `${statsTableSql(POSTGRES_TYPES, 'speed', 'day', '')}
      CREATE TABLE stats_batch_day (LIKE stats_speed_day INCLUDING ALL);
      ${DAY_BACKFILL}
    `,
  },
  {
    version: 5,
    name: 'scheduler state and alerts',
    sql: schedulerSql('bigint', 'text', 'bigserial', ''),
  },
  {
    version: 6,
    name: 'anomaly scores',
    sql: anomalySql('bigint', 'double precision', 'text', ''),
  },
  {
    version: 7,
    name: 'append-only runs, rollups and batch generations',
    sql: rollupStoreSql('bigint', 'text COLLATE "C"', '', 'bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY'),
  },
  {
    version: 8,
    name: 'complete batch input and what sensors wait for',
    sql: inputAndWaitingSql('integer', 'text'),
  },
];

/** The migrations still to apply, given the versions a database has; refuses a database newer than this code. */
export function pendingMigrations(all: readonly Migration[], applied: readonly number[], where: string): Migration[] {
  const known = all.at(-1)?.version ?? 0;
  const newest = Math.max(0, ...applied);
  if (newest > known) {
    throw new ReckonError(
      'RECKON_STORE_SCHEMA_TOO_NEW',
      `${where} has schema version ${newest}, but this reckon knows versions up to ${known}: upgrade reckon`,
    );
  }
  const done = new Set(applied);
  return all.filter((m) => !done.has(m.version));
}
