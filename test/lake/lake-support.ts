/** Test helpers for the lake: reading it back with DuckDB, and comparing it with the log. */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { type Click, decodeClick, decodeEmission, type Emission } from '../../src/events/index.ts';
import { lakeOffsets, lakeTopicFiles, readManifest } from '../../src/lake/index.ts';
import type { Log, LogRecord } from '../../src/log/index.ts';

/** The archived topics of the tests, with their partition count. */
export const TOPICS = ['emissions', 'clicks'] as const;
export const PARTITIONS = 4;

/** Runs one query on a fresh in-memory DuckDB; rows as JSON-friendly objects (BIGINT as strings). */
export async function queryLake(sql: string): Promise<Record<string, unknown>[]> {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    return (await connection.runAndReadAll(sql)).getRowObjectsJson() as Record<string, unknown>[];
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/** `read_parquet` of every file of a topic a reader must read (the lake's listing, which follows compactions), with its Hive columns. */
export function lakeTable(lakeDir: string, topic: string): string {
  const files = lakeTopicFiles(lakeDir, topic).map((f) => `'${f.replaceAll("'", "''")}'`);
  return `read_parquet([${files.join(', ')}], hive_partitioning = true)`;
}

/** Whether the lake's manifests have reached the end of every partition of every topic. */
export async function lakeCaughtUp(lakeDir: string, log: Log): Promise<boolean> {
  for (const topic of TOPICS) {
    const parts = Array.from({ length: PARTITIONS }, (_, p) => p);
    const offsets = await lakeOffsets(lakeDir, topic, parts);
    for (const p of parts) if ((offsets.get(p) ?? 0) !== (await log.latestOffset(topic, p))) return false;
  }
  return true;
}

/** Every file under a directory, relative paths. */
export function listFiles(dir: string, prefix = ''): string[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((d) =>
    d.isDirectory() ? listFiles(join(dir, d.name), join(prefix, d.name)) : [join(prefix, d.name)],
  );
}

async function readPartition(log: Log, topic: string, partition: number): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  for (let offset = 0; ;) {
    const records = await log.read(topic, partition, offset, { maxBytes: 4 << 20 });
    if (records.length === 0) return out;
    out.push(...records);
    offset = (records[records.length - 1] as LogRecord).offset + 1;
  }
}

/** One line per record of the log, as the lake should hold it: (partition, offset) order. */
export async function expectedLakeLines(log: Log, topic: (typeof TOPICS)[number]): Promise<string[]> {
  const lines: string[] = [];
  for (let p = 0; p < PARTITIONS; p++) {
    for (const r of await readPartition(log, topic, p)) {
      if (topic === 'emissions') {
        const e: Emission = decodeEmission(r.value);
        const offers = e.offers.map((o) => ({ offer_id: o.offerId, click_cost_micros: String(o.clickCost) }));
        lines.push(
          JSON.stringify([e.id, String(e.ts), e.placement, e.dc ?? null, offers, p, String(r.offset), ...hive(e.ts)]),
        );
      } else {
        const c: Click = decodeClick(r.value);
        lines.push(
          JSON.stringify([
            c.id,
            String(c.ts),
            c.emissionId,
            c.offerId,
            c.userId,
            c.ip,
            c.dc ?? null,
            p,
            String(r.offset),
            ...hive(c.ts),
          ]),
        );
      }
    }
  }
  return lines;
}

function hive(ts: number): [string, number] {
  const d = new Date(ts).toISOString();
  return [d.slice(0, 10), Number(d.slice(11, 13))];
}

/** The lake's rows of a topic in the same format as {@link expectedLakeLines}, with the Hive date and hour. */
export async function lakeLines(lakeDir: string, topic: (typeof TOPICS)[number]): Promise<string[]> {
  const columns =
    topic === 'emissions'
      ? 'id, epoch_ms(ts) AS ts, placement, dc, offers, log_partition, log_offset'
      : 'id, epoch_ms(ts) AS ts, emission_id, offer_id, user_id, ip, dc, log_partition, log_offset';
  const rows = await queryLake(
    `SELECT ${columns}, strftime(date, '%Y-%m-%d') AS date, hour::INTEGER AS hour FROM ${lakeTable(lakeDir, topic)} ORDER BY log_partition, log_offset`,
  );
  return rows.map((r) => JSON.stringify(Object.values(r)));
}

/** Asserts that the lake holds every record of the log once, as written, in its hour, and no temporary file. */
export async function assertLakeEqualsLog(lakeDir: string, log: Log): Promise<void> {
  for (const topic of TOPICS) {
    const expected = await expectedLakeLines(log, topic);
    const actual = await lakeLines(lakeDir, topic);
    assert.equal(
      actual.length,
      expected.length,
      `${topic}: ${actual.length} rows in the lake, ${expected.length} in the log`,
    );
    for (let i = 0; i < expected.length; i++) assert.equal(actual[i], expected[i], `${topic} row ${i}`);
  }
  assert.deepEqual(
    listFiles(lakeDir).filter((f) => f.includes('.tmp')),
    [],
    'no temporary file is left',
  );
  const listed: string[] = [];
  for (const topic of TOPICS)
    for (let p = 0; p < PARTITIONS; p++)
      for (const entry of await readManifest(lakeDir, topic, p)) listed.push(...entry.files);
  // A sealed hour may have been compacted: its part files are then replaced by compacted ones.
  const held = new Set(listFiles(lakeDir).filter((f) => f.endsWith('.parquet')));
  const compactedHours = new Set([...held].filter((f) => basename(f).startsWith('compacted-')).map((f) => dirname(f)));
  assert.deepEqual(
    [...held].filter((f) => !basename(f).startsWith('compacted-')).sort(),
    listed.filter((f) => held.has(f) || !compactedHours.has(dirname(f))).sort(),
    'the lake holds exactly the files its manifests list (but those a compaction replaced)',
  );
}
