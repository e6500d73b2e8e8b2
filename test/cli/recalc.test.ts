/**
 * Recalculating past windows on demand: a triggered run of a past day runs (it waits on the
 * day's lake input, not on runs nothing creates); nothing is served as final while the lake does
 * not hold the day; `reckon recalc` recalculates a window through the scheduler with progress,
 * a discrepancy report and an exit status that says whether every day succeeded.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULT_SIMULATION, expectedStatistics, NO_FAULTS, simulate } from '../../src/sim/index.ts';
import { CLI, cleanEnv, minuteRows, reckonAsync, ROOT, simulatorRulesEnv, waitForLine } from '../support/cli.ts';
import { waitFor } from '../support/wait.ts';

const DAY = 86_400_000;

/** The oracle's minute rows of the day starting at `day`. */
function oracleDay(expected: ReturnType<typeof expectedStatistics>, day: number) {
  return expected.minute.filter((r) => Date.parse(r.bucket) >= day && Date.parse(r.bucket) < day + DAY);
}

/** Waits (90 s at most) for a run of recalculate-daily to succeed; fails at once if it fails. */
async function runSucceeds(url: string, runId: string): Promise<void> {
  await waitFor(
    `run ${runId} to succeed`,
    async () => {
      const r = (await (await fetch(`${url}/v1/dags/recalculate-daily/runs/${encodeURIComponent(runId)}`)).json()) as {
        state: string;
      };
      assert.notEqual(r.state, 'failed');
      return r.state === 'success';
    },
    90_000,
    250,
  );
}

const strip = (rows: Record<string, unknown>[]) => rows.map(({ source: _s, final: _f, ...r }) => r);
const iso = (t: number) => new Date(t).toISOString().slice(0, 10);

function spawnReckon(args: string[], env: Record<string, string>): { child: ChildProcess; stderr: () => string } {
  const child = spawn(process.execPath, [...CLI, ...args], { cwd: ROOT, env: { ...cleanEnv, ...env } });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  return { child, stderr: () => stderr };
}

async function post(url: string, lines: string[]): Promise<number> {
  const res = await fetch(`${url}/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson' },
    body: `${lines.join('\n')}\n`,
  });
  const body = (await res.json()) as { accepted?: number };
  assert.equal(res.status, 200, JSON.stringify(body));
  return body.accepted ?? 0;
}

describe('recalculating past windows', () => {
  it('runs a REST-triggered recalculate-daily of a past day posted to a fresh reckon start, and `reckon dags trigger --wait` of another: exact, batch, final', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reckon-trigger-'));
    const data = join(dir, 'data');
    const start = Date.UTC(2026, 10, 2);
    const options = { ...DEFAULT_SIMULATION, seed: 23, emissions: 1_500, start, durationMs: 2 * DAY };
    const sim = simulate(options);
    const expected = expectedStatistics(sim.events, options.rules);
    const env = {
      ...simulatorRulesEnv(options.rules),
      RECKON_SCHEDULER_START_DATE: '2099-01-01',
      RECKON_SCHEDULER_POKE_INTERVAL: '500ms',
    };
    const server = spawnReckon(['start', '--port', '0', '--data', data], env);
    try {
      const url = (await waitForLine(server.child, /http:\/\/127\.0\.0\.1:\d+/)).trim();
      writeFileSync(join(dir, 'events.ndjson'), `${sim.lines.join('\n')}\n`);
      const ingest = await reckonAsync(['ingest', join(dir, 'events.ndjson'), '--url', url, '--batch', '500']);
      assert.equal(ingest.status, 0, ingest.stderr);
      // Triggered at once: the archiver may not have landed the day yet; the run waits for that.
      const trigger = await fetch(`${url}/v1/dags/recalculate-daily/runs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ logicalDate: '2026-11-02' }),
      });
      assert.equal(trigger.status, 200);
      const run = (await trigger.json()) as { dag_run_id: string };
      await runSucceeds(url, run.dag_run_id);
      const day1 = await minuteRows(url, '2026-11-02', '2026-11-03');
      assert.ok(day1.length > 0 && day1.every((r) => r.source === 'batch' && r.final === true));
      assert.deepEqual(strip(day1), oracleDay(expected, start));

      const cli = await reckonAsync(
        ['dags', 'trigger', 'recalculate-daily', '--logical-date', '2026-11-03', '--wait', '--data', data],
        env,
      );
      assert.equal(cli.status, 0, `${cli.stdout}\n${cli.stderr}`);
      assert.match(cli.stdout, /created: recalculate-daily manual__2026-11-03T00:00:00.000Z/);
      assert.match(cli.stdout, /1 of 1 runs succeeded/);
      const day2 = await minuteRows(url, '2026-11-03', '2026-11-04');
      assert.ok(day2.length > 0 && day2.every((r) => r.source === 'batch' && r.final === true));
      assert.deepEqual(strip(day2), oracleDay(expected, start + DAY));
    } catch (e) {
      throw new Error(
        `${e instanceof Error ? e.message : String(e)}\nserver stderr:\n${server.stderr().slice(-4000)}`,
        {
          cause: e,
        },
      );
    } finally {
      server.child.kill('SIGKILL');
    }
  });

  it('serves no final batch numbers while the day is on its way to the lake (reckon batch refuses, a triggered run waits and says why, --force is never final); once the lake holds it, exact', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reckon-incomplete-'));
    const data = join(dir, 'data');
    const options = { ...DEFAULT_SIMULATION, seed: 29, emissions: 1_500 };
    const sim = simulate(options);
    const expected = expectedStatistics(sim.events, options.rules);
    const env = {
      ...simulatorRulesEnv(options.rules),
      RECKON_SCHEDULER_START_DATE: '2099-01-01',
      RECKON_SCHEDULER_POKE_INTERVAL: '500ms',
    };
    // The collector, the speed layer and the scheduler run; the archiver is down.
    const collector = spawnReckon(['collector', '--port', '0', '--data', data], env);
    const others: ReturnType<typeof spawnReckon>[] = [];
    try {
      const url = (await waitForLine(collector.child, /http:\/\/127\.0\.0\.1:\d+/)).trim();
      others.push(spawnReckon(['speed', '--data', data], env), spawnReckon(['scheduler', '--data', data], env));
      const accepted = await post(url, sim.lines);
      assert.ok(accepted > 0);
      await waitFor(
        'the speed layer to count the day',
        async () => (await minuteRows(url, '2026-11-21', '2026-11-22')).length > 0,
        60_000,
        250,
      );

      const refused = await reckonAsync(['batch', '--interval', '2026-11-21', '--wait', '1', '--data', data], env);
      assert.notEqual(refused.status, 0);
      assert.match(
        refused.stderr,
        /2026-11-21T00:00:00.000Z \.\. 2026-11-22T00:00:00.000Z cannot be recalculated as final yet: hours 2026-11-21T00:00Z\.\.2026-11-21T23:00Z \(24 hours\) are not sealed .*; the archiver has not landed \d+ record\(s\) of the log yet/,
      );
      const trigger = await fetch(`${url}/v1/dags/recalculate-daily/runs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ logicalDate: '2026-11-21' }),
      });
      assert.equal(trigger.status, 200);
      const runId = ((await trigger.json()) as { dag_run_id: string }).dag_run_id;
      const tasksUrl = `${url}/v1/dags/recalculate-daily/runs/${encodeURIComponent(runId)}/taskInstances`;
      let sensor: Record<string, unknown> | undefined;
      await waitFor(
        'the sensor to say what it waits for',
        async () => {
          const tis = (await (await fetch(tasksUrl)).json()) as { task_instances: Record<string, unknown>[] };
          sensor = tis.task_instances.find((t) => t.task_id === 'wait-for-hours');
          return sensor?.state === 'up_for_reschedule' && typeof sensor.waiting_for === 'string';
        },
        30_000,
        250,
      );
      assert.match(String(sensor?.waiting_for), /^lake input: hours .* are not sealed/);
      assert.match(String(sensor?.waiting_since), /^\d{4}-\d{2}-\d{2}T/);
      const runs = await reckonAsync(['dags', 'runs', 'recalculate-daily', '--data', data], env);
      assert.match(
        runs.stdout,
        /wait-for-hours\s+(up_for_reschedule|running) .* waiting since \S+ for lake input: hours/,
      );
      const speedRows = await minuteRows(url, '2026-11-21', '2026-11-22');
      assert.ok(
        speedRows.every((r) => r.source === 'speed' && r.final === false),
        'the speed numbers stay',
      );

      // Forced: the lake's part of the day is served, never as final.
      const forced = await reckonAsync(
        ['batch', '--interval', '2026-11-21', '--wait', '0', '--force', '--data', data],
        env,
      );
      assert.equal(forced.status, 0, forced.stderr);
      assert.match(forced.stdout, /forced: the lake input was not complete/);
      const forcedRows = await minuteRows(url, '2026-11-21', '2026-11-22');
      assert.ok(forcedRows.every((r) => r.source === 'batch' && r.final === false));

      // The archiver comes back: the lake gets the day, its hours seal, the waiting run finishes.
      others.push(spawnReckon(['archiver', '--data', data], env));
      await runSucceeds(url, runId);
      const rows = await minuteRows(url, '2026-11-21', '2026-11-22');
      assert.ok(rows.every((r) => r.source === 'batch' && r.final === true));
      assert.deepEqual(strip(rows), oracleDay(expected, options.start));
      const batch = await reckonAsync(['batch', '--interval', '2026-11-21', '--data', data], env);
      assert.equal(batch.status, 0, batch.stderr);
      assert.deepEqual(strip(await minuteRows(url, '2026-11-21', '2026-11-22')), oracleDay(expected, options.start));
    } catch (e) {
      throw new Error(
        `${e instanceof Error ? e.message : String(e)}\ncollector stderr:\n${collector.stderr().slice(-2000)}\n` +
          `other stderr:\n${others.map((o) => o.stderr().slice(-2000)).join('\n---\n')}`,
        { cause: e },
      );
    } finally {
      for (const p of [collector, ...others]) p.child.kill('SIGKILL');
    }
  });

  it('reckon recalc over 3 days: progress on a terminal, exact days, a zero report on clean input, safe to rerun; exit 1 when a day fails', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reckon-recalc-'));
    const data = join(dir, 'data');
    // Recent days, so that a retention of 3 days drops the first of them.
    const today = Math.floor(Date.now() / DAY) * DAY;
    const start = today - 5 * DAY;
    const options = {
      ...DEFAULT_SIMULATION,
      seed: 37,
      emissions: 1_500,
      start,
      durationMs: 3 * DAY,
      faults: NO_FAULTS,
    };
    const sim = simulate(options);
    const expected = expectedStatistics(sim.events, options.rules);
    const env = {
      ...simulatorRulesEnv(options.rules),
      RECKON_SCHEDULER_START_DATE: '2099-01-01',
      RECKON_SCHEDULER_POKE_INTERVAL: '500ms',
    };
    const server = spawnReckon(['start', '--port', '0', '--data', data], env);
    let url = '';
    try {
      url = (await waitForLine(server.child, /http:\/\/127\.0\.0\.1:\d+/)).trim();
      const accepted = await post(url, sim.lines);
      assert.equal(accepted, sim.lines.length);
      const speedEmissions = expected.day.reduce((n, r) => n + r.emissions, 0);
      await waitFor(
        'the speed layer to count every emission',
        async () => {
          const page = (await (
            await fetch(`${url}/v1/stats?from=${iso(start)}&to=${iso(start + 3 * DAY)}&granularity=day&limit=10000`)
          ).json()) as { rows: { emissions: number }[] };
          return page.rows.reduce((n, r) => n + r.emissions, 0) === speedEmissions;
        },
        60_000,
        250,
      );
      const window = ['--from', iso(start), '--to', iso(start + 2 * DAY), '--data', data];
      // Under `script`, the command has a terminal: the progress bar redraws in place.
      const shell = [process.execPath, ...CLI, 'recalc', ...window].map((a) => `'${a}'`).join(' ');
      const first = await new Promise<{ status: number | null; out: string }>((resolve) => {
        const child = spawn('script', ['-qec', shell, '/dev/null'], { cwd: ROOT, env: { ...cleanEnv, ...env } });
        let out = '';
        child.stdout.on('data', (c: Buffer) => (out += c.toString()));
        child.once('exit', (status) => resolve({ status, out }));
      });
      assert.equal(first.status, 0, first.out);
      assert.match(first.out, /recalc .*: 3 day\(s\) through recalculate-daily \(3 created\)/);
      assert.match(first.out, /\rrecalc days\s+\[#+\.*\]\s+\d+% \d\/3 .* events\/s/, 'a progress bar drawn in place');
      assert.match(first.out, /\[#{30}\] 100% 3\/3 .*done/);
      assert.match(first.out, /3 of 3 day\(s\) recalculated .*; speed equalled batch in every column/);
      const report = first.out.split(/\r?\n/).filter((l) => /^\d{4}-\d{2}-\d{2}\s+\w+\s/.test(l));
      assert.equal(report.length, 3 * 7, 'a line per day and column');
      assert.ok(
        report.every((l) => / 0$/.test(l.trim())),
        `speed - batch after is 0 everywhere:\n${report.join('\n')}`,
      );
      for (let d = 0; d < 3; d++) {
        const rows = await minuteRows(url, iso(start + d * DAY), iso(start + (d + 1) * DAY));
        assert.ok(rows.every((r) => r.source === 'batch' && r.final === true));
        assert.deepEqual(strip(rows), oracleDay(expected, start + d * DAY));
      }
      // Again: every day runs once more, and the report shows the batch before.
      const second = await reckonAsync(['recalc', ...window], env);
      assert.equal(second.status, 0, second.stderr);
      assert.match(second.stdout, /\(3 cleared\)/);
      assert.match(second.stderr, /recalc days: 100% \(3\/3\)/, 'progress without a terminal: a line per quarter');
      const emissionsLine = second.stdout.split('\n').find((l) => l.startsWith(`${iso(start)}  emissions`)) ?? '';
      const n = String(oracleDay(expected, start).reduce((s, r) => s + r.emissions, 0));
      assert.deepEqual(emissionsLine.trim().split(/\s+/).slice(2), [n, n, n, '0'], emissionsLine);
    } catch (e) {
      throw new Error(
        `${e instanceof Error ? e.message : String(e)}\nserver stderr:\n${server.stderr().slice(-4000)}`,
        {
          cause: e,
        },
      );
    } finally {
      server.child.kill('SIGKILL');
    }
    // The lake keeps 4 days now: the first day's events are gone, its recalculation fails, the rest succeed.
    const failing = await reckonAsync(['recalc', '--from', iso(start), '--to', iso(start + 2 * DAY), '--data', data], {
      ...env,
      RECKON_LAKE_RETENTION_DAYS: '4',
    });
    assert.equal(failing.status, 1, `${failing.stdout}\n${failing.stderr}`);
    assert.match(failing.stdout, /2 of 3 day\(s\) recalculated/);
    assert.match(
      failing.stdout,
      new RegExp(`failed: ${iso(start)}: wait-for-hours failed: sensor cannot be satisfied: the lake keeps 4 days`),
    );
    assert.match(failing.stdout, new RegExp(`${iso(start)}\\s+emissions\\s+\\d+\\s+\\d+\\s+FAILED`));
  });
});
