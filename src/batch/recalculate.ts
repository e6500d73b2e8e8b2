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
 * never clicked and never redelivered. Their ids go through one aggregate (which ids have
 * copies); otherwise they are only scanned: for the emissions that clicks name (picked out in
 * full, with every copy of a repeated id), for the key dictionaries, and into the big aggregate,
 * which subtracts the surplus copies instead of filtering every emission against them.
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

/** A relation of the lake's rows of `columns` from `files`, empty (with those column types) when there are none. */
function lakeRows(files: readonly string[], columns: Record<string, string>): string {
  if (files.length > 0) {
    return `(SELECT ${Object.keys(columns).join(', ')} FROM read_parquet([${files.map(sqlString).join(', ')}]))`;
  }
  const nulls = Object.entries(columns).map(([name, type]) => `NULL::${type} AS ${name}`);
  return `(SELECT ${nulls.join(', ')} WHERE false)`;
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
  const emissionFiles = lakeFiles(o.lakeDir, emissionsTopic, start, to, o.listHourFiles);
  const clickFiles = lakeFiles(o.lakeDir, o.clicksTopic ?? 'clicks', start, to, o.listHourFiles);
  const emissions = lakeRows(emissionFiles, EMISSION_COLUMNS);
  const clicks = lakeRows(clickFiles, CLICK_COLUMNS);
  // Rows read: the interval and the click window before it.
  const read = `ts >= ${at(start)} AND ts < ${at(to)}`;
  const inside = `ts >= ${at(from)} AND ts < ${at(to)}`;

  const step = async (name: string, work: () => Promise<unknown>): Promise<void> => {
    const t0 = performance.now();
    await work();
    o.onStepTimed?.(name, performance.now() - t0);
  };

  // Intermediate results need no order; the result table gets its order from ORDER BY below.
  await c.run('SET preserve_insertion_order = false');

  // Ids delivered more than once. A redelivery repeats the id: copies resolve to the lowest log
  // offset (then partition, then content, so that even a conflicting copy resolves the same way).
  await step('repeated emission ids', () =>
    c.run(`CREATE TEMP TABLE em_repeated AS
    SELECT id FROM ${emissions} WHERE ${read} GROUP BY id HAVING count(*) > 1`),
  );
  await step('clicks', () =>
    c.run(`CREATE TEMP TABLE cl AS
    SELECT id, epoch_ms(ts) AS ts, emission_id, offer_id, user_id, ip FROM ${clicks} WHERE ${read}
    QUALIFY row_number() OVER (PARTITION BY id ORDER BY log_offset, log_partition, ts, emission_id, offer_id, user_id, ip) = 1`),
  );
  // The emissions picked out in full: every copy of a repeated id, and every emission a click
  // names. `copy` 1 is the copy that counts; the others are surplus.
  await step('emissions picked', () =>
    c.run(`CREATE TEMP TABLE em_picked AS
    WITH picked AS (
      SELECT e.id, epoch_ms(e.ts) AS ts, e.placement, e.offers, e.log_partition, e.log_offset
      FROM ${emissions} e SEMI JOIN (SELECT id FROM em_repeated UNION ALL SELECT emission_id FROM cl) n ON n.id = e.id
      WHERE ${read})
    SELECT p.id, p.ts, p.placement, p.offers, 1 AS copy FROM picked p ANTI JOIN em_repeated r ON r.id = p.id
    UNION ALL
    SELECT p.id, p.ts, p.placement, p.offers,
           row_number() OVER (PARTITION BY p.id ORDER BY p.log_offset, p.log_partition, p.ts, p.placement, p.offers)
    FROM picked p SEMI JOIN em_repeated r ON r.id = p.id`),
  );

  // Rule 3a's blocklist, matched in JS by the shared matcher over the distinct addresses of the
  // interval's clicks (a superset of the billable ones it applies to).
  await step('blocklist', async () => {
    await c.run('CREATE TEMP TABLE blocked (ip VARCHAR PRIMARY KEY)');
    if (rules.ipBlocklist.length === 0) return;
    const isBlocked = ipBlocklistMatcher(rules.ipBlocklist);
    const ips = await c.runAndReadAll(`SELECT DISTINCT ip FROM cl WHERE ts >= ${from} AND ip IS NOT NULL`);
    const hits = (ips.getRows() as [string][]).map(([ip]) => ip).filter(isBlocked);
    for (let i = 0; i < hits.length; i += 1000) {
      const values = hits.slice(i, i + 1000).map((ip) => `(${sqlString(ip)})`);
      await c.run(`INSERT INTO blocked VALUES ${values.join(', ')}`);
    }
  });

  // One verdict per click of the interval, the rules in the contract's order.
  const max = rules.maxClicksPerUserOfferHour;
  await step('verdicts', () =>
    c.run(`CREATE TEMP TABLE verdicts AS
    WITH judged AS (
      -- Rule 1, invalid: no emission, an offer it did not list, or outside [emission ts, + window].
      SELECT id, ts, emission_id, offer_id, user_id, ip, placement, listed[1].click_cost_micros AS cost,
             (len(listed) > 0 AND ts >= emitted AND ts <= emitted + ${window}) IS TRUE AS valid
      FROM (SELECT c.*, e.placement, e.ts AS emitted, list_filter(e.offers, lambda o: o.offer_id = c.offer_id) AS listed
            FROM cl c LEFT JOIN em_picked e ON e.id = c.emission_id AND e.copy = 1)),
    repeated AS (
      -- Rule 2, duplicates: among the valid clicks of one (emission, offer), only the earliest (ts, id)
      -- is billable; ranked only where there is more than one.
      SELECT j.id, row_number() OVER (PARTITION BY j.emission_id, j.offer_id ORDER BY j.ts, j.id) AS dup_rank
      FROM judged j
      SEMI JOIN (SELECT emission_id, offer_id FROM judged WHERE valid GROUP BY ALL HAVING count(*) > 1) g
        ON g.emission_id = j.emission_id AND g.offer_id = j.offer_id
      WHERE j.valid),
    ranked AS (
      SELECT j.*, coalesce(r.dup_rank, 1) AS dup_rank, b.ip IS NOT NULL AS blocked
      FROM judged j LEFT JOIN repeated r ON r.id = j.id LEFT JOIN blocked b ON j.valid AND b.ip = j.ip
      WHERE j.ts >= ${from}),
    allowed AS (
      SELECT id, ts, user_id, offer_id, ts // ${HOUR} AS hour FROM ranked WHERE valid AND dup_rank = 1 AND NOT blocked),
    over_allowance AS (
      -- Rule 3b, the hourly allowance among the billable clicks left, by (ts, id); ranked only
      -- where a user clicked an offer more than the allowance in an hour.
      SELECT id FROM (
        SELECT a.id, row_number() OVER (PARTITION BY a.user_id, a.offer_id, a.hour ORDER BY a.ts, a.id) AS n
        FROM allowed a
        SEMI JOIN (SELECT user_id, offer_id, hour FROM allowed GROUP BY ALL HAVING count(*) > ${max}) h
          ON h.user_id = a.user_id AND h.offer_id = a.offer_id AND h.hour = a.hour)
      WHERE n > ${max})
    SELECT r.ts, r.emission_id, r.offer_id, r.placement, r.cost,
      CASE WHEN NOT r.valid THEN 'invalid'
           WHEN r.dup_rank > 1 THEN 'duplicate'
           WHEN r.blocked OR o.id IS NOT NULL THEN 'fraud'
           ELSE 'billable' END AS verdict
    FROM ranked r LEFT JOIN over_allowance o ON o.id = r.id`),
  );
  // An invalid click whose emission is older than the window still takes its placement.
  const olderFiles = lakeFiles(o.lakeDir, emissionsTopic, start - lookback, start, o.listHourFiles);
  await step('look-back placements', async () => {
    if (olderFiles.length > 0) {
      await c.run(`UPDATE verdicts SET placement = older.placement
        FROM (SELECT id, placement FROM read_parquet([${olderFiles.map(sqlString).join(', ')}]) e
              SEMI JOIN (SELECT emission_id FROM verdicts WHERE placement IS NULL) v ON v.emission_id = e.id
              QUALIFY row_number() OVER (PARTITION BY id ORDER BY log_offset, log_partition, placement) = 1) AS older
        WHERE verdicts.emission_id = older.id AND verdicts.placement IS NULL`);
    }
    await c.run(`UPDATE verdicts SET placement = ${sqlString(NO_PLACEMENT)} WHERE placement IS NULL`);
  });

  // Keys as ENUMs in code-point order: the aggregates and the sort work on small integers.
  await step('key dictionaries', async () => {
    // One pass for both: the distinct (offer, placement) pairs are few.
    await c.run(`CREATE TEMP TABLE em_keys AS
      SELECT DISTINCT unnest(offers).offer_id AS offer_id, placement FROM ${emissions} WHERE ${inside}`);
    await createKeyTypes(
      c,
      'SELECT offer_id FROM em_keys UNION SELECT offer_id FROM verdicts',
      'SELECT placement FROM em_keys UNION SELECT placement FROM verdicts',
    );
    await c.run('DROP TABLE em_keys');
  });
  const minute = (ms: string) => `(${ms} // ${MINUTE})::INTEGER`;
  // Emissions: every copy inside the interval counts once per listed offer, and each surplus
  // copy takes itself back, so no emission has to be checked against the repeated ids.
  await step('emission counts', () =>
    c.run(`CREATE TEMP TABLE emission_counts AS
    SELECT minute, offer_id, placement, sum(n)::INTEGER AS emissions FROM (
      SELECT ${minute('epoch_ms(ts)')} AS minute, unnest(offers).offer_id::${OFFER_KEY} AS offer_id,
             placement::${PLACEMENT_KEY} AS placement, 1 AS n
      FROM ${emissions} WHERE ${inside}
      UNION ALL
      SELECT ${minute('ts')}, unnest(offers).offer_id::${OFFER_KEY}, placement::${PLACEMENT_KEY}, -1
      FROM em_picked WHERE copy > 1 AND ts >= ${from})
    GROUP BY minute, offer_id, placement HAVING sum(n) <> 0`),
  );
  await step('click counts', () =>
    c.run(`CREATE TEMP TABLE click_counts AS
    SELECT ${minute('ts')} AS minute, offer_id::${OFFER_KEY} AS offer_id, placement::${PLACEMENT_KEY} AS placement,
           count_if(verdict = 'billable')::INTEGER AS clicks,
           coalesce(sum(cost) FILTER (WHERE verdict = 'billable'), 0)::BIGINT AS click_cost,
           count_if(verdict = 'duplicate')::INTEGER AS duplicate_clicks,
           count_if(verdict = 'fraud')::INTEGER AS fraud_clicks,
           coalesce(sum(cost) FILTER (WHERE verdict = 'fraud'), 0)::BIGINT AS fraud_cost,
           count_if(verdict = 'invalid')::INTEGER AS invalid_clicks
    FROM verdicts GROUP BY ALL`),
  );
  let figures: number[] = [];
  await step('figures', async () => {
    const got = await c.runAndReadAll(`SELECT
      (SELECT count(*) FROM ${emissions} WHERE ${read}) + (SELECT count(*) FROM ${clicks} WHERE ${read}),
      (SELECT count(*) FROM ${emissions} WHERE ${inside}),
      (SELECT count(*) FROM em_picked WHERE copy > 1 AND ts >= ${from}),
      (SELECT count(*) FROM cl WHERE ts >= ${from})`);
    figures = got.getRows()[0]?.map(Number) ?? [];
  });
  const [recordsRead = 0, emissionsInside = 0, surplusInside = 0, clicksInside = 0] = figures;
  await c.run('DROP TABLE em_repeated; DROP TABLE cl; DROP TABLE em_picked; DROP TABLE blocked; DROP TABLE verdicts');

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
  await c.run('DROP TABLE emission_counts; DROP TABLE click_counts');
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
