/**
 * The archiver against the real embedded log: every event of a simulated stream (with its faults:
 * redeliveries, late and out-of-window clicks) lands in the lake exactly once per log offset, in
 * the partition of its event date and hour, across a restart and across what a crash between the
 * renames and the manifest line leaves behind.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { Archiver, HOUR_MS, isHourSealed, LAKE_SCHEMAS, readManifest, topicGlob } from '../../src/lake/index.ts';
import { type EmbeddedLog, openEmbeddedLog } from '../../src/log/index.ts';
import { DEFAULT_SIMULATION, NO_FAULTS, simulate } from '../../src/sim/index.ts';
import { listDeadLetters } from '../../src/workers/index.ts';
import { appendLines, plainDecoder } from '../support/speed.ts';
import { waitFor } from '../support/wait.ts';
import { assertLakeEqualsLog, lakeCaughtUp, lakeTable, PARTITIONS, queryLake, TOPICS } from './lake-support.ts';

async function setUp(name: string): Promise<{ dir: string; lakeDir: string; log: EmbeddedLog }> {
  const dir = mkdtempSync(join(tmpdir(), `reckon-lake-${name}-`));
  const log = await openEmbeddedLog({ dir: join(dir, 'log'), retentionIntervalMs: 0 });
  for (const topic of TOPICS) await log.createTopic({ name: topic, partitions: PARTITIONS });
  return { dir, lakeDir: join(dir, 'lake'), log };
}

/** Runs an archiver until the lake holds the whole log, then stops it. */
async function archiveAll(log: EmbeddedLog, lakeDir: string): Promise<Archiver> {
  const archiver = new Archiver({
    log,
    lakeDir,
    decoder: plainDecoder,
    flushIntervalMs: 30,
    maxBufferedRows: 700,
    // Before the simulated day: nothing is sealed, nothing is late.
    now: () => DEFAULT_SIMULATION.start,
  });
  await archiver.start();
  try {
    await waitFor('the lake to hold the whole log', () => lakeCaughtUp(lakeDir, log), 30_000, 20);
  } finally {
    await archiver.stop();
  }
  return archiver;
}

describe('Archiver', () => {
  it('archives every record of the log exactly once, by event date and hour, across a restart', async (t) => {
    const { lakeDir, log } = await setUp('exact');
    const options = { ...DEFAULT_SIMULATION, seed: 5, emissions: 4_000 };
    const sim = simulate(options);
    const half = Math.floor(sim.lines.length / 2);
    try {
      await appendLines(log, sim.lines.slice(0, half));
      const first = await archiveAll(log, lakeDir);
      await appendLines(log, sim.lines.slice(half));
      const second = await archiveAll(log, lakeDir);
      await assertLakeEqualsLog(lakeDir, log);

      // Redelivered events stay twice (the batch layer deduplicates ids); offsets never repeat.
      const [dup] = await queryLake(
        `SELECT count(*) - count(DISTINCT id) AS repeated_ids, count(*) - count(DISTINCT (log_partition, log_offset)) AS repeated_offsets FROM ${lakeTable(lakeDir, 'emissions')}`,
      );
      assert.ok(Number(dup?.repeated_ids) > 0, 'the simulated redeliveries are in the lake');
      assert.equal(Number(dup?.repeated_offsets), 0);

      // Within each file, rows are in offset order.
      const [order] = await queryLake(
        `SELECT count(*) AS out_of_order FROM (SELECT log_offset - lag(log_offset) OVER (PARTITION BY filename ORDER BY file_row_number) AS step ` +
          `FROM read_parquet('${topicGlob(lakeDir, 'emissions')}', filename = true, file_row_number = true)) WHERE step <= 0`,
      );
      assert.equal(Number(order?.out_of_order), 0);

      // Every hour of the simulated day has its partition directory.
      const hours = await queryLake(
        `SELECT DISTINCT strftime(date, '%Y-%m-%d') || ' ' || hour AS h FROM ${lakeTable(lakeDir, 'emissions')} WHERE date = DATE '2026-11-21'`,
      );
      assert.equal(hours.length, 24);

      // The files' own schema (without Hive columns) is the one the batch layer reads.
      for (const [topic, kind] of [
        ['emissions', 'emission'],
        ['clicks', 'click'],
      ] as const) {
        const schema = await queryLake(
          `DESCRIBE SELECT * FROM read_parquet('${topicGlob(lakeDir, topic)}', hive_partitioning = false)`,
        );
        assert.deepEqual(
          schema.map((r) => [r.column_name, r.column_type]),
          LAKE_SCHEMAS[kind].map(([c, type]) => [c, type]),
        );
      }

      // Manifests account for every row and every file, in contiguous offset ranges.
      let rows = 0;
      const files = new Set<string>();
      for (const topic of TOPICS) {
        for (let p = 0; p < PARTITIONS; p++) {
          let next = 0;
          for (const entry of await readManifest(lakeDir, topic, p)) {
            assert.equal(entry.from, next, `${topic}/${p}: flushes are contiguous`);
            next = entry.to + 1;
            rows += entry.rows;
            for (const f of entry.files) files.add(f);
          }
        }
      }
      assert.equal(rows, first.figures.rows + second.figures.rows);
      t.diagnostic(`${rows} rows in ${files.size} files; flushes ${first.figures.flushes}+${second.figures.flushes}`);
    } finally {
      await log.close();
    }
  });

  it('dead-letters a record it cannot decode, archives the others, and still seals the hours', async () => {
    const { lakeDir, log } = await setUp('poison');
    const sim = simulate({ ...DEFAULT_SIMULATION, seed: 7, emissions: 300, faults: NO_FAULTS });
    try {
      await appendLines(log, sim.lines);
      // The last record of partition 2: nothing after it would move the partition on.
      await log.append('emissions', [{ partition: 2, value: Buffer.from('not avro') }]);
      const poison = (await log.latestOffset('emissions', 2)) - 1;
      const archiver = new Archiver({
        log,
        lakeDir,
        decoder: plainDecoder,
        flushIntervalMs: 20,
        retry: { maxAttempts: 2, initialBackoffMs: 5 },
        onError: () => undefined,
        now: () => DEFAULT_SIMULATION.start + 26 * HOUR_MS,
      });
      await archiver.start();
      try {
        await waitFor('the simulated day to be sealed', () =>
          isHourSealed(lakeDir, DEFAULT_SIMULATION.start + 23 * HOUR_MS),
        );
      } finally {
        await archiver.stop();
      }
      const letters = await listDeadLetters(log, 'archiver');
      assert.deepEqual(
        letters.map((l) => [l.topic, l.partition, l.offset]),
        [['emissions', 2, poison]],
      );
      const [row] = await queryLake(
        `SELECT count(*) AS n FROM ${lakeTable(lakeDir, 'emissions')} WHERE log_partition = 2 AND log_offset = ${poison}`,
      );
      assert.equal(Number(row?.n), 0);
      let archived = 0;
      for (const topic of TOPICS) for (let p = 0; p < PARTITIONS; p++) archived += await log.latestOffset(topic, p);
      assert.equal(archiver.figures.rows, archived - 1, 'every other record is in the lake');
    } finally {
      await log.close();
    }
  });

  it('removes on start the files of a flush without its manifest line, temporary files and a torn manifest line', async () => {
    const { lakeDir, log } = await setUp('recover');
    const options = { ...DEFAULT_SIMULATION, seed: 6, emissions: 1_500 };
    const sim = simulate(options);
    const half = Math.floor(sim.lines.length / 2);
    try {
      await appendLines(log, sim.lines.slice(0, half));
      await archiveAll(log, lakeDir);
      await appendLines(log, sim.lines.slice(half));
      // What a crash leaves: a flush of the next range renamed into place (listed in the pending
      // file) without its manifest line, a half-written temporary file, a torn manifest line.
      const manifest = await readManifest(lakeDir, 'emissions', 0);
      const last = manifest[manifest.length - 1];
      assert.ok(last !== undefined);
      const end = await log.latestOffset('emissions', 0);
      const orphan = join(dirname(last.files[0] as string), `part-0-${last.to + 1}-${end - 1}.parquet`);
      copyFileSync(join(lakeDir, last.files[0] as string), join(lakeDir, orphan));
      writeFileSync(
        join(lakeDir, '_manifests', 'emissions', '0.pending.json'),
        JSON.stringify({ from: last.to + 1, to: end - 1, files: [orphan] }),
      );
      mkdirSync(join(lakeDir, '_tmp', 'emissions', '0'), { recursive: true });
      writeFileSync(join(lakeDir, '_tmp', 'emissions', '0', '.tmp-2026-11-21-00-1-2.parquet'), 'PAR1 half');
      appendFileSync(join(lakeDir, '_manifests', 'emissions', '0.jsonl'), `{"from":${last.to + 1},"to":`);

      await archiveAll(log, lakeDir);
      await assertLakeEqualsLog(lakeDir, log);
      const text = readFileSync(join(lakeDir, '_manifests', 'emissions', '0.jsonl'), 'utf8');
      assert.ok(
        text.endsWith('\n') &&
          text
            .split('\n')
            .slice(0, -1)
            .every((l) => JSON.parse(l) !== undefined),
      );
    } finally {
      await log.close();
    }
  });
});
