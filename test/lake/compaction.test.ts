/**
 * Compacted hours: a sealed hour's files of each topic merged into at most four sorted ones.
 * Read through the lake's listing, an hour holds the same rows before and after (every column,
 * every row once, in its hour), also after late events and a second compaction; an independent
 * reader (DuckDB over the Hive layout, as Spark or Trino would) sees the documented schema; and
 * SIGKILLs at every step of a compaction (and at seeded moments) never lose or repeat a row.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import {
  Archiver,
  COMPACTION_STEPS,
  compactSealedHours,
  type CompactionJournal,
  type CompactionOptions,
  HOUR_MS,
  hourDirectory,
  isHourSealed,
  LAKE_SCHEMAS,
  lakeHourFiles,
  recoverCompactions,
} from '../../src/lake/index.ts';
import { type EmbeddedLog, openEmbeddedLog } from '../../src/log/index.ts';
import { DEFAULT_SIMULATION, SeededRandom, simulate } from '../../src/sim/index.ts';
import { appendLines, plainDecoder } from '../support/speed.ts';
import { waitFor } from '../support/wait.ts';
import {
  assertLakeEqualsLog,
  expectedLakeLines,
  lakeCaughtUp,
  lakeLines,
  lakeTable,
  listFiles,
  PARTITIONS,
  TOPICS,
} from './lake-support.ts';

const START = DEFAULT_SIMULATION.start;
/** Six simulated hours, every one sealed at `NOW` (their end plus the allowed hour of lateness has passed). */
const HOURS = 6;
const NOW = START + (HOURS + 2) * HOUR_MS;
const TSX = import.meta.resolve('tsx');
const WORKER = new URL('./compaction-worker.ts', import.meta.url).pathname;
/** Small files per hour: a few hundred rows per topic and hour, so that hours split into several compacted files. */
const ROWS_PER_FILE = 150;
const KIND = { emissions: 'emission', clicks: 'click' } as const;

const sqlList = (files: readonly string[]) => `[${files.map((f) => `'${f}'`).join(', ')}]`;

/** One DuckDB for the test's own queries (rows as JSON-friendly objects). */
let shared: { instance: DuckDBInstance; connection: DuckDBConnection } | undefined;
async function query(sql: string): Promise<Record<string, unknown>[]> {
  if (shared === undefined) {
    const instance = await DuckDBInstance.create(':memory:');
    shared = { instance, connection: await instance.connect() };
  }
  return (await shared.connection.runAndReadAll(sql)).getRowObjectsJson() as Record<string, unknown>[];
}
after(() => {
  shared?.connection.closeSync();
  shared?.instance.closeSync();
});

/** A log with the lake's topics and a simulated stream of `hours` hours (default faults: redeliveries, late events). */
async function setUp(name: string, seed: number, emissions: number, hours = HOURS) {
  const dir = mkdtempSync(join(tmpdir(), `reckon-compaction-${name}-`));
  const log = await openEmbeddedLog({ dir: join(dir, 'log'), retentionIntervalMs: 0 });
  for (const topic of TOPICS) await log.createTopic({ name: topic, partitions: PARTITIONS });
  const sim = simulate({ ...DEFAULT_SIMULATION, seed, emissions, durationMs: hours * HOUR_MS });
  return { dir, lakeDir: join(dir, 'lake'), log, sim };
}

/** Archives the whole log with small, frequent flushes (many files per hour) and a clock at which every hour is sealed. */
async function archiveAll(log: EmbeddedLog, lakeDir: string): Promise<void> {
  const archiver = new Archiver({
    log,
    lakeDir,
    decoder: plainDecoder,
    flushIntervalMs: 15,
    flushRows: 40,
    maxBufferedRows: 120,
    // The archiver compacts after each seal pass too, but not hours still receiving files: with a
    // clock that stands still, never (this test compacts by itself).
    now: () => NOW,
  });
  await archiver.start();
  try {
    await waitFor('the lake to hold the whole log', () => lakeCaughtUp(lakeDir, log), 30_000, 20);
    await waitFor('the hours to be sealed', () => isHourSealed(lakeDir, START + (HOURS - 1) * HOUR_MS), 30_000, 20);
  } finally {
    await archiver.stop();
  }
}

/** Compaction passes until no sealed hour is left to compact; returns files before and after, summed. */
async function compactAll(lakeDir: string, o: CompactionOptions = {}): Promise<{ before: number; after: number }> {
  let before = 0;
  let after = 0;
  for (let pass = 0; pass < 100; pass++) {
    const r = await compactSealedHours(lakeDir, TOPICS, {
      now: () => NOW,
      quietMs: 0,
      inputGraceMs: 0,
      maxRowsPerFile: ROWS_PER_FILE,
      maxHoursPerPass: 100,
      ...o,
    });
    before += r.filesBefore;
    after += r.filesAfter;
    if (r.hours.length === 0 && r.waiting === 0) return { before, after };
  }
  throw new Error('compaction did not finish in 100 passes');
}

/** Every hour directory of a topic (its start), from the layout. */
function hoursOf(lakeDir: string, topic: string): number[] {
  return Array.from({ length: HOURS + 1 }, (_, i) => START + i * HOUR_MS).filter((h) =>
    existsSync(join(lakeDir, hourDirectory(topic, h))),
  );
}

/**
 * Asserts that every hour of both topics is compacted: at most four files, all compacted; with
 * `deep`, rows sorted by (ts, log_partition, log_offset) across them and the lake's schema kept.
 */
async function assertCompacted(lakeDir: string, deep: boolean, generations?: Set<number>): Promise<number> {
  let hours = 0;
  for (const topic of TOPICS) {
    for (const h of hoursOf(lakeDir, topic)) {
      hours++;
      const files = lakeHourFiles(lakeDir, topic, h);
      const where = `${topic} ${new Date(h).toISOString()}`;
      assert.ok(files.length >= 1 && files.length <= 4, `${where}: ${files.length} files`);
      for (const f of files) assert.match(basename(f), /^compacted-\d+-\d\.parquet$/, `${where}: only compacted files`);
      for (const f of files) generations?.add(Number(basename(f).split('-')[1]));
      if (!deep) continue;
      const [order] = await query(
        `SELECT count(*) FILTER (WHERE NOT (ts > pts OR (ts = pts AND (p > pp OR (p = pp AND o > po)))))::INTEGER AS unsorted
         FROM (SELECT ts, log_partition AS p, log_offset AS o,
                      lag(ts) OVER w AS pts, lag(log_partition) OVER w AS pp, lag(log_offset) OVER w AS po
               FROM read_parquet(${sqlList(files)}, filename = true, file_row_number = true, hive_partitioning = false)
               WINDOW w AS (ORDER BY filename, file_row_number))
         WHERE pts IS NOT NULL`,
      );
      assert.equal(order?.unsorted, 0, `${where}: rows sorted by (ts, log_partition, log_offset) across its files`);
      for (const f of files) {
        const schema = await query(`DESCRIBE SELECT * FROM read_parquet('${f}', hive_partitioning = false)`);
        assert.deepEqual(
          schema.map((c) => [c.column_name, c.column_type]),
          LAKE_SCHEMAS[KIND[topic]].map(([n, t]) => [n, t]),
          `${f}: the lake's schema`,
        );
      }
    }
  }
  return hours;
}

/** Files of each hour of a topic that readers read now (the listing), by hour. */
function filesPerHour(lakeDir: string): number[] {
  return TOPICS.flatMap((topic) => hoursOf(lakeDir, topic).map((h) => lakeHourFiles(lakeDir, topic, h).length));
}

describe('Compacted hours', () => {
  it('reads the same rows before and after compaction, in at most four sorted files per hour with the same schema; a late file after it is read, then compacted again', async (t) => {
    const { dir, lakeDir, log, sim } = await setUp('exact', 31, 1_200);
    // The last lines of the stream arrive after the first compaction: late events of sealed, compacted hours.
    const held = Math.floor(sim.lines.length * 0.06);
    try {
      await appendLines(log, sim.lines.slice(0, sim.lines.length - held));
      await archiveAll(log, lakeDir);
      const expected = {
        emissions: await expectedLakeLines(log, 'emissions'),
        clicks: await expectedLakeLines(log, 'clicks'),
      };
      for (const topic of TOPICS) assert.deepEqual(await lakeLines(lakeDir, topic), expected[topic], `${topic} before`);
      const beforeFiles = filesPerHour(lakeDir);

      const first = await compactAll(lakeDir);
      for (const topic of TOPICS) assert.deepEqual(await lakeLines(lakeDir, topic), expected[topic], `${topic} after`);
      const generations = new Set<number>();
      const hours = await assertCompacted(lakeDir, true, generations);
      assert.deepEqual([...generations], [1]);
      const afterFiles = filesPerHour(lakeDir);
      assert.ok(
        afterFiles.some((n) => n > 1),
        'some hours hold more rows than one file may',
      );
      assert.equal(await compactAll(lakeDir).then((r) => r.before), 0, 'a compacted hour is not compacted again');
      await assertLakeEqualsLog(lakeDir, log);

      // Late events: new part files in compacted hours, read at once, then compacted with the previous files.
      await appendLines(log, sim.lines.slice(sim.lines.length - held));
      await archiveAll(log, lakeDir);
      const late = TOPICS.flatMap((topic) =>
        hoursOf(lakeDir, topic).filter((h) =>
          lakeHourFiles(lakeDir, topic, h).some((f) => basename(f).startsWith('part-')),
        ),
      );
      assert.ok(late.length > 0, 'late part files landed in compacted hours');
      await assertLakeEqualsLog(lakeDir, log);
      const second = await compactAll(lakeDir);
      generations.clear();
      await assertCompacted(lakeDir, true, generations);
      assert.deepEqual([...generations].sort(), [1, 2], 'hours with late files are at their second generation');
      await assertLakeEqualsLog(lakeDir, log);
      assert.deepEqual(listFiles(join(lakeDir, '_tmp', 'compaction')), [], 'no temporary file is left');
      t.diagnostic(
        `${hours} topic-hours: ${beforeFiles.reduce((a, b) => a + b, 0)} files before (${Math.max(...beforeFiles)} at most per hour), ` +
          `${afterFiles.reduce((a, b) => a + b, 0)} after (compacted ${first.before} into ${first.after}); ` +
          `late files in ${late.length} hours, compacted again (${second.before} into ${second.after})`,
      );
    } finally {
      await log.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an independent reader of the Hive layout (DuckDB as Spark or Trino) sees the documented schema and every row once', async () => {
    const { dir, lakeDir, log, sim } = await setUp('hive', 32, 600, 2);
    try {
      await appendLines(log, sim.lines);
      await archiveAll(log, lakeDir);
      await compactAll(lakeDir);
      for (const topic of TOPICS) {
        const glob = `read_parquet('${lakeDir}/${topic}/**/*.parquet', hive_partitioning = true)`;
        const schema = await query(`DESCRIBE SELECT * FROM ${glob}`);
        assert.deepEqual(
          schema.map((c) => [c.column_name, c.column_type]),
          // DuckDB types `hour` VARCHAR ('05', because of the leading zero), as the lake's README says.
          [...LAKE_SCHEMAS[KIND[topic]].map(([n, type]) => [n, type]), ['date', 'DATE'], ['hour', 'VARCHAR']],
        );
        if (topic === 'emissions')
          assert.equal(
            schema.find((c) => c.column_name === 'offers')?.column_type,
            'STRUCT(offer_id VARCHAR, click_cost_micros BIGINT)[]',
          );
        const columns =
          topic === 'emissions'
            ? 'id, epoch_ms(ts) AS ts, placement, dc, offers, log_partition, log_offset'
            : 'id, epoch_ms(ts) AS ts, emission_id, offer_id, user_id, ip, dc, log_partition, log_offset';
        const rows = await query(
          `SELECT ${columns}, strftime(date, '%Y-%m-%d') AS date, hour::INTEGER AS hour FROM ${glob} ORDER BY log_partition, log_offset`,
        );
        assert.deepEqual(
          rows.map((r) => JSON.stringify(Object.values(r))),
          await expectedLakeLines(log, topic),
          `${topic}: every row once, in its hour`,
        );
      }
    } finally {
      await log.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the archiver compacts sealed hours once no file came for them for a minute, and removes the inputs after their grace', async () => {
    const { dir, lakeDir, log, sim } = await setUp('archiver', 34, 400, 2);
    let now = NOW;
    const onDisk = (prefix: string) => listFiles(lakeDir).filter((f) => basename(f).startsWith(prefix)).length;
    try {
      await appendLines(log, sim.lines);
      const archiver = new Archiver({
        log,
        lakeDir,
        decoder: plainDecoder,
        flushIntervalMs: 15,
        flushRows: 40,
        maxBufferedRows: 120,
        now: () => now,
      });
      await archiver.start();
      try {
        await waitFor('the lake to hold the whole log', () => lakeCaughtUp(lakeDir, log), 30_000, 20);
        await waitFor('the hours to be sealed', () => isHourSealed(lakeDir, START + HOUR_MS), 30_000, 20);
        assert.equal(archiver.figures.compactedHours, 0, 'not while files still come for the hours');
        now += 61_000;
        await waitFor(
          'every hour to be read from compacted files',
          () =>
            TOPICS.every((topic) =>
              hoursOf(lakeDir, topic).every((h) =>
                lakeHourFiles(lakeDir, topic, h).every((f) => basename(f).startsWith('compacted-')),
              ),
            ),
          30_000,
          20,
        );
        assert.ok(onDisk('part-') > 0, 'the inputs stay for readers that listed them just before');
        for (const topic of TOPICS)
          assert.deepEqual(await lakeLines(lakeDir, topic), await expectedLakeLines(log, topic));
        now += 5 * 60_000;
        await waitFor('the inputs to be removed', () => onDisk('part-') === 0, 30_000, 20);
      } finally {
        await archiver.stop();
      }
      assert.ok(archiver.figures.compactedHours >= 4, `${archiver.figures.compactedHours} topic-hours compacted`);
      await assertCompacted(lakeDir, true);
      await assertLakeEqualsLog(lakeDir, log);
    } finally {
      await log.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('under SIGKILL', () => {
    const RUNS = 24;
    /** Two lakes to copy for each run: one never compacted, one compacted with late part files since; the keys each holds. */
    const lakes: { dir: string; keys: Record<string, string[]> }[] = [];

    /** Every (log_partition, log_offset) of a topic's log, in that order. */
    const logKeys = async (log: EmbeddedLog, topic: (typeof TOPICS)[number]) =>
      (await expectedLakeLines(log, topic)).map((l) => {
        const v = JSON.parse(l) as unknown[];
        return `${v[v.length - 4]}/${v[v.length - 3]}`;
      });

    let baseDir = '';
    after(() => rmSync(baseDir, { recursive: true, force: true }));

    before(async () => {
      const { dir, lakeDir, log, sim } = await setUp('kill', 33, 400, 2);
      baseDir = dir;
      const held = Math.floor(sim.lines.length * 0.1);
      try {
        await appendLines(log, sim.lines.slice(0, sim.lines.length - held));
        await archiveAll(log, lakeDir);
        cpSync(lakeDir, join(dir, 'fresh'), { recursive: true });
        lakes.push({
          dir: join(dir, 'fresh'),
          keys: { emissions: await logKeys(log, 'emissions'), clicks: await logKeys(log, 'clicks') },
        });
        await compactAll(lakeDir);
        await appendLines(log, sim.lines.slice(sim.lines.length - held));
        await archiveAll(log, lakeDir);
        cpSync(lakeDir, join(dir, 'again'), { recursive: true });
        lakes.push({
          dir: join(dir, 'again'),
          keys: { emissions: await logKeys(log, 'emissions'), clicks: await logKeys(log, 'clicks') },
        });
      } finally {
        await log.close();
      }
    });

    /** Asserts that the listing reads every (log_partition, log_offset) of the log exactly once. */
    async function assertEveryRowOnce(lakeDir: string, keys: Record<string, string[]>, what: string): Promise<void> {
      for (const topic of TOPICS) {
        const rows = await query(
          `SELECT log_partition || '/' || log_offset AS k FROM ${lakeTable(lakeDir, topic)} ORDER BY log_partition, log_offset`,
        );
        assert.deepEqual(
          rows.map((r) => String(r.k)),
          keys[topic],
          `${what}: ${topic}: every (log_partition, log_offset) once`,
        );
      }
    }

    /** A compaction process started ahead of time (its start-up overlaps the previous run's checks). */
    function startChild() {
      const child = spawn(process.execPath, ['--import', TSX, WORKER], { stdio: ['pipe', 'pipe', 'inherit'] });
      let ready = false;
      child.stdout?.on('data', (c: Buffer) => {
        if (c.toString().includes('ready')) ready = true;
      });
      const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_code, signal) => r(signal)));
      return { child, exited, ready: () => ready };
    }

    /** Journals of unfinished compactions in a lake. */
    function unfinishedJournals(lakeDir: string): CompactionJournal[] {
      return TOPICS.flatMap((topic) => {
        const dir = join(lakeDir, '_state', 'compaction', topic);
        return existsSync(dir)
          ? readdirSync(dir)
              .filter((n) => /^\d{4}-\d{2}-\d{2}-\d{2}\.json$/.test(n))
              .map((n) => JSON.parse(readFileSync(join(dir, n), 'utf8')) as CompactionJournal)
          : [];
      }).filter((j) => j.state === 'started' || j.state === 'swapped');
    }

    it(`reads every row exactly once after SIGKILLs at every step of a compaction and at seeded moments (${RUNS} runs), and a rerun completes`, async (t) => {
      let kills = 0;
      const atStep = new Map<string, number>();
      let unfinished = 0;
      // Two processes started ahead: a start-up takes longer than a run's checks.
      const ahead = [startChild(), startChild()];
      let stepRuns = 0;
      const timing = { start: 0, child: 0, checks: 0, rerun: 0 };
      for (let run = 0; run < RUNS; run++) {
        const rng = new SeededRandom(7_000 + run);
        const base = lakes[run % 2] as (typeof lakes)[number];
        const lakeDir = mkdtempSync(join(tmpdir(), `reckon-compaction-run-${run}-`));
        cpSync(base.dir, lakeDir, { recursive: true });
        // Every fourth run is killed twice: recovery is then itself cut short, or its rerun is.
        for (let k = 0; k < (run % 4 === 3 ? 2 : 1); k++) {
          // Every step in turn (its first, second or third time), and every third kill at a seeded moment.
          const crashAt =
            (run + k) % 3 === 2 ? '' : `${COMPACTION_STEPS[stepRuns++ % COMPACTION_STEPS.length]}:${1 + rng.int(3)}`;
          const grace = rng.int(4) === 0 ? HOUR_MS : 0;
          const { child, exited, ready } = ahead.shift() as ReturnType<typeof startChild>;
          ahead.push(startChild());
          let t0 = performance.now();
          await waitFor('the compaction process to start', ready, 30_000, 5);
          timing.start += performance.now() - t0;
          t0 = performance.now();
          child.stdin?.end(`${JSON.stringify({ lakeDir, now: NOW, grace, crashAt })}\n`);
          // Killed at a seeded moment of its passes, unless it is to kill itself at a step.
          const timer = crashAt === '' ? setTimeout(() => child.kill('SIGKILL'), 20 + rng.int(250)) : undefined;
          const signal = await exited;
          clearTimeout(timer);
          timing.child += performance.now() - t0;
          t0 = performance.now();
          const what = `run ${run} kill ${k} (${crashAt || 'at a moment'}, grace ${grace})`;
          if (signal === 'SIGKILL') {
            kills++;
            const at = crashAt.split(':')[0] || 'moment';
            atStep.set(at, (atStep.get(at) ?? 0) + 1);
          }
          unfinished += unfinishedJournals(lakeDir).length;
          // Readers list the lake consistently before any recovery, and after it.
          await assertEveryRowOnce(lakeDir, base.keys, `${what}, before recovery`);
          await recoverCompactions(lakeDir, { now: () => NOW, inputGraceMs: grace });
          await assertEveryRowOnce(lakeDir, base.keys, `${what}, after recovery`);
          timing.checks += performance.now() - t0;
        }
        const t1 = performance.now();
        await compactAll(lakeDir);
        timing.rerun += performance.now() - t1;
        await assertEveryRowOnce(lakeDir, base.keys, `run ${run}, compacted`);
        await assertCompacted(lakeDir, false);
        assert.deepEqual(unfinishedJournals(lakeDir), [], `run ${run}: every compaction is done`);
        assert.deepEqual(listFiles(join(lakeDir, '_tmp', 'compaction')), [], `run ${run}: no temporary file is left`);
        rmSync(lakeDir, { recursive: true, force: true });
      }
      for (const c of ahead) c.child.kill('SIGKILL');
      await Promise.all(ahead.map((c) => c.exited));
      assert.ok(kills >= 20, `${kills} SIGKILLs`);
      t.diagnostic(
        `${kills} SIGKILLs in ${RUNS} runs; at steps: ${[...atStep].map(([s, n]) => `${s} ${n}`).join(', ')}; ` +
          `${unfinished} unfinished compactions found after them; ` +
          Object.entries(timing)
            .map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`)
            .join(', '),
      );
    });
  });
});
