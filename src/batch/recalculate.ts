/**
 * The recalculation job: exact statistics of an interval from every raw event in the lake, in
 * DuckDB SQL. For [from, to) it reads the interval's clicks and emissions plus one click window
 * before `from` (a click after midnight joins its emission before midnight, and an earlier
 * click of the same emission and offer makes a later one a duplicate), deduplicates by event
 * id, applies the contract's rules in their order (invalid, then duplicate, then fraud), and
 * aggregates every column into minute rows. The rules are those of DESIGN.md and
 * `src/events/rules.ts`; the blocklist is matched by the same `ipBlocklistMatcher` the speed
 * layer uses.
 *
 * The SQL is plain and deterministic (`ORDER BY` everywhere a choice could differ), so a rerun
 * over the same lake gives identical rows.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { ipBlocklistMatcher, ReckonError, type StatsRules } from '../events/index.ts';
import type { MinuteStats } from '../store/index.ts';

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
}

/** The rows of an interval and what went into them. */
export interface Recalculation {
  from: number;
  to: number;
  /** Minute rows, ordered by (bucketStart, offerId, placement) in code-point order. */
  rows: MinuteStats[];
  /** Raw records read (before deduplication), including the look-back before `from`. */
  recordsRead: number;
  /** Distinct emissions and clicks with event time inside the interval. */
  emissions: number;
  clicks: number;
  /** Parquet files read. */
  files: number;
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

/** The lake's Parquet files of `topic` whose event hours overlap [from, to). */
export function lakeFiles(lakeDir: string, topic: string, from: number, to: number): string[] {
  const files: string[] = [];
  for (let hour = Math.floor(from / HOUR) * HOUR; hour < to; hour += HOUR) {
    const iso = new Date(hour).toISOString();
    const dir = join(lakeDir, topic, `date=${iso.slice(0, 10)}`, `hour=${iso.slice(11, 13)}`);
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir).sort()) {
      // Temporary files of a write in progress (or cut short) start with a dot.
      if (name.endsWith('.parquet') && !name.startsWith('.')) files.push(join(dir, name));
    }
  }
  return files;
}

const sqlString = (s: string): string => `'${s.replaceAll("'", "''")}'`;
const fileList = (files: string[]): string => `[${files.map(sqlString).join(', ')}]`;

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

/** Recalculates [from, to) from the lake. */
export async function recalculateInterval(o: RecalculationOptions): Promise<Recalculation> {
  checkInterval(o.from, o.to);
  const window = o.rules.clickWindowMs;
  const lookback = o.emissionLookbackMs ?? 24 * HOUR;
  const emissionsTopic = o.emissionsTopic ?? 'emissions';
  const clicksTopic = o.clicksTopic ?? 'clicks';
  const start = o.from - window;
  const emissionFiles = lakeFiles(o.lakeDir, emissionsTopic, start, o.to);
  const clickFiles = lakeFiles(o.lakeDir, clicksTopic, start, o.to);
  const db = await openBatchDatabase(o.threads);
  const c = db.connection;
  try {
    // One copy of each event id: a redelivery lands in the same partition (same key), later.
    await c.run(
      emissionFiles.length === 0
        ? `CREATE TEMP TABLE em (id VARCHAR, ts BIGINT, placement VARCHAR,
             offers STRUCT(offer_id VARCHAR, click_cost_micros BIGINT)[], copies BIGINT)`
        : `CREATE TEMP TABLE em AS
           SELECT id, arg_min(epoch_ms(ts), log_offset) AS ts, arg_min(placement, log_offset) AS placement,
                  arg_min(offers, log_offset) AS offers, count(*) AS copies
           FROM read_parquet(${fileList(emissionFiles)})
           WHERE epoch_ms(ts) >= ${start} AND epoch_ms(ts) < ${o.to}
           GROUP BY id`,
    );
    await c.run(`CREATE TEMP TABLE em_offer AS
      SELECT id, ts, placement, o.offer_id AS offer_id, o.click_cost_micros AS cost
      FROM (SELECT id, ts, placement, unnest(offers) AS o FROM em)`);
    await c.run(
      clickFiles.length === 0
        ? `CREATE TEMP TABLE cl (id VARCHAR, ts BIGINT, emission_id VARCHAR, offer_id VARCHAR, user_id VARCHAR,
             ip VARCHAR, copies BIGINT)`
        : `CREATE TEMP TABLE cl AS
           SELECT id, arg_min(epoch_ms(ts), log_offset) AS ts, arg_min(emission_id, log_offset) AS emission_id,
                  arg_min(offer_id, log_offset) AS offer_id, arg_min(user_id, log_offset) AS user_id,
                  arg_min(ip, log_offset) AS ip, count(*) AS copies
           FROM read_parquet(${fileList(clickFiles)})
           WHERE epoch_ms(ts) >= ${start} AND epoch_ms(ts) < ${o.to}
           GROUP BY id`,
    );
    // Rule 1, invalid: no emission, an offer it did not list, or outside [emission ts, + window].
    await c.run(`CREATE TEMP TABLE judged AS
      SELECT cl.id, cl.ts, cl.emission_id, cl.offer_id, cl.user_id, cl.ip, em.placement AS placement, eo.cost AS cost,
             (eo.id IS NOT NULL AND cl.ts >= eo.ts AND cl.ts <= eo.ts + ${window}) AS valid
      FROM cl
      LEFT JOIN em ON em.id = cl.emission_id
      LEFT JOIN em_offer eo ON eo.id = cl.emission_id AND eo.offer_id = cl.offer_id`);
    // An invalid click of the interval whose emission is older than the window still takes its placement.
    const olderFiles = lakeFiles(o.lakeDir, emissionsTopic, start - lookback, start);
    if (olderFiles.length > 0) {
      await c.run(`UPDATE judged SET placement = older.placement
        FROM (SELECT id, arg_min(placement, log_offset) AS placement
              FROM read_parquet(${fileList(olderFiles)})
              WHERE id IN (SELECT emission_id FROM judged WHERE placement IS NULL AND ts >= ${o.from})
              GROUP BY id) AS older
        WHERE judged.emission_id = older.id AND judged.placement IS NULL`);
    }
    // Rule 2, duplicates: among the valid clicks of one (emission, offer) only the earliest (ts, id) stays.
    await c.run(`CREATE TEMP TABLE ranked AS
      SELECT *, CASE WHEN valid
                  THEN row_number() OVER (PARTITION BY emission_id, offer_id, valid ORDER BY ts, id) END AS dup_rank
      FROM judged`);
    // Rule 3a, blocklisted addresses: matched in JS by the shared matcher, over the distinct addresses.
    await c.run('CREATE TEMP TABLE blocked (ip VARCHAR PRIMARY KEY)');
    if (o.rules.ipBlocklist.length > 0) {
      const isBlocked = ipBlocklistMatcher(o.rules.ipBlocklist);
      const ips = await c.runAndReadAll(
        `SELECT DISTINCT ip FROM ranked WHERE dup_rank = 1 AND ts >= ${o.from} ORDER BY ip`,
      );
      const hits = (ips.getRows() as [string][]).map(([ip]) => ip).filter(isBlocked);
      for (let i = 0; i < hits.length; i += 1000) {
        const values = hits.slice(i, i + 1000).map((ip) => `(${sqlString(ip)})`);
        await c.run(`INSERT INTO blocked VALUES ${values.join(', ')}`);
      }
    }
    // Rule 3b, the hourly allowance among the billable clicks left, by (ts, id).
    await c.run(`CREATE TEMP TABLE verdicts AS
      SELECT ts, offer_id, coalesce(placement, ${sqlString(NO_PLACEMENT)}) AS placement, cost,
        CASE WHEN NOT valid THEN 'invalid'
             WHEN dup_rank > 1 THEN 'duplicate'
             WHEN is_blocked THEN 'fraud'
             WHEN row_number() OVER (PARTITION BY user_id, offer_id, ts // ${HOUR}, valid AND dup_rank = 1 AND NOT is_blocked
                                     ORDER BY ts, id) > ${o.rules.maxClicksPerUserOfferHour} THEN 'fraud'
             ELSE 'billable' END AS verdict
      FROM (SELECT r.*, (b.ip IS NOT NULL) AS is_blocked
            FROM ranked r LEFT JOIN blocked b ON b.ip = r.ip
            WHERE r.ts >= ${o.from})`);
    const result = await c.runAndReadAll(`
      SELECT bucket, offer_id, placement,
             sum(emissions)::INTEGER, sum(clicks)::INTEGER, sum(click_cost)::BIGINT,
             sum(duplicate_clicks)::INTEGER, sum(fraud_clicks)::INTEGER, sum(fraud_cost)::BIGINT,
             sum(invalid_clicks)::INTEGER
      FROM (
        SELECT ts // ${MINUTE} * ${MINUTE} AS bucket, offer_id, placement, 1 AS emissions, 0 AS clicks,
               0 AS click_cost, 0 AS duplicate_clicks, 0 AS fraud_clicks, 0 AS fraud_cost, 0 AS invalid_clicks
        FROM em_offer WHERE ts >= ${o.from}
        UNION ALL
        SELECT ts // ${MINUTE} * ${MINUTE}, offer_id, placement, 0,
               (verdict = 'billable')::INT, CASE WHEN verdict = 'billable' THEN cost ELSE 0 END,
               (verdict = 'duplicate')::INT, (verdict = 'fraud')::INT,
               CASE WHEN verdict = 'fraud' THEN cost ELSE 0 END, (verdict = 'invalid')::INT
        FROM verdicts
      )
      GROUP BY bucket, offer_id, placement
      ORDER BY bucket, offer_id, placement`);
    // Counts as INTEGER (a minute row never holds 2^31 events), money as exact BIGINT micros.
    const rows: MinuteStats[] = (result.getRows() as unknown[][]).map((r) => ({
      bucketStart: Number(r[0] as bigint),
      offerId: r[1] as string,
      placement: r[2] as string,
      emissions: r[3] as number,
      clicks: r[4] as number,
      clickCost: r[5] as bigint,
      duplicateClicks: r[6] as number,
      fraudClicks: r[7] as number,
      fraudCost: r[8] as bigint,
      invalidClicks: r[9] as number,
    }));
    const counts = await c.runAndReadAll(`SELECT
      (SELECT coalesce(sum(copies), 0) FROM em)::BIGINT + (SELECT coalesce(sum(copies), 0) FROM cl)::BIGINT,
      (SELECT count(*) FROM em WHERE ts >= ${o.from})::BIGINT,
      (SELECT count(*) FROM cl WHERE ts >= ${o.from})::BIGINT`);
    const [read, emissions, clicks] = (counts.getRows()[0] ?? [0, 0, 0]).map(Number) as [number, number, number];
    return {
      from: o.from,
      to: o.to,
      rows,
      recordsRead: read,
      emissions,
      clicks,
      files: emissionFiles.length + clickFiles.length,
    };
  } finally {
    db.close();
  }
}
