/**
 * batch.day: the recalculation of one simulated day from the lake (read, dedupe, join, rules,
 * aggregate, safe write to the SQLite store and Parquet), in events/s, against a plain DuckDB
 * scan (`count(*)`, `sum` and a distinct count) of the same Parquet files in the same run;
 * `batch.day.compute` is the recalculation without the write (three rounds alternating with the
 * scan, the median kept), `batch.day.compute.cpu` the same per CPU second, and
 * `batch.day.compute.rss` the process's peak RSS while it ran, against the same for the scan.
 *
 * The day is generated in DuckDB SQL (the JS simulator would need minutes and gigabytes for 20M
 * events): emissions spread evenly over the day with two offers each, clicks on an emission's
 * offers within the click window, 2% redelivered copies of each, some repeat clicks, and
 * clicks of unknown emissions. BENCH_BATCH_EVENTS sets the size (default 20 million).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lakeFiles, openBatchDatabase, recalculateIntoTable, runRecalculation } from '../src/batch/index.ts';
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

/** Samples the process's RSS every 10 ms; `peak()` is the largest since the last `reset()`, in bytes. */
function rssSampler(): { reset(): void; peak(): number; stop(): void } {
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 10);
  return {
    reset() {
      peak = process.memoryUsage.rss();
    },
    peak: () => Math.max(peak, process.memoryUsage.rss()),
    stop: () => clearInterval(timer),
  };
}

const MIB = 2 ** 20;

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
    const rss = rssSampler();
    /** Runs `work` and measures it: wall ms, the process's CPU ms (DuckDB's threads included) and peak RSS. */
    const measured = async <T>(
      work: () => Promise<T>,
    ): Promise<{ result: T; ms: number; cpuMs: number; rss: number }> => {
      rss.reset();
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const result = await work();
      const ms = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      return { result, ms, cpuMs: (cpu.user + cpu.system) / 1000, rss: rss.peak() };
    };
    const scan = () =>
      measured(async () => {
        const db = await openBatchDatabase();
        try {
          const r = await db.connection.runAndReadAll(
            `SELECT count(*)::BIGINT, sum(log_offset)::HUGEINT, count(DISTINCT id)::BIGINT
             FROM read_parquet([${files.map((f) => `'${f}'`).join(', ')}], union_by_name = true)`,
          );
          return Number(r.getRows()[0]?.[0]);
        } finally {
          db.close();
        }
      });
    const options = {
      listHourFiles: lakeHourFiles,
      lakeDir: lake,
      from: START,
      to: START + DAY,
      rules: DEFAULT_SIMULATION.rules,
    };

    // The recalculation alone, in rounds alternating with the scan so that other load on the
    // machine hits both; the median round (by ratio) is kept.
    const rounds: {
      compute: number;
      scan: number;
      computeCpu: number;
      scanCpu: number;
      computeRss: number;
      scanRss: number;
    }[] = [];
    let read = 0;
    let resultRows = 0;
    for (let round = 0; round < 3; round++) {
      const s = await scan();
      const parts: string[] = [];
      const r = await measured(async () => {
        const db = await openBatchDatabase();
        try {
          return await recalculateIntoTable(db.connection, {
            ...options,
            onStepTimed: (part, ms) => parts.push(`${part} ${ms.toFixed(0)}`),
          });
        } finally {
          db.close();
        }
      });
      read = r.result.recordsRead;
      resultRows = r.result.rows;
      rounds.push({
        compute: (read / r.ms) * 1000,
        scan: (s.result / s.ms) * 1000,
        computeCpu: (read / r.cpuMs) * 1000,
        scanCpu: (s.result / s.cpuMs) * 1000,
        computeRss: r.rss,
        scanRss: s.rss,
      });
      process.stderr.write(
        `batch.day.compute round ${round}: ${read} records in ${r.ms.toFixed(0)} ms (CPU ${r.cpuMs.toFixed(0)} ms, peak RSS ${(r.rss / MIB).toFixed(0)} MiB, ${resultRows} rows); ` +
          `scan ${s.result} in ${s.ms.toFixed(0)} ms (CPU ${s.cpuMs.toFixed(0)} ms, peak RSS ${(s.rss / MIB).toFixed(0)} MiB)\n` +
          `batch.day.compute round ${round} steps (ms): ${parts.join(', ')}\n`,
      );
    }
    const median = <T>(xs: T[], key: (x: T) => number): T =>
      [...xs].sort((a, b) => key(a) - key(b))[Math.floor(xs.length / 2)] as T;
    const compute = median(rounds, (r) => r.compute / r.scan);
    const computeCpu = median(rounds, (r) => r.computeCpu / r.scanCpu);

    // The whole job, with the store write (minutes at 20M events): one round at that size, two when smaller.
    const store = await openSqliteStatsStore(join(dir, 'reckon.sqlite'));
    const jobs: { job: number; scan: number }[] = [];
    try {
      for (let round = 0; round < (events >= 5_000_000 ? 1 : 2); round++) {
        const s = await scan();
        const parts: string[] = [];
        const r = await measured(() =>
          runRecalculation({
            ...options,
            store,
            runId: `bench-${round}`,
            onStepTimed: (part, ms) => parts.push(`${part} ${ms.toFixed(0)}`),
          }),
        );
        const run = r.result;
        jobs.push({ job: (run.recordsRead / r.ms) * 1000, scan: (s.result / s.ms) * 1000 });
        process.stderr.write(
          `batch.day round ${round}: ${run.recordsRead} records in ${r.ms.toFixed(0)} ms (compute ${run.computeMs.toFixed(0)}, write ${run.writeMs.toFixed(0)} ms, ${run.rows} rows); scan ${s.result} in ${s.ms.toFixed(0)} ms\n` +
            `batch.day round ${round} steps (ms): ${parts.join(', ')}\n`,
        );
      }
    } finally {
      rss.stop();
      await store.close();
    }
    const job = jobs.reduce((a, b) => (b.job / b.scan > a.job / a.scan ? b : a));
    process.stderr.write(`batch.day: ${read} records per run\n`);
    return [
      {
        name: 'batch.day',
        description:
          'a simulated day recalculated as a whole job (lake read, DuckDB, store write and switch); baseline: a plain DuckDB count/sum scan of the same Parquet files',
        unit: 'events/s',
        value: Math.round(job.job),
        baseline: Math.round(job.scan),
        ratio: Number((job.job / job.scan).toFixed(3)),
      },
      {
        name: 'batch.day.compute',
        description: `the same day recalculated from the lake into the result table (${read} records, ${resultRows} minute rows, no store write), median of 3 rounds alternating with the baseline: the same plain scan`,
        unit: 'events/s',
        value: Math.round(compute.compute),
        baseline: Math.round(compute.scan),
        ratio: Number((compute.compute / compute.scan).toFixed(3)),
      },
      {
        name: 'batch.day.compute.cpu',
        description:
          "batch.day.compute per second of the process's CPU time (DuckDB's threads included; less moved by other load on the machine than wall time), median round; baseline: the plain scan per CPU second",
        unit: 'events/cpu-s',
        value: Math.round(computeCpu.computeCpu),
        baseline: Math.round(computeCpu.scanCpu),
        ratio: Number((computeCpu.computeCpu / computeCpu.scanCpu).toFixed(3)),
      },
      {
        name: 'batch.day.compute.rss',
        description: `peak RSS of the process while batch.day.compute ran (sampled every 10 ms; its result table of ${resultRows} minute rows is in memory at the end), highest of the rounds; baseline: the same for the plain scan`,
        unit: 'MiB',
        value: Math.round(Math.max(...rounds.map((r) => r.computeRss)) / MIB),
        baseline: Math.round(Math.max(...rounds.map((r) => r.scanRss)) / MIB),
        ratio: Number(
          (Math.max(...rounds.map((r) => r.computeRss)) / Math.max(...rounds.map((r) => r.scanRss))).toFixed(3),
        ),
      },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
