import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openEmbeddedLog } from '../../src/log/index.ts';
import { DEFAULT_SIMULATION, expectedStatistics, NO_FAULTS, simulate } from '../../src/sim/index.ts';
import { lakeRowCount } from '../support/lake.ts';
import { waitFor } from '../support/wait.ts';

import { CLI, cleanEnv, reckon, reckonAsync, ROOT, simulatorRulesEnv, waitForLine } from '../support/cli.ts';

describe('reckon command line', () => {
  it('runs as the installed `reckon` bin and prints help', () => {
    assert.ok(existsSync(join(ROOT, 'dist/cli/main.js')), 'dist/ is built by `npm install` (prepare)');
    const r = spawnSync(process.execPath, [join(ROOT, 'bin/reckon.js'), '--help'], {
      encoding: 'utf8',
      env: cleanEnv,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Usage: reckon/);
    assert.match(r.stdout, /simulate/);
    assert.match(r.stdout, /start/);
  });

  it('simulates the same seed to identical files, with progress on stderr', () => {
    const dir = mkdtempSync(join(tmpdir(), 'reckon-sim-'));
    const run = (n: number) => {
      const r = reckon([
        'simulate',
        '--seed',
        '7',
        '--emissions',
        '3000',
        '--out',
        join(dir, `e${n}.ndjson`),
        '--expected',
        join(dir, `x${n}.json`),
      ]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, /generate: 100%/);
      assert.match(r.stdout, /wrote \d+ lines .* minute, \d+ hour, \d+ day rows/);
    };
    run(1);
    run(2);
    assert.deepEqual(readFileSync(join(dir, 'e1.ndjson')), readFileSync(join(dir, 'e2.ndjson')));
    assert.deepEqual(readFileSync(join(dir, 'x1.json')), readFileSync(join(dir, 'x2.json')));
    const expected = JSON.parse(readFileSync(join(dir, 'x1.json'), 'utf8')) as {
      seed: number;
      day: unknown[];
      counts: { lines: number };
    };
    assert.equal(expected.seed, 7);
    assert.ok(expected.day.length > 0);
    assert.equal(readFileSync(join(dir, 'e1.ndjson'), 'utf8').trimEnd().split('\n').length, expected.counts.lines);
  });

  it('rejects bad simulate flags with the flag named', () => {
    const r = reckon(['simulate', '--out', '/tmp/never.ndjson', '--fault', 'meteor=0.1']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--fault "meteor=0.1": unknown fault "meteor"/);
    const s = reckon(['simulate', '--out', '/tmp/never.ndjson', '--start', 'monday']);
    assert.match(s.stderr, /--start: expected an RFC 3339 timestamp/);
  });

  it('ingests an NDJSON file into a running reckon, naming each rejected line by its line in the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reckon-ingest-'));
    const child = spawn(process.execPath, [...CLI, 'start', '--port', '0', '--data', join(dir, 'data')], {
      cwd: dir,
      env: cleanEnv,
    });
    try {
      const url = (await waitForLine(child, /http:\/\/127\.0\.0\.1:\d+/)).trim();
      const emission = (id: string) =>
        JSON.stringify({
          type: 'emission',
          id,
          ts: '2026-11-21T10:00:00Z',
          placement: 'p',
          offers: [{ offerId: 'o', clickCost: '1' }],
        });
      const lines = Array.from({ length: 25 }, (_, i) => emission(`em-${i}`));
      lines[12] = '{"type":"emission"}';
      lines[21] = 'not json';
      writeFileSync(join(dir, 'events.ndjson'), `${lines.join('\n')}\n`);
      const r = await reckonAsync(['ingest', join(dir, 'events.ndjson'), '--url', url, '--batch', '10']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^line 13: id: is required/m);
      assert.match(r.stdout, /^line 22: \$: not valid JSON/m);
      assert.match(r.stdout, /25 lines: 23 events accepted, 2 rejected/);
      assert.match(r.stderr, /ingest: 100%/);
      // The speed layer, a supervised process of its own, makes them visible in /v1/stats.
      await waitFor(
        'the ingested emissions in /v1/stats',
        async () => {
          const res = await fetch(`${url}/v1/stats?from=2026-11-21&to=2026-11-22&granularity=day`);
          const body = (await res.json()) as { rows: { emissions: number; source: string }[] };
          return body.rows.reduce((n, row) => n + row.emissions, 0) === 23 && body.rows[0]?.source === 'speed';
        },
        20_000,
        100,
      );
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('runs the embedded path end to end: ingest with every fault, archiver to the lake, reckon batch, exact batch rows in /v1/stats and discrepancies', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reckon-e2e-'));
    const data = join(dir, 'data');
    const options = { ...DEFAULT_SIMULATION, seed: 31, emissions: 3_000 };
    const sim = simulate(options);
    const expected = expectedStatistics(sim.events, options.rules);
    writeFileSync(join(dir, 'events.ndjson'), `${sim.lines.join('\n')}\n`);
    // No scheduled runs: an hourly recalculation of today finishing after `reckon batch` would
    // be the latest reconciled interval on /metrics.
    const env = { ...simulatorRulesEnv(options.rules), RECKON_SCHEDULER_START_DATE: '2099-01-01' };
    const child = spawn(process.execPath, [...CLI, 'start', '--port', '0', '--data', data], { cwd: dir, env });
    try {
      const url = (await waitForLine(child, /http:\/\/127\.0\.0\.1:\d+/)).trim();
      const ingest = await reckonAsync(['ingest', join(dir, 'events.ndjson'), '--url', url, '--batch', '500']);
      assert.equal(ingest.status, 0, ingest.stderr);
      const accepted = Number(/(\d+) events accepted/.exec(ingest.stdout)?.[1]);
      assert.equal(accepted, sim.lines.length - sim.counts.malformed);
      // The archiver (a supervised process) lands every accepted event in the lake.
      const lake = join(data, 'lake');
      await waitFor(
        'every accepted event in the lake',
        async () => (await lakeRowCount(lake, ['emissions', 'clicks'])) === accepted,
        60_000,
        200,
      );
      const batch = await reckonAsync(['batch', '--interval', '2026-11-21', '--data', data], env);
      assert.equal(batch.status, 0, batch.stderr);
      assert.match(batch.stdout, /minute rows written/);
      const get = async (path: string) => (await fetch(`${url}${path}`)).json() as Promise<Record<string, unknown>>;
      const rows: Record<string, unknown>[] = [];
      let cursor: string | undefined;
      do {
        const page = await get(
          `/v1/stats?from=2026-11-21&to=2026-11-22&granularity=minute&limit=10000${cursor === undefined ? '' : `&cursor=${encodeURIComponent(cursor)}`}`,
        );
        rows.push(...(page.rows as Record<string, unknown>[]));
        cursor = page.nextCursor as string | undefined;
      } while (cursor !== undefined);
      assert.ok(rows.every((r) => r.source === 'batch' && r.final === true));
      const dayEnd = options.start + 86_400_000;
      assert.deepEqual(
        rows.map(({ source: _s, final: _f, ...r }) => r),
        expected.minute.filter((r) => Date.parse(r.bucket) < dayEnd),
      );
      const discrepancies = await get('/v1/discrepancies?from=2026-11-21&to=2026-11-22');
      const [interval] = discrepancies.intervals as { from: string; columns: Record<string, { batch: unknown }> }[];
      assert.equal(interval?.from, '2026-11-21T00:00:00.000Z');
      const exactClicks = expected.day
        .filter((r) => Date.parse(r.bucket) === options.start)
        .reduce((n, r) => n + r.clicks, 0);
      assert.equal(interval?.columns.clicks?.batch, exactClicks);
      // The same reconciliation on /metrics.
      const metrics = await (await fetch(`${url}/metrics`)).text();
      assert.match(metrics, new RegExp(`^reckon_reconciliation_batch\\{column="clicks"\\} ${exactClicks}$`, 'm'));
      assert.match(metrics, new RegExp(`^reckon_reconciliation_interval_start_seconds ${options.start / 1000}$`, 'm'));
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('starts the HTTP server with its worker processes, answers /healthz, and stops on SIGTERM', async () => {
    const child = spawn(process.execPath, [...CLI, 'start', '--port', '0'], {
      cwd: mkdtempSync(join(tmpdir(), 'reckon-start-')),
      env: cleanEnv,
    });
    try {
      const url = (await waitForLine(child, /http:\/\/127\.0\.0\.1:\d+/)).trim();
      const res = await fetch(`${url}/healthz`);
      assert.equal(res.status, 200);
      const body = (await res.json()) as { status: string; notBuiltYet: string[] };
      assert.equal(body.status, 'ok');
      assert.deepEqual(body.notBuiltYet, [], 'every part is built');
      // The collector first on busy cores: the speed layer at a lower priority, the archiver lower still.
      const priorities = () => {
        const out = spawnSync('ps', ['--ppid', String(child.pid), '-o', 'ni=,args=']).stdout.toString();
        const of = (verb: string) =>
          / *(-?\d+) .*main\.ts (\w+)/.exec(out.split('\n').find((l) => l.includes(`main.ts ${verb}`)) ?? '')?.[1];
        return { speed: of('speed'), archiver: of('archiver'), scheduler: of('scheduler') };
      };
      await waitFor('speed layer, archiver and scheduler processes', () => {
        const p = priorities();
        return p.speed !== undefined && p.archiver !== undefined && p.scheduler !== undefined;
      });
      assert.deepEqual(priorities(), { speed: '5', archiver: '15', scheduler: '0' });
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('runs the collector alone with `reckon collector`: events are durable in the log, no speed layer or archiver is started', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'reckon-collector-'));
    const child = spawn(process.execPath, [...CLI, 'collector', '--port', '0', '--data', 'data'], {
      cwd,
      env: cleanEnv,
    });
    try {
      const url = (await waitForLine(child, /http:\/\/127\.0\.0\.1:\d+/)).trim();
      const { lines } = simulate({ ...DEFAULT_SIMULATION, seed: 9, emissions: 50, faults: NO_FAULTS });
      const res = await fetch(`${url}/v1/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-ndjson' },
        body: lines.join('\n'),
      });
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as { accepted: number }).accepted, lines.length);
      const children = spawnSync('ps', ['--ppid', String(child.pid), '-o', 'args=']).stdout.toString();
      assert.doesNotMatch(children, /main\.ts (speed|archiver)/, 'no supervised speed layer or archiver');
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
      // The events are in the log a speed layer elsewhere would read.
      const log = await openEmbeddedLog({ dir: join(cwd, 'data', 'log'), retentionIntervalMs: 0 });
      try {
        let total = 0;
        for (const topic of ['emissions', 'clicks']) {
          const partitions = await log.partitionCount(topic);
          for (let p = 0; p < partitions; p++) total += await log.latestOffset(topic, p);
        }
        assert.equal(total, lines.length);
      } finally {
        await log.close();
      }
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('ends a speed layer or archiver that cannot start (no log writer running) with its error, so that its supervisor restarts it', async () => {
    const data = mkdtempSync(join(tmpdir(), 'reckon-nowriter-'));
    // A log directory whose writer (the collector) is down: the readers cannot create their topics.
    await (await openEmbeddedLog({ dir: join(data, 'log'), retentionIntervalMs: 0 })).close();
    for (const verb of ['speed', 'archiver']) {
      const child = spawn(process.execPath, [...CLI, verb, '--data', data], { cwd: ROOT, env: cleanEnv });
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      // Its threads (the store's writer, the Parquet thread) must not keep a failed part alive.
      const hung = setTimeout(() => child.kill('SIGKILL'), 45_000);
      const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
        child.once('exit', (c, s) => resolve([c, s])),
      );
      clearTimeout(hung);
      assert.equal(signal, null, `reckon ${verb} was still running 45 s after failing to start: ${stderr}`);
      assert.equal(code, 2, stderr);
      assert.match(stderr, /cannot forward to the log writer of .*must be running/);
    }
  });

  it('refuses a non-loopback address without tokens and explains why', () => {
    const r = reckon(['start', '--host', '0.0.0.0', '--port', '0']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /refusing to listen on 0\.0\.0\.0: without tokens/);
  });

  it('reports configuration errors naming the key, value and expected form', () => {
    const r = reckon(['config'], { RECKON_CLICK_WINDOW: 'forever' });
    assert.equal(r.status, 2);
    assert.match(
      r.stderr,
      /clickWindowMs: "forever" from environment RECKON_CLICK_WINDOW is invalid: expected a duration/,
    );
    const ok = reckon(['config', '--port', '9999']);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /port\s+9999\s+flag/);
  });
});
