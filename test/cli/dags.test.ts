import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isHourSealed } from '../../src/lake/index.ts';
import { DEFAULT_SIMULATION, expectedStatistics, simulate } from '../../src/sim/index.ts';
import { openSqliteSchedulerStore } from '../../src/store/index.ts';
import { CLI, minuteRows, reckonAsync, simulatorRulesEnv, waitForLine } from '../support/cli.ts';
import { lakeRowCount } from '../support/lake.ts';
import { waitFor } from '../support/wait.ts';

const DAY = 86_400_000;
const HOUR = 3_600_000;

function lakeCount(lake: string): Promise<number> {
  return lakeRowCount(lake, ['emissions', 'clicks']);
}

describe('reckon dags', () => {
  it('backfills recalculate-daily and recalculate-hourly over simulated days with progress (2 daily and 48 hourly runs, exact rows); late data reruns the hour and the day exactly once with the corrected values; the REST API triggers and reads runs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reckon-dags-'));
    const data = join(dir, 'data');
    const start = Date.UTC(2026, 10, 1);
    const options = { ...DEFAULT_SIMULATION, seed: 41, emissions: 2_000, start, durationMs: 2 * DAY };
    const sim = simulate(options);
    const expected = expectedStatistics(sim.events, options.rules);
    writeFileSync(join(dir, 'events.ndjson'), `${sim.lines.join('\n')}\n`);
    const env = {
      ...simulatorRulesEnv(options.rules),
      // No scheduled runs of these days: the backfill makes them.
      RECKON_SCHEDULER_START_DATE: '2030-01-01',
      RECKON_SCHEDULER_POKE_INTERVAL: '500ms',
    };
    const child = spawn(process.execPath, [...CLI, 'start', '--port', '0', '--data', data], { cwd: dir, env });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    try {
      const url = (await waitForLine(child, /http:\/\/127\.0\.0\.1:\d+/)).trim();
      const ingest = await reckonAsync(['ingest', join(dir, 'events.ndjson'), '--url', url, '--batch', '500']);
      assert.equal(ingest.status, 0, ingest.stderr);
      const accepted = Number(/(\d+) events accepted/.exec(ingest.stdout)?.[1]);
      const lake = join(data, 'lake');
      await waitFor('every accepted event in the lake', async () => (await lakeCount(lake)) === accepted, 60_000, 200);
      await waitFor('the simulated hours sealed', () => isHourSealed(lake, start + 2 * DAY - HOUR), 30_000, 200);

      // The daily recalculation waits on the lake, not on hourly runs: its backfill makes only its own.
      const backfill = await reckonAsync(
        ['dags', 'backfill', 'recalculate-daily', '--from', '2026-11-01', '--to', '2026-11-02', '--data', data],
        env,
      );
      assert.equal(backfill.status, 0, `${backfill.stdout}\n${backfill.stderr}`);
      assert.match(backfill.stdout, /: 2 runs of recalculate-daily\n/);
      assert.match(backfill.stderr, /backfill: 100% \(2\/2\)/, 'progress shown');
      assert.match(backfill.stdout, /2 of 2 runs succeeded/);
      const hours = await reckonAsync(
        ['dags', 'backfill', 'recalculate-hourly', '--from', '2026-11-01', '--to', '2026-11-02', '--data', data],
        env,
      );
      assert.equal(hours.status, 0, `${hours.stdout}\n${hours.stderr}`);
      assert.match(hours.stdout, /: 48 runs of recalculate-hourly\n/);
      assert.match(hours.stdout, /48 of 48 runs succeeded/);
      const rows = await minuteRows(url, '2026-11-01', '2026-11-03');
      assert.ok(rows.length > 0 && rows.every((r) => r.source === 'batch' && r.final === true));
      const end = start + 2 * DAY;
      assert.deepEqual(
        rows.map(({ source: _s, final: _f, ...r }) => r),
        expected.minute.filter((r) => Date.parse(r.bucket) < end),
      );

      // Late data for 05:00 on the first day: the hour's run and the day's run rerun once each.
      const lateHour = start + 5 * HOUR;
      const late = [
        {
          type: 'emission',
          id: 'late-em-1',
          ts: new Date(lateHour + 10 * 60_000).toISOString(),
          placement: 'late-placement',
          offers: [{ offerId: 'late-offer', clickCost: '0.75' }],
        },
        {
          type: 'click',
          id: 'late-cl-1',
          ts: new Date(lateHour + 12 * 60_000).toISOString(),
          emissionId: 'late-em-1',
          offerId: 'late-offer',
          userId: 'late-user',
          ip: '203.0.113.99',
        },
      ];
      const res = await fetch(`${url}/v1/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-ndjson' },
        body: late.map((e) => JSON.stringify(e)).join('\n'),
      });
      assert.equal(res.status, 200);
      const store = await openSqliteSchedulerStore(join(data, 'reckon.sqlite'));
      try {
        await waitFor(
          'the late hour and day rerun and done',
          async () => {
            const h = await store.getRun('recalculate-hourly', lateHour);
            const d = await store.getRun('recalculate-daily', start);
            return (
              h?.clearCount === 1 &&
              h.state === 'success' &&
              d?.clearCount === 1 &&
              d.state === 'success' &&
              d.pendingClear === null
            );
          },
          90_000,
          250,
        );
        const runs = await store.listRuns({});
        const rerun = runs
          .filter((r) => r.clearCount > 0)
          .map((r) => `${r.dagId} ${new Date(r.logicalDate).toISOString()}`);
        assert.deepEqual(
          rerun,
          [
            `recalculate-daily ${new Date(start).toISOString()}`,
            `recalculate-hourly ${new Date(lateHour).toISOString()}`,
          ].sort((a, b) => (a.split(' ')[1] as string).localeCompare(b.split(' ')[1] as string)),
        );
      } finally {
        await store.close();
      }
      const after = await minuteRows(url, '2026-11-01T05:00:00Z', '2026-11-01T06:00:00Z');
      const lateRows = after.filter((r) => r.offerId === 'late-offer');
      assert.deepEqual(
        lateRows.map((r) => [r.bucket, r.emissions, r.clicks, r.clickCost, r.source]),
        [
          ['2026-11-01T05:10:00.000Z', 1, 0, '0', 'batch'],
          ['2026-11-01T05:12:00.000Z', 0, 1, '0.75', 'batch'],
        ],
      );

      // The REST API: trigger a run for a logical date and read its state (admin scope, open here).
      const trigger = await fetch(`${url}/v1/dags/recalculate-hourly/runs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ logicalDate: '2026-11-03T00:00:00Z' }),
      });
      assert.equal(trigger.status, 200);
      const created = (await trigger.json()) as { dag_run_id: string; state: string; data_interval_end: string };
      assert.equal(created.dag_run_id, 'manual__2026-11-03T00:00:00.000Z');
      assert.equal(created.data_interval_end, '2026-11-03T01:00:00.000Z');
      await waitFor(
        'the triggered run to succeed',
        async () => {
          const r = await fetch(`${url}/v1/dags/recalculate-hourly/runs/${encodeURIComponent(created.dag_run_id)}`);
          return ((await r.json()) as { state: string }).state === 'success';
        },
        60_000,
        250,
      );
      const again = await fetch(`${url}/v1/dags/recalculate-hourly/runs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ logicalDate: '2026-11-03T00:00:00Z' }),
      });
      assert.equal(again.status, 409);
      const bad = await fetch(`${url}/v1/dags/recalculate-hourly/runs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ logicalDate: '2026-11-03T00:30:00Z' }),
      });
      assert.equal(bad.status, 400);
      assert.match(((await bad.json()) as { message: string }).message, /logicalDate: .* is not a tick/);
      const tries = (await (await fetch(`${url}/v1/dags/recalculate-daily/taskTries?task_id=recalculate`)).json()) as {
        task_tries: { logical_date: string; try_number: number; duration: number }[];
      };
      assert.deepEqual(
        tries.task_tries.map((t) => [t.logical_date, t.try_number]).sort(),
        [
          ['2026-11-01T00:00:00.000Z', 1],
          ['2026-11-01T00:00:00.000Z', 2],
          ['2026-11-02T00:00:00.000Z', 1],
        ],
        'the duration history holds every try, the rerun too',
      );
      assert.ok(tries.task_tries.every((t) => t.duration > 0));
      const unknown = await fetch(`${url}/v1/dags/nope/runs/x`);
      assert.equal(unknown.status, 404);

      // clear --downstream from the command line: the hour's recalculation and check rerun, the sensor does not.
      const clear = await reckonAsync(
        [
          'dags',
          'clear',
          'recalculate-hourly',
          '--from',
          '2026-11-02T03:00:00Z',
          '--to',
          '2026-11-02T03:00:00Z',
          '--task',
          'recalculate',
          '--downstream',
          '--data',
          data,
        ],
        env,
      );
      assert.equal(clear.status, 0, clear.stderr);
      assert.match(clear.stdout, /cleared 1 runs of recalculate-hourly: recalculate, discrepancy-check/);
      assert.match(clear.stdout, /1 of 1 runs succeeded/);
      const cleared = await openSqliteSchedulerStore(join(data, 'reckon.sqlite'));
      try {
        const tis = await cleared.listTaskInstances('recalculate-hourly', [start + DAY + 3 * HOUR]);
        assert.deepEqual(
          tis.map((t) => [t.taskId, t.state, t.tryNumber]),
          [
            ['wait-for-sealed-hour', 'success', 1],
            ['recalculate', 'success', 2],
            ['discrepancy-check', 'success', 2],
            ['anomaly-check', 'success', 2],
          ],
        );
      } finally {
        await cleared.close();
      }
      const list = await reckonAsync(['dags', 'list', '--data', data], env);
      assert.match(
        list.stdout,
        /recalculate-daily\s+@daily\s+wait-for-hours -> recalculate -> discrepancy-check -> anomaly-check/,
      );
      const runsOut = await reckonAsync(['dags', 'runs', 'recalculate-daily', '--data', data], env);
      assert.equal(runsOut.status, 0, runsOut.stderr);
      assert.match(runsOut.stdout, /2026-11-01T00:00:00.000Z backfill\s+success/);
      assert.match(runsOut.stdout, /recalculate\s+success\s+try 2\/5/);
    } catch (e) {
      throw new Error(`${e instanceof Error ? e.message : String(e)}\nserver stderr:\n${stderr.slice(-4000)}`, {
        cause: e,
      });
    } finally {
      child.kill('SIGKILL');
    }
  });
});
