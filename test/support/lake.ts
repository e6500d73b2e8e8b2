/**
 * Test helper: writes simulator lines straight into a lake in the archiver's layout and schema
 * (`<lake>/<topic>/date=YYYY-MM-DD/hour=HH/*.parquet`), without a log, for batch tests and
 * benchmarks. Offsets count per topic in arrival order, all in partition 0.
 */
import { mkdirSync } from 'node:fs';
import { DuckDBInstance } from '@duckdb/node-api';
import { parseEventLine } from '../../src/events/index.ts';
import { lakeTopicFiles } from '../../src/lake/index.ts';

/** Writes the valid events of `lines` (arrival order) into the lake; returns how many. */
export async function writeLakeFromLines(lakeDir: string, lines: Iterable<string>): Promise<number> {
  mkdirSync(lakeDir, { recursive: true });
  const instance = await DuckDBInstance.create(':memory:');
  const c = await instance.connect();
  try {
    await c.run(`CREATE TABLE em_flat (id VARCHAR, ts BIGINT, placement VARCHAR, dc VARCHAR, offer_id VARCHAR,
      cost BIGINT, ord INTEGER, log_offset BIGINT)`);
    await c.run(`CREATE TABLE cl (id VARCHAR, ts BIGINT, emission_id VARCHAR, offer_id VARCHAR, user_id VARCHAR,
      ip VARCHAR, dc VARCHAR, log_offset BIGINT)`);
    const em = await c.createAppender('em_flat');
    const cl = await c.createAppender('cl');
    let emissions = 0;
    let clicks = 0;
    for (const line of lines) {
      const r = parseEventLine(line);
      if (!r.ok) continue;
      const e = r.event;
      if (e.type === 'emission') {
        e.offers.forEach((offer, i) => {
          em.appendVarchar(e.id);
          em.appendBigInt(BigInt(e.ts));
          em.appendVarchar(e.placement);
          if (e.dc === undefined) em.appendNull();
          else em.appendVarchar(e.dc);
          em.appendVarchar(offer.offerId);
          em.appendBigInt(offer.clickCost);
          em.appendInteger(i);
          em.appendBigInt(BigInt(emissions));
          em.endRow();
        });
        emissions++;
      } else {
        cl.appendVarchar(e.id);
        cl.appendBigInt(BigInt(e.ts));
        cl.appendVarchar(e.emissionId);
        cl.appendVarchar(e.offerId);
        cl.appendVarchar(e.userId);
        cl.appendVarchar(e.ip);
        if (e.dc === undefined) cl.appendNull();
        else cl.appendVarchar(e.dc);
        cl.appendBigInt(BigInt(clicks));
        cl.endRow();
        clicks++;
      }
    }
    em.closeSync();
    cl.closeSync();
    const partitioned = (select: string, topic: string) => `COPY (
        SELECT *, strftime(ts, '%Y-%m-%d') AS date, strftime(ts, '%H') AS hour FROM (${select})
      ) TO '${lakeDir}/${topic}' (FORMAT parquet, PARTITION_BY (date, hour), OVERWRITE_OR_IGNORE, FILENAME_PATTERN 'part-0-{i}')`;
    await c.run(
      partitioned(
        `SELECT id, make_timestamp(any_value(ts) * 1000) AS ts, any_value(placement) AS placement, any_value(dc) AS dc,
           list(struct_pack(offer_id := offer_id, click_cost_micros := cost) ORDER BY ord) AS offers,
           0::INTEGER AS log_partition, log_offset
         FROM em_flat GROUP BY id, log_offset`,
        'emissions',
      ),
    );
    await c.run(
      partitioned(
        `SELECT id, make_timestamp(ts * 1000) AS ts, emission_id, offer_id, user_id, ip, dc,
           0::INTEGER AS log_partition, log_offset FROM cl`,
        'clicks',
      ),
    );
    return emissions + clicks;
  } finally {
    c.closeSync();
    instance.closeSync();
  }
}

/**
 * Rows of the lake's `topics` as a reader must read them now (the lake's listing, which follows
 * compactions); -1 while a topic has no data file yet (an hour directory may exist before its
 * first file is renamed into it).
 */
export async function lakeRowCount(lakeDir: string, topics: readonly string[], where = ''): Promise<number> {
  const files = topics.map((t) => lakeTopicFiles(lakeDir, t));
  if (files.some((f) => f.length === 0)) return -1;
  const instance = await DuckDBInstance.create(':memory:', { threads: '1' });
  const c = await instance.connect();
  try {
    const list = files.flat().map((f) => `'${f.replaceAll("'", "''")}'`);
    const r = await c.runAndReadAll(`SELECT count(*)::INTEGER FROM read_parquet([${list.join(', ')}]) ${where}`);
    return r.getRows()[0]?.[0] as number;
  } finally {
    c.closeSync();
    instance.closeSync();
  }
}
