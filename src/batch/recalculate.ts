/**
 * The recalculation job: exact statistics of an interval from every raw event in the lake, in
 * DuckDB SQL. For [from, to) it reads the interval's clicks and emissions plus one click window
 * before `from` (a click after midnight joins its emission before midnight, and an earlier
 * click of the same emission and offer makes a later one a duplicate), deduplicates by event
 * id, applies the contract's rules in their order (invalid, then duplicate, then fraud), and
 * aggregates every column into minute rows, left in the result table (`result-table.ts`). The
 * rules are those of DESIGN.md and `src/events/rules.ts`; the blocklist is matched by the same
 * `ipBlocklistMatcher` the speed layer uses.
 *
 * The SQL is plain and deterministic: every choice is ordered (copies of an id by log offset,
 * then partition, then content; clicks by (ts, id)) and the result is sorted by key, so a rerun
 * over the same lake gives identical rows. Intermediate steps may run in any order
 * (`preserve_insertion_order` off); the result table is written in key order.
 *
 * The work follows what a large day looks like (see bench/batch.bench.ts): most emissions are
 * never clicked and never redelivered, and most minute rows hold one emission. No step groups or
 * joins every emission by a string: repeated ids are found by sorting the 64-bit hashes of the
 * ids (a superset, then ranked exactly by id), and only the rows of those hashes are read in
 * full; the clicks (the small side) are hashed once and every emission probes them; the emissions
 * counted go from the lake through one aggregate, their keys looked up in small tables of ENUM
 * keys rather than cast one by one. `src/batch/README.md` has the profile.
 */
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { ipBlocklistMatcher, ReckonError, type StatsRules } from '../events/index.ts';
import type { MinuteStats } from '../stats/index.ts';
import { createKeyTypes, OFFER_KEY, PLACEMENT_KEY, RESULT_TABLE, resultRows } from './result-table.ts';

/** Placement of invalid clicks whose emission is unknown (DESIGN.md). */
export const NO_PLACEMENT = '(none)';

const MINUTE = 60_000;
const HOUR = 3_600_000;

/** What a recalculation needs. */
export interface RecalculationOptions {
  /** The lake's root (`<dataDir>/lake`). */
  lakeDir: string;
  /** Interval start, epoch ms, a whole UTC hour. */
  from: number;
  /** Interval end (exclusive), epoch ms, a whole UTC hour after `from`. */
  to: number;
  rules: StatsRules;
  /**
   * How far before the click window to look for the emission of an invalid click (only for its
   * placement: such a click is invalid whatever it finds). Default 24 h.
   */
  emissionLookbackMs?: number;
  emissionsTopic?: string;
  clicksTopic?: string;
  /** DuckDB threads. Default: DuckDB's own (the cores). */
  threads?: number;
  /** Lists the data files of one topic's hour: the lake's `lakeHourFiles`, which follows a compaction in progress. */
  listHourFiles: HourFileLister;
  /** Called after each step of the SQL with its wall time, ms (for profiles). */
  onStepTimed?: (step: string, ms: number) => void;
}

/** What went into a recalculation and how many rows came out. */
export interface RecalculationFigures {
  from: number;
  to: number;
  /** Minute rows in the result table. */
  rows: number;
  /** Raw records read (before deduplication), including the look-back before `from`. */
  recordsRead: number;
  /** Distinct emissions and clicks with event time inside the interval. */
  emissions: number;
  clicks: number;
  /** Parquet files read. */
  files: number;
}

/** The rows of an interval and what went into them. */
export interface Recalculation extends Omit<RecalculationFigures, 'rows'> {
  /** Minute rows, ordered by (bucketStart, offerId, placement) in code-point order. */
  rows: MinuteStats[];
}

/** Checks that [from, to) is a non-empty interval of whole UTC hours. */
export function checkInterval(from: number, to: number): void {
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from % HOUR !== 0 || to % HOUR !== 0 || from >= to) {
    throw new ReckonError(
      'RECKON_BATCH_BAD_INTERVAL',
      `interval [${from}, ${to}) must be whole UTC hours with from < to, e.g. 2026-11-21T00:00Z to 2026-11-22T00:00Z`,
    );
  }
}

/**
 * The data files a reader must read of one topic's hour. The lake provides it (`lakeHourFiles`);
 * the batch takes it as a parameter because parts of one floor meet through small interfaces.
 */
export type HourFileLister = (lakeDir: string, topic: string, hourStartMs: number) => string[];

/** The lake's Parquet files of `topic` whose event hours overlap [from, to). */
export function lakeFiles(
  lakeDir: string,
  topic: string,
  from: number,
  to: number,
  lakeHourFiles: HourFileLister,
): string[] {
  const files: string[] = [];
  // Each hour as the lake lists it for readers: consistent with a compaction in progress.
  for (let hour = Math.floor(from / HOUR) * HOUR; hour < to; hour += HOUR)
    files.push(...lakeHourFiles(lakeDir, topic, hour));
  return files;
}

/** A SQL string literal. */
export const sqlString = (s: string): string => `'${s.replaceAll("'", "''")}'`;

/** Opens an in-memory DuckDB for one job. */
export async function openBatchDatabase(threads?: number): Promise<{ connection: DuckDBConnection; close(): void }> {
  const instance = await DuckDBInstance.create(':memory:', threads !== undefined ? { threads: String(threads) } : {});
  const connection = await instance.connect();
  return {
    connection,
    close() {
      connection.closeSync();
      instance.closeSync();
    },
  };
}

const EMISSION_COLUMNS = {
  id: 'VARCHAR',
  ts: 'TIMESTAMP',
  placement: 'VARCHAR',
  offers: 'STRUCT(offer_id VARCHAR, click_cost_micros BIGINT)[]',
  log_partition: 'INTEGER',
  log_offset: 'BIGINT',
};
const CLICK_COLUMNS = {
  id: 'VARCHAR',
  ts: 'TIMESTAMP',
  emission_id: 'VARCHAR',
  offer_id: 'VARCHAR',
  user_id: 'VARCHAR',
  ip: 'VARCHAR',
  log_partition: 'INTEGER',
  log_offset: 'BIGINT',
};

/**
 * A relation of the lake's rows from `files`, with only the named columns (Parquet reads no
 * other), empty (with those column types) when there are no files.
 */
function lakeRows<K extends string>(files: readonly string[], types: Record<K, string>, columns: readonly K[]): string {
  if (files.length > 0) return `(SELECT ${columns.join(', ')} FROM read_parquet([${files.map(sqlString).join(', ')}]))`;
  return `(SELECT ${columns.map((name) => `NULL::${types[name]} AS ${name}`).join(', ')} WHERE false)`;
}

/**
 * The hashes `h` of a relation that occur more than `times` times, each once. A sort of the
 * hashes finds them: neighbours `times` apart are equal. (DuckDB sorts 8-byte keys in about two
 * thirds of the time a hash aggregate takes when nearly every key is distinct.)
 */
function repeatedHashes(relation: string, times = 1): string {
  return `SELECT DISTINCT h FROM (SELECT h, lead(h, ${times}) OVER (ORDER BY h) AS next FROM (${relation})) WHERE h = next`;
}

/** A TIMESTAMP literal of epoch milliseconds (lake `ts` values are whole milliseconds). */
const at = (ms: number): string => `make_timestamp(${ms * 1000})`;

/**
 * Recalculates [from, to) from the lake into the result table of `c`, a fresh database from
 * {@link openBatchDatabase}. The rows stay in DuckDB: read them with `result-table.ts`.
 */
export async function recalculateIntoTable(
  c: DuckDBConnection,
  o: Omit<RecalculationOptions, 'threads'>,
): Promise<RecalculationFigures> {
  checkInterval(o.from, o.to);
  const { from, to, rules } = o;
  const window = rules.clickWindowMs;
  const lookback = o.emissionLookbackMs ?? 24 * HOUR;
  const emissionsTopic = o.emissionsTopic ?? 'emissions';
  const start = from - window;
  // Each hour directory is listed once: the files before `from` (the click window read for
  // judging clicks only) and those of [from, to), whose emissions are counted.
  const insideEmissionFiles = lakeFiles(o.lakeDir, emissionsTopic, from, to, o.listHourFiles);
  const emissionFiles = [...lakeFiles(o.lakeDir, emissionsTopic, start, from, o.listHourFiles), ...insideEmissionFiles];
  const clickFiles = lakeFiles(o.lakeDir, o.clicksTopic ?? 'clicks', start, to, o.listHourFiles);
  const emissions = (...columns: (keyof typeof EMISSION_COLUMNS)[]) =>
    lakeRows(emissionFiles, EMISSION_COLUMNS, columns);
  const insideEmissions = (...columns: (keyof typeof EMISSION_COLUMNS)[]) =>
    lakeRows(insideEmissionFiles, EMISSION_COLUMNS, columns);
  const clicks = (...columns: (keyof typeof CLICK_COLUMNS)[]) => lakeRows(clickFiles, CLICK_COLUMNS, columns);
  // Rows read: the interval and the click window before it. The hour directories already bound
  // them; the filters also hold for files that span hours, and Parquet statistics skip them where
  // a row group lies inside.
  const read = `ts >= ${at(start)} AND ts < ${at(to)}`;
  const inside = `ts >= ${at(from)} AND ts < ${at(to)}`;

  const step = async (name: string, work: () => Promise<unknown>): Promise<void> => {
    const t0 = performance.now();
    await work();
    o.onStepTimed?.(name, performance.now() - t0);
  };

  // Intermediate results need no order; the result table gets its order from ORDER BY below.
  await c.run('SET preserve_insertion_order = false');

  // Copies. Copies of an id resolve to the lowest log offset (then partition, then content, so
  // that even a conflicting copy resolves the same way); ids may repeat across hours, so the
  // check is global. It sorts the 64-bit hashes of the ids, not the ids: the hashes seen more
  // than once are a superset of the repeated ids (a collision only adds a row to rank), and every
  // row with such a hash is then ranked exactly, by id.
  await step('repeated ids', async () => {
    await c.run(
      `CREATE TEMP TABLE em_dup AS ${repeatedHashes(`SELECT hash(id) AS h FROM ${emissions('id', 'ts')} WHERE ${read}`)}`,
    );
    await c.run(
      `CREATE TEMP TABLE cl_dup AS ${repeatedHashes(`SELECT hash(id) AS h FROM ${clicks('id', 'ts')} WHERE ${read}`)}`,
    );
  });
  // Every copy of a possibly repeated emission id, in full; `copy` 1 is the copy that counts.
  await step('emission copies', () =>
    c.run(`CREATE TEMP TABLE em_copies AS
      SELECT id, epoch_ms(ts) AS ts, placement, offers,
             row_number() OVER (PARTITION BY id ORDER BY log_offset, log_partition, ts, placement, offers) AS copy
      FROM ${emissions('id', 'ts', 'placement', 'offers', 'log_partition', 'log_offset')} e
      SEMI JOIN em_dup d ON d.h = hash(e.id)
      WHERE ${read}`),
  );

  // Each click once, judged by rule 1 against the copy of its emission that counts: the clicks
  // (the smaller side) are hashed and every emission read probes them, so no emission is
  // materialized for the join.
  await step('judged clicks', () =>
    c.run(`CREATE TEMP TABLE judged AS
      WITH cl AS (
        SELECT id, epoch_ms(ts) AS ts, emission_id, offer_id, user_id, ip
        FROM ${clicks('id', 'ts', 'emission_id', 'offer_id', 'user_id', 'ip')} k
        ANTI JOIN cl_dup d ON d.h = hash(k.id)
        WHERE ${read}
        UNION ALL
        SELECT id, epoch_ms(ts), emission_id, offer_id, user_id, ip FROM (
          SELECT * FROM ${clicks('id', 'ts', 'emission_id', 'offer_id', 'user_id', 'ip', 'log_partition', 'log_offset')} k
          SEMI JOIN cl_dup d ON d.h = hash(k.id)
          WHERE ${read}
          QUALIFY row_number() OVER (PARTITION BY id ORDER BY log_offset, log_partition, ts, emission_id, offer_id, user_id, ip) = 1)),
      em AS (
        SELECT id, epoch_ms(ts) AS ts, placement, offers
        FROM ${emissions('id', 'ts', 'placement', 'offers')} e
        ANTI JOIN em_dup d ON d.h = hash(e.id)
        WHERE ${read}
        UNION ALL
        SELECT id, ts, placement, offers FROM em_copies WHERE copy = 1)
      -- Rule 1, invalid: no emission, an offer it did not list, or outside [emission ts, + window].
      SELECT id, ts, emission_id, offer_id, user_id, ip, placement, listed[1].click_cost_micros AS cost,
             (len(listed) > 0 AND ts >= emitted AND ts <= emitted + ${window}) IS TRUE AS valid
      FROM (SELECT c.*, e.placement, e.ts AS emitted, list_filter(e.offers, lambda x: x.offer_id = c.offer_id) AS listed
            FROM cl c LEFT JOIN em e ON e.id = c.emission_id)`),
  );
  // An invalid click whose emission is older than the window still takes the emission's placement.
  const olderFiles = lakeFiles(o.lakeDir, emissionsTopic, start - lookback, start, o.listHourFiles);
  await step('look-back placements', async () => {
    if (olderFiles.length > 0) {
      await c.run(`UPDATE judged SET placement = older.placement
        FROM (SELECT id, placement FROM read_parquet([${olderFiles.map(sqlString).join(', ')}]) e
              SEMI JOIN (SELECT emission_id FROM judged WHERE placement IS NULL) v ON v.emission_id = e.id
              QUALIFY row_number() OVER (PARTITION BY id ORDER BY log_offset, log_partition, placement) = 1) AS older
        WHERE judged.emission_id = older.id AND judged.placement IS NULL`);
    }
    await c.run(`UPDATE judged SET placement = ${sqlString(NO_PLACEMENT)} WHERE placement IS NULL`);
  });

  // Rule 3a's blocklist, matched in JS by the shared matcher over the distinct addresses of the
  // interval's valid clicks (a superset of the billable ones it applies to).
  await step('blocklist', async () => {
    await c.run('CREATE TEMP TABLE blocked (ip VARCHAR PRIMARY KEY)');
    if (rules.ipBlocklist.length === 0) return;
    const isBlocked = ipBlocklistMatcher(rules.ipBlocklist);
    const ips = await c.runAndReadAll(
      `SELECT DISTINCT ip FROM judged WHERE valid AND ts >= ${from} AND ip IS NOT NULL`,
    );
    const hits = (ips.getRows() as [string][]).map(([ip]) => ip).filter(isBlocked);
    for (let i = 0; i < hits.length; i += 1000) {
      const values = hits.slice(i, i + 1000).map((ip) => `(${sqlString(ip)})`);
      await c.run(`INSERT INTO blocked VALUES ${values.join(', ')}`);
    }
  });

  // Rules 2 and 3b rank clicks only inside groups that can need it, found by hashing the group
  // keys (a collision only adds a group to rank; the ranking itself is by the keys).
  const max = rules.maxClicksPerUserOfferHour;
  await step('duplicates and allowance', async () => {
    // Rule 2, duplicates: among the valid clicks of one (emission, offer), only the earliest
    // (ts, id) is billable.
    await c.run(`CREATE TEMP TABLE duplicate AS
      SELECT id FROM (
        SELECT j.id, row_number() OVER (PARTITION BY j.emission_id, j.offer_id ORDER BY j.ts, j.id) AS n
        FROM judged j
        SEMI JOIN (${repeatedHashes('SELECT hash(emission_id, offer_id) AS h FROM judged WHERE valid')}) g
          ON g.h = hash(j.emission_id, j.offer_id)
        WHERE j.valid)
      WHERE n > 1`);
    // Rule 3b, the hourly allowance among the clicks of the interval still billable, by (ts, id).
    await c.run(`CREATE TEMP TABLE over_allowance AS
      SELECT id FROM (
        SELECT a.id, row_number() OVER (PARTITION BY a.user_id, a.offer_id, a.ts // ${HOUR} ORDER BY a.ts, a.id) AS n
        FROM judged a
        SEMI JOIN (${repeatedHashes(`SELECT hash(user_id, offer_id, ts // ${HOUR}) AS h FROM judged WHERE valid AND ts >= ${from}`, max)}) g
          ON g.h = hash(a.user_id, a.offer_id, a.ts // ${HOUR})
        ANTI JOIN duplicate d ON d.id = a.id
        ANTI JOIN blocked b ON b.ip = a.ip
        WHERE a.valid AND a.ts >= ${from})
      WHERE n > ${max}`);
  });

  // Keys as ENUMs in code-point order: the aggregates and the sort work on small integers. The
  // emissions' keys are looked up in small tables of (string, key) rather than cast one by one.
  await step('key dictionaries', async () => {
    // One pass for both sets of keys.
    await c.run(`CREATE TEMP TABLE em_keys AS
      SELECT offer_id, placement FROM (
        SELECT unnest(offers).offer_id AS offer_id, placement FROM ${insideEmissions('ts', 'placement', 'offers')} WHERE ${inside})
      GROUP BY GROUPING SETS ((offer_id), (placement))`);
    await createKeyTypes(
      c,
      'SELECT offer_id FROM em_keys UNION SELECT offer_id FROM judged',
      'SELECT placement FROM em_keys UNION SELECT placement FROM judged',
    );
    await c.run(`CREATE TEMP TABLE offer_keys AS
      SELECT offer_id, offer_id::${OFFER_KEY} AS offer_key FROM em_keys WHERE offer_id IS NOT NULL`);
    await c.run(`CREATE TEMP TABLE placement_keys AS
      SELECT placement, placement::${PLACEMENT_KEY} AS placement_key FROM em_keys WHERE placement IS NOT NULL`);
  });

  const minute = (ms: string) => `(${ms} // ${MINUTE})::INTEGER`;
  // Emissions: every emission inside the interval once (the rows whose id has no copies, and the
  // copy that counts of the others), per listed offer, by emission ts.
  const emissionCounts = `
    SELECT minute, k.offer_key AS offer_id, p.placement_key AS placement, count(*)::INTEGER AS emissions
    FROM (SELECT minute, unnest(offers).offer_id AS offer_id, placement FROM (
            SELECT ${minute('epoch_ms(ts)')} AS minute, offers, placement
            FROM ${insideEmissions('id', 'ts', 'placement', 'offers')} e ANTI JOIN em_dup d ON d.h = hash(e.id)
            WHERE ${inside}
            UNION ALL
            SELECT ${minute('ts')}, offers, placement FROM em_copies WHERE copy = 1 AND ts >= ${from} AND ts < ${to})) u
    JOIN offer_keys k USING (offer_id) JOIN placement_keys p USING (placement)
    GROUP BY ALL`;
  // Clicks of the interval: one verdict each, the rules in the contract's order; 0 billable,
  // 1 duplicate, 2 fraud, 3 invalid.
  const clickCounts = `
    SELECT ${minute('ts')} AS minute, offer_id::${OFFER_KEY} AS offer_id, placement::${PLACEMENT_KEY} AS placement,
           count(*) FILTER (WHERE verdict = 0)::INTEGER AS clicks,
           coalesce(sum(cost) FILTER (WHERE verdict = 0), 0)::BIGINT AS click_cost,
           count(*) FILTER (WHERE verdict = 1)::INTEGER AS duplicate_clicks,
           count(*) FILTER (WHERE verdict = 2)::INTEGER AS fraud_clicks,
           coalesce(sum(cost) FILTER (WHERE verdict = 2), 0)::BIGINT AS fraud_cost,
           count(*) FILTER (WHERE verdict = 3)::INTEGER AS invalid_clicks
    FROM (SELECT j.ts, j.offer_id, j.placement, j.cost,
                 CASE WHEN NOT j.valid THEN 3
                      WHEN d.id IS NOT NULL THEN 1
                      WHEN b.ip IS NOT NULL OR a.id IS NOT NULL THEN 2
                      ELSE 0 END AS verdict
          FROM judged j LEFT JOIN duplicate d ON d.id = j.id LEFT JOIN over_allowance a ON a.id = j.id
            LEFT JOIN blocked b ON j.valid AND b.ip = j.ip
          WHERE j.ts >= ${from})
    GROUP BY ALL`;

  // Both counts are kept before the join and the sort (measured as fast as one statement from the
  // lake to the result table, with less memory at its peak: the aggregate is gone before the sort).
  await step('emission counts', () => c.run(`CREATE TEMP TABLE emission_counts AS ${emissionCounts}`));
  await step('click counts', () => c.run(`CREATE TEMP TABLE click_counts AS ${clickCounts}`));
  // The result, in key order (the ENUMs order by code point).
  await c.run('SET preserve_insertion_order = true');
  await step('result table', () =>
    c.run(`CREATE TABLE ${RESULT_TABLE} AS
    SELECT minute, offer_id, placement, coalesce(e.emissions, 0) AS emissions, coalesce(k.clicks, 0) AS clicks,
           coalesce(k.click_cost, 0) AS click_cost, coalesce(k.duplicate_clicks, 0) AS duplicate_clicks,
           coalesce(k.fraud_clicks, 0) AS fraud_clicks, coalesce(k.fraud_cost, 0) AS fraud_cost,
           coalesce(k.invalid_clicks, 0) AS invalid_clicks
    FROM emission_counts e FULL OUTER JOIN click_counts k USING (minute, offer_id, placement)
    ORDER BY minute, offer_id, placement`),
  );
  let figures: number[] = [];
  await step('figures', async () => {
    const got = await c.runAndReadAll(`SELECT
      (SELECT count(*) FROM ${emissions('ts')} WHERE ${read}) + (SELECT count(*) FROM ${clicks('ts')} WHERE ${read}),
      (SELECT count(*) FROM ${insideEmissions('ts')} WHERE ${inside}),
      (SELECT count(*) FROM em_copies WHERE copy > 1 AND ts >= ${from} AND ts < ${to}),
      (SELECT count(*) FROM judged WHERE ts >= ${from})`);
    figures = got.getRows()[0]?.map(Number) ?? [];
  });
  const [recordsRead = 0, emissionsInside = 0, surplusInside = 0, clicksInside = 0] = figures;
  await c.run(`DROP TABLE em_dup; DROP TABLE cl_dup; DROP TABLE em_copies; DROP TABLE judged; DROP TABLE blocked;
    DROP TABLE duplicate; DROP TABLE over_allowance; DROP TABLE em_keys; DROP TABLE offer_keys; DROP TABLE placement_keys;
    DROP TABLE emission_counts; DROP TABLE click_counts`);
  const rows = Number((await c.runAndReadAll(`SELECT count(*) FROM ${RESULT_TABLE}`)).getRows()[0]?.[0] ?? 0);
  return {
    from,
    to,
    rows,
    recordsRead,
    emissions: emissionsInside - surplusInside,
    clicks: clicksInside,
    files: emissionFiles.length + clickFiles.length,
  };
}

/** Recalculates [from, to) from the lake and returns its rows (for small intervals and tests). */
export async function recalculateInterval(o: RecalculationOptions): Promise<Recalculation> {
  const db = await openBatchDatabase(o.threads);
  try {
    const { rows: _rows, ...figures } = await recalculateIntoTable(db.connection, o);
    return { ...figures, rows: await resultRows(db.connection) };
  } finally {
    db.close();
  }
}
