import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { openBatchDatabase, runRecalculation, statsFileOf } from '../../src/batch/index.ts';
import { parseEventLine } from '../../src/events/index.ts';
import { DEFAULT_SIMULATION, expectedStatistics, SeededRandom, simulate } from '../../src/sim/index.ts';
import { SpeedEngine } from '../../src/speed/index.ts';
import { type MinuteStats, openSqliteStatsStore, type StatsStore } from '../../src/stats/index.ts';
import { writeLakeFromLines } from '../support/lake.ts';
import { expectedRowOf, sortRows, storeRows } from '../support/speed.ts';
import { waitFor } from '../support/wait.ts';
import { lakeHourFiles } from '../../src/lake/index.ts';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const TSX = import.meta.resolve('tsx');
const WRITER = new URL('../support/batch-writer.ts', import.meta.url).pathname;

async function batchRows(store: StatsStore, from: number, to: number) {
  const rows = await storeRows(store, from, to, 'minute');
  return rows;
}

describe('safe write of batch rows', () => {
  it('replaces a day idempotently (identical store rows, byte-identical Parquet, served as batch and final) and records its discrepancies with the speed rows', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reckon-safe-'));
    const lake = join(dir, 'lake');
    const options = { ...DEFAULT_SIMULATION, seed: 5, emissions: 6_000 };
    const sim = simulate(options);
    await writeLakeFromLines(lake, sim.lines);
    const store = await openSqliteStatsStore(join(dir, 'reckon.sqlite'));
    try {
      const day = { from: options.start, to: options.start + DAY };
      // The speed layer's guess first (faults on, so it deviates), to be reconciled.
      const engine = new SpeedEngine(options.rules);
      let n = 0;
      for (const line of sim.lines) {
        const r = parseEventLine(line);
        if (!r.ok) continue;
        if (r.event.type === 'emission') engine.emission(r.event);
        else engine.click(r.event);
        if (++n % 1000 === 0) engine.advance(); // state trimmed as it goes: late events miss it
      }
      engine.flush();
      const speedRows = engine.drain().filter((d) => d.bucketStart >= day.from && d.bucketStart < day.to);
      await store.applySpeedDeltas('speed', speedRows, []);
      const first = await runRecalculation({
        listHourFiles: lakeHourFiles,
        lakeDir: lake,
        store,
        ...day,
        rules: options.rules,
        runId: 'first',
      });
      const sumOf = (rows: { clicks: number; invalidClicks: number }[], c: 'clicks' | 'invalidClicks') =>
        rows.reduce((n, r) => n + r[c], 0);
      const expectedDayRows = expectedStatistics(sim.events, options.rules).day.filter(
        (r) => Date.parse(r.bucket) === day.from,
      );
      for (const c of ['clicks', 'invalidClicks'] as const) {
        const d = first.discrepancies.find((x) => x.column === c);
        assert.equal(d?.speed, BigInt(sumOf(speedRows, c)), `speed ${c}`);
        assert.equal(d?.batch, BigInt(sumOf(expectedDayRows, c)), `batch ${c}`);
      }
      assert.ok(
        first.discrepancies.some((d) => d.speed !== d.batch),
        'with faults on, speed deviates in some column',
      );
      assert.deepEqual(
        (await store.discrepancies(day.from, day.to)).map((d) => [d.column, d.speed, d.batch]),
        first.discrepancies.map((d) => [d.column, d.speed, d.batch]),
      );
      const rowsAfterFirst = await batchRows(store, day.from, day.to);
      const parquet = (h: number) => readFileSync(statsFileOf(lake, h));
      const filesAfterFirst = [0, 5, 23].map((i) => parquet(day.from + i * HOUR));
      const second = await runRecalculation({
        listHourFiles: lakeHourFiles,
        lakeDir: lake,
        store,
        ...day,
        rules: options.rules,
        runId: 'second',
      });
      assert.equal(second.rows, first.rows);
      assert.deepEqual(await batchRows(store, day.from, day.to), rowsAfterFirst);
      [0, 5, 23].forEach((i, k) => assert.ok(parquet(day.from + i * HOUR).equals(filesAfterFirst[k] as Buffer)));
      const expected = expectedStatistics(sim.events, options.rules);
      const inDay = (rows: { bucket: string }[]) => rows.filter((r) => Date.parse(r.bucket) < day.to);
      assert.deepEqual(sortRows(rowsAfterFirst), inDay(expected.minute));
      const page = await store.query({ from: day.from, to: day.to, granularity: 'hour', limit: 10_000 });
      assert.ok(page.rows.length > 0);
      assert.ok(page.rows.every((r) => r.source === 'batch' && r.final));
      assert.equal(page.exactUntil, day.to);
      assert.deepEqual(
        (await store.batchIntervals()).map((i) => [i.from, i.to, i.runId]),
        [[day.from, day.to, 'second']],
      );
    } finally {
      await store.close();
    }
  });

  it('never leaves a mix of old and new rows in the store, nor a partial Parquet hour, across 20 SIGKILLs during writes', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'reckon-safe-kill-'));
    const lake = join(dir, 'lake');
    const dbPath = join(dir, 'reckon.sqlite');
    const options = { ...DEFAULT_SIMULATION, seed: 6, emissions: 4_000 };
    const sim = simulate(options);
    await writeLakeFromLines(lake, sim.lines);
    const from = options.start;
    const to = from + 6 * HOUR;
    // Two row sets: the real rows, and the same rows with every click doubled.
    const store0 = await openSqliteStatsStore(dbPath);
    await runRecalculation({
      listHourFiles: lakeHourFiles,
      lakeDir: lake,
      store: store0,
      from,
      to,
      rules: options.rules,
      runId: 'seed',
    });
    const real = (await store0.query({ from, to, granularity: 'minute', limit: 10_000 })).rows;
    await store0.close();
    const sets: MinuteStats[][] = [
      real.map(({ source: _s, final: _f, ...r }) => r),
      real.map(({ source: _s, final: _f, ...r }) => ({ ...r, clicks: r.clicks * 2, clickCost: r.clickCost * 2n })),
    ];
    const files = sets.map((rows, i) => {
      const file = join(dir, `set-${i}.json`);
      writeFileSync(
        file,
        JSON.stringify(rows, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)),
      );
      return file;
    });
    const wanted = sets.map((rows) => JSON.stringify(sortRows(rows.map(expectedRowOf))));
    const rng = new SeededRandom(7);
    const seen = new Set<number>();
    for (let kill = 0; kill < 20; kill++) {
      const child = spawn(
        process.execPath,
        ['--import', TSX, WRITER, lake, dbPath, String(from), String(to), ...files],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      const exited = new Promise((r) => child.once('exit', r));
      let out = '';
      child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
      await waitFor('the writer to start', () => out.includes('ready'), 30_000);
      await new Promise((r) => setTimeout(r, 50 + rng.int(400)));
      child.kill('SIGKILL');
      await exited;
      const store = await openSqliteStatsStore(dbPath);
      const now = JSON.stringify(sortRows(await batchRows(store, from, to)));
      await store.close();
      const which = wanted.indexOf(now);
      assert.notEqual(which, -1, `after kill ${kill + 1} the store holds a mix of two writes`);
      seen.add(which);
      // Every Parquet hour is one write or the other, whole.
      for (let h = from; h < to; h += HOUR) {
        const file = statsFileOf(lake, h);
        if (existsSync(file)) {
          // A whole file of one write: readable, and its clicks those of one of the two row sets.
          const db = await openBatchDatabase(1);
          const got = await db.connection.runAndReadAll(
            `SELECT coalesce(sum(clicks), 0)::BIGINT FROM read_parquet('${file}')`,
          );
          db.close();
          const clicks = Number(got.getRows()[0]?.[0]);
          const inHour = (rows: MinuteStats[]) =>
            rows.filter((r) => r.bucketStart >= h && r.bucketStart < h + HOUR).reduce((n, r) => n + r.clicks, 0);
          assert.ok(
            sets.some((rows) => inHour(rows) === clicks),
            `hour file ${file} is whole`,
          );
        }
        assert.ok(
          readdirSync(dirname(file)).every((n) => n === 'stats.parquet' || n.startsWith('.tmp-stats-')),
          'only the hour file and at most a temporary file of the killed write',
        );
      }
    }
    t.diagnostic(`20 SIGKILLs; the store held row set(s) ${[...seen].sort().join(', ')} afterwards, never a mix`);
  });
});
