/**
 * Serving store benchmarks: `batch.store-write`, a day of batch minute rows (16M by default,
 * RECKON_BENCH_STORE_ROWS) written aside as a generation and switched in, against plain inserts
 * of the same rows into a table without a key in the same file (the floor of any write); and
 * `batch.store-lock`, the longest a speed flush waited for the store while that batch wrote and
 * switched, measured by a writer thread flushing every few milliseconds, against its median.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { type MinuteStatsColumns, openSqliteStatsStore, RunColumnsBuilder } from '../src/stats/index.ts';
import { type BenchResult, percentile } from './harness.ts';

const ROWS = Number(process.env.RECKON_BENCH_STORE_ROWS ?? 16_000_000);
const DAY = 86_400_000;
const START = Date.UTC(2026, 10, 21);
const BATCH = 100_000;

/** `rows` minute rows of the day starting at `start`, in key order, in batches of columns made as they are read. */
export function* dayRows(rows = ROWS, start = START): Generator<MinuteStatsColumns> {
  const ROWS = rows;
  const START = start;
  const perMinute = Math.ceil(ROWS / 1440);
  const offers = Array.from({ length: perMinute }, (_, i) => `of-${String(i).padStart(7, '0')}`);
  let made = 0;
  for (let minute = 0; minute < 1440 && made < ROWS;) {
    const b = new RunColumnsBuilder();
    while (b.length < BATCH && minute < 1440 && made < ROWS) {
      const at = made % perMinute;
      b.push(START + minute * 60_000, offers[at] as string, 'home', 1, at % 3, BigInt(at % 3) * 250_000n, 0, 0, 0n, 0);
      made++;
      if (at === perMinute - 1) minute++;
    }
    yield b.take();
  }
}

/** Runs the store benchmarks. */
export async function storeBenchmarks(): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'reckon-bench-store-'));
  const path = join(dir, 'reckon.sqlite');
  try {
    const store = await openSqliteStatsStore(path);
    // A speed writer in another process, flushing a one-row run every 5 ms while the batch writes.
    const probe = spawn(
      process.execPath,
      ['--import', 'tsx', new URL('./store-probe.ts', import.meta.url).pathname, path],
      {
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    );
    let out = '';
    probe.stdout.on('data', (c: Buffer) => (out += c.toString()));
    await new Promise<void>((resolve, reject) => {
      const check = () => (out.includes('ready\n') ? resolve() : undefined);
      probe.stdout.on('data', check);
      probe.once('exit', (code) => reject(new Error(`store-probe.ts exited with ${code}`)));
    });
    // Its flushes before the batch starts: the typical flush on an idle store.
    await new Promise((r) => setTimeout(r, 500));
    const batchFrom = Date.now();
    const started = performance.now();
    await store.replaceBatchInterval(START, START + DAY, { columns: dayRows() }, 'bench');
    const writeS = (performance.now() - started) / 1000;
    const exited = new Promise((r) => probe.once('exit', r));
    probe.stdin.end();
    await exited;
    await store.close();
    const all = JSON.parse(out.trim().split('\n').at(-1) as string) as [number, number][];
    const idle = all.filter(([at]) => at < batchFrom).map(([, ms]) => ms);
    const waits = all.filter(([at]) => at >= batchFrom).map(([, ms]) => ms);

    // The floor: the same rows inserted into a table without a key, 100,000 per transaction.
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec(`CREATE TABLE bench_plain (g INTEGER, b INTEGER, o TEXT, p TEXT, e INTEGER, c INTEGER, cc INTEGER,
      d INTEGER, f INTEGER, fc INTEGER, i INTEGER)`);
    const insert = db.prepare('INSERT INTO bench_plain VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
    const write = db.transaction((c: MinuteStatsColumns) => {
      for (let i = 0; i < c.length; i++)
        insert.run(
          2,
          c.bucketStart[i],
          c.offerId[i],
          c.placement[i],
          c.emissions[i],
          c.clicks[i],
          c.clickCost[i],
          c.duplicateClicks[i],
          c.fraudClicks[i],
          c.fraudCost[i],
          c.invalidClicks[i],
        );
    });
    const plainStarted = performance.now();
    for (const c of dayRows()) write(c);
    const plainS = (performance.now() - plainStarted) / 1000;
    db.close();

    const longest = Math.max(...waits);
    const typical = percentile(idle, 50);
    return [
      {
        name: 'batch.store-write',
        description: `${ROWS} batch minute rows of one day staged as a generation (with its hour and day rollups) and switched in; baseline: plain inserts of the same rows into a table without a key`,
        unit: 'rows/s',
        value: Math.round(ROWS / writeS),
        baseline: Math.round(ROWS / plainS),
        ratio: Number((plainS / writeS).toFixed(3)),
      },
      {
        name: 'batch.store-lock',
        description: `longest wait of a speed flush (another process, every 5 ms, ${waits.length} flushes) while batch.store-write wrote and switched; baseline: a flush's median time on an idle store`,
        unit: 'ms',
        value: Number(longest.toFixed(1)),
        baseline: Number(typical.toFixed(1)),
        ratio: Number((longest / typical).toFixed(3)),
      },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
