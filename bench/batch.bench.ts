/**
 * batch.day: the recalculation of one simulated day from the lake (read, dedupe, join, rules,
 * aggregate, safe write to the SQLite store and Parquet), in events/s, against a plain DuckDB
 * scan (`count(*)`, `sum` and a distinct count) of the same Parquet files in the same run;
 * `batch.day.compute` is the recalculation without the write.
 *
 * The day is generated in DuckDB SQL (the JS simulator would need minutes and gigabytes for 20M
 * events): emissions spread evenly over the day with two offers each, clicks on an emission's
 * offers within the click window, 2% redelivered copies of each, some repeat clicks, and
 * clicks of unknown emissions. BENCH_BATCH_EVENTS sets the size (default 20 million).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lakeFiles, openBatchDatabase, runRecalculation } from '../src/batch/index.ts';
import { DEFAULT_SIMULATION } from '../src/sim/index.ts';
import { openSqliteStatsStore } from '../src/stats/index.ts';
import type { BenchResult } from './harness.ts';
import { lakeHourFiles } from '../src/lake/index.ts';

const DAY = 86_400_000;
const START = Date.UTC(2026, 10, 21);

/**
 * Writes a synthetic day of `events` events starting at `dayStart` into `lake` in the archiver's
 * layout. Days written into one lake need their own `tag` (it goes into ids and file names).
 */
export async function generateDay(
  lake: string,
  events: number,
  { dayStart = START, tag = '', label = 'batch.day' }: { dayStart?: number; tag?: string; label?: string } = {},
): Promise<void> {
  const emissions = Math.round(events * 0.8);
  const clicks = events - emissions;
  const db = await openBatchDatabase();
  const c = db.connection;
  const step = DAY / emissions;
  // Popularity falls off like the simulator's zipf: log-uniform over 2000 offers and 24 placements.
  const skewed = (i: string, salt: number, n: number) =>
    `floor(pow(${n}, (hash(${i} * ${salt}) % 100000) / 100000.0))::INTEGER`;
  const offer = (i: string, salt: number) => `'of-' || ${skewed(i, salt, 2000)}`;
  // Every column is a function of the event's number, so no table is built: each topic is one
  // streaming COPY (a click recomputes its emission's time and offers from the emission's number).
  const emission = (i: string) => `SELECT 'em-${tag}' || ${i} AS id,
      make_timestamp((${dayStart} + (${i} * ${step})::BIGINT) * 1000) AS ts,
      'placement-' || ${skewed(i, 1, 24)} AS placement, 'dc' || (${i} % 3 + 1) AS dc,
      [struct_pack(offer_id := ${offer(i, 7)}, click_cost_micros := (hash(${i} * 13) % 2000000)::BIGINT),
       struct_pack(offer_id := ${offer(i, 11)} || 'b', click_cost_micros := (hash(${i} * 17) % 2000000)::BIGINT)] AS offers,
      (${i} % 4)::INTEGER AS log_partition`;
  const click = (j: string) => `SELECT 'cl-${tag}' || ${j} AS id,
      make_timestamp((${dayStart} + (e * ${step})::BIGINT + (hash(${j}) % 3000000)::BIGINT) * 1000) AS ts,
      CASE WHEN ${j} % 500 = 0 THEN 'em-missing-${tag}' || ${j} ELSE 'em-${tag}' || e END AS emission_id,
      CASE WHEN ${j} % 2 = 0 THEN ${offer('e', 7)} ELSE ${offer('e', 11)} || 'b' END AS offer_id,
      'u-' || (hash(${j} * 3) % 200000) AS user_id, '10.' || (${j} % 250) || '.' || (hash(${j}) % 250) || '.1' AS ip,
      'dc1' AS dc, (e % 4)::INTEGER AS log_partition`;
  const clickOf = (j: string) =>
    `(SELECT ${j}, (hash(${j} * 31) % ${emissions})::BIGINT AS e FROM range(${clicks}) t(${j}))`;
  const out = (topic: string, select: string) =>
    c.run(`COPY (SELECT *, strftime(ts, '%Y-%m-%d') AS date, strftime(ts, '%H') AS hour FROM (${select}))
      TO '${join(lake, topic)}' (FORMAT parquet, PARTITION_BY (date, hour), OVERWRITE_OR_IGNORE, FILENAME_PATTERN 'part-${tag}{i}')`);
  const t0 = performance.now();
  const progress = (what: string) =>
    process.stderr.write(`${label}: ${what} (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
  try {
    // 2% of events delivered twice (same id, a later offset).
    await out(
      'emissions',
      `${emission('i')}, i AS log_offset FROM range(${emissions}) t(i)
       UNION ALL ${emission('i')}, i + ${emissions} FROM range(${emissions}) t(i) WHERE hash(i) % 50 = 0`,
    );
    progress(`${emissions.toLocaleString('en-US')} emissions written`);
    await out(
      'clicks',
      `${click('j')}, j AS log_offset FROM ${clickOf('j')}
       UNION ALL ${click('j')}, j + ${clicks} FROM ${clickOf('j')} WHERE hash(j) % 50 = 0`,
    );
    progress(`${clicks.toLocaleString('en-US')} clicks written`);
  } finally {
    db.close();
  }
}

/** The batch benchmarks. */
export async function batchBenchmarks(): Promise<BenchResult[]> {
  const events = Number(process.env.BENCH_BATCH_EVENTS ?? 20_000_000);
  const dir = mkdtempSync(join(tmpdir(), 'reckon-bench-batch-'));
  const lake = join(dir, 'lake');
  mkdirSync(lake);
  try {
    process.stderr.write(`batch.day: generating a day of ${events.toLocaleString('en-US')} events...\n`);
    await generateDay(lake, events);
    const files = [
      ...lakeFiles(lake, 'emissions', START - 3_600_000, START + DAY, lakeHourFiles),
      ...lakeFiles(lake, 'clicks', START - 3_600_000, START + DAY, lakeHourFiles),
    ];
    const scan = async (): Promise<{ rows: number; ms: number }> => {
      const db = await openBatchDatabase();
      const t0 = performance.now();
      const r = await db.connection.runAndReadAll(
        `SELECT count(*)::BIGINT, sum(log_offset)::HUGEINT, count(DISTINCT id)::BIGINT
         FROM read_parquet([${files.map((f) => `'${f}'`).join(', ')}], union_by_name = true)`,
      );
      const ms = performance.now() - t0;
      db.close();
      return { rows: Number(r.getRows()[0]?.[0]), ms };
    };
    const store = await openSqliteStatsStore(join(dir, 'reckon.sqlite'));
    const rates: { job: number; compute: number; scan: number }[] = [];
    let read = 0;
    try {
      // A 20M-event day takes minutes per round: one round at that size, two when smaller.
      for (let round = 0; round < (events >= 5_000_000 ? 1 : 2); round++) {
        const s = await scan();
        const parts: string[] = [];
        const t0 = performance.now();
        const run = await runRecalculation({
          listHourFiles: lakeHourFiles,
          lakeDir: lake,
          store,
          from: START,
          to: START + DAY,
          rules: DEFAULT_SIMULATION.rules,
          runId: `bench-${round}`,
          onStepTimed: (part, ms) => parts.push(`${part} ${ms.toFixed(0)}`),
        });
        const ms = performance.now() - t0;
        read = run.recordsRead;
        rates.push({
          job: (run.recordsRead / ms) * 1000,
          compute: (run.recordsRead / run.computeMs) * 1000,
          scan: (s.rows / s.ms) * 1000,
        });
        process.stderr.write(
          `batch.day round ${round}: ${run.recordsRead} records in ${ms.toFixed(0)} ms (compute ${run.computeMs.toFixed(0)}, write ${run.writeMs.toFixed(0)} ms, ${run.rows} rows); scan ${s.rows} in ${s.ms.toFixed(0)} ms\n` +
            `batch.day round ${round} steps (ms): ${parts.join(', ')}\n`,
        );
      }
    } finally {
      await store.close();
    }
    const best = rates.reduce((a, b) => (b.job > a.job ? b : a));
    process.stderr.write(`batch.day: ${read} records per run\n`);
    return [
      {
        name: 'batch.day',
        description:
          'a simulated day recalculated as a whole job (lake read, DuckDB, store write and switch); baseline: a plain DuckDB count/sum scan of the same Parquet files',
        unit: 'events/s',
        value: Math.round(best.job),
        baseline: Math.round(best.scan),
        ratio: Number((best.job / best.scan).toFixed(3)),
      },
      {
        name: 'batch.day.compute',
        description: 'the same day recalculated without writing to the store; baseline: the same plain scan',
        unit: 'events/s',
        value: Math.round(best.compute),
        baseline: Math.round(best.scan),
        ratio: Number((best.compute / best.scan).toFixed(3)),
      },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
