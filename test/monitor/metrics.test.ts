import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { RateSampler } from '../../src/monitor/index.ts';
import { DEFAULT_SIMULATION, simulate } from '../../src/sim/index.ts';
import { CLI, reckonAsync, simulatorRulesEnv, waitForLine } from '../support/cli.ts';
import { waitFor } from '../support/wait.ts';

/** The value of one sample line of the Prometheus text, or undefined. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('monitor', () => {
  it('rates over the last ten seconds from sampled totals', async () => {
    let n = 0;
    const sampler = new RateSampler(async () => ({ events: n }));
    await sampler.sample(0);
    n = 500;
    await sampler.sample(5000);
    assert.deepEqual(sampler.rates(), { events: 100 });
    n = 600;
    await sampler.sample(20_000);
    assert.deepEqual(sampler.rates(), { events: 100 / 15 }, 'samples older than the window are dropped');
  });

  it('exports every part on /metrics in a form promtool accepts: log ends, lag and positions of both consumers, dead letters, workers, scheduler', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reckon-metrics-'));
    const options = { ...DEFAULT_SIMULATION, seed: 12, emissions: 1_500, start: Date.UTC(2026, 10, 1) };
    const sim = simulate(options);
    writeFileSync(join(dir, 'events.ndjson'), `${sim.lines.join('\n')}\n`);
    const env = { ...simulatorRulesEnv(options.rules), RECKON_SCHEDULER_START_DATE: '2030-01-01' };
    const child = spawn(process.execPath, [...CLI, 'start', '--port', '0', '--data', join(dir, 'data')], {
      cwd: dir,
      env,
    });
    try {
      const url = (await waitForLine(child, /http:\/\/127\.0\.0\.1:\d+/)).trim();
      const ingest = await reckonAsync(['ingest', join(dir, 'events.ndjson'), '--url', url]);
      assert.equal(ingest.status, 0, ingest.stderr);
      const accepted = sim.lines.length - sim.counts.malformed;
      let text = '';
      const lagOf = (group: string) =>
        text
          .split('\n')
          .filter((l) => l.startsWith(`reckon_consumer_lag_records{group="${group}"`))
          .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
      await waitFor(
        'both consumers caught up and every worker up',
        async () => {
          text = await (await fetch(`${url}/metrics`)).text();
          return (
            text.includes('reckon_consumer_lag_records{group="speed"') &&
            lagOf('speed') === 0 &&
            lagOf('archiver') === 0 &&
            ['speed', 'archiver', 'scheduler'].every((p) => sample(text, 'reckon_worker_up', `{part="${p}"}`) === 1)
          );
        },
        60_000,
        250,
      );
      const ends = text
        .split('\n')
        .filter((l) => l.startsWith('reckon_log_end_offset{'))
        .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
      assert.equal(ends, accepted, 'log ends count every accepted event');
      assert.equal(sample(text, 'reckon_dead_letter_records', '{group="collector"}'), sim.counts.malformed);
      assert.equal(sample(text, 'reckon_dead_letter_records', '{group="speed"}'), 0);
      for (const name of [
        'reckon_collector_events_rejected_total',
        'reckon_consumer_committed_offset',
        'reckon_lake_sealed_until_seconds',
        'reckon_archiver_compactions_total',
        'reckon_speed_joiner_emissions',
        'reckon_speed_last_flush_age_seconds',
        'reckon_worker_queued_bytes',
        'reckon_worker_in_flight_records',
        'reckon_dag_runs',
      ]) {
        assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), `${name} is exported`);
      }
      const promtool = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      assert.equal(
        promtool.error,
        undefined,
        'promtool runs (Debian: apt-get install prometheus; .ci/run installs it)',
      );
      assert.equal(promtool.status, 0, `${promtool.stdout}${promtool.stderr}`);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
