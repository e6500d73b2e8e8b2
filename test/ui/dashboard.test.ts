/**
 * The dashboard in headless Chromium against a real `reckon start` fed a simulated day: every
 * page loads without console errors or failed requests, shows the data the API holds, and draws
 * its charts; a 401 asks for the admin token once; a dead letter is replayed from the page and
 * lands in the lake.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { loadConfig } from '../../src/config/index.ts';
import { avroType, CLICK_SCHEMA, frameConfluent } from '../../src/events/index.ts';
import { openLog } from '../../src/cli/process.ts';
import { DEFAULT_SIMULATION, expectedStatistics, simulate } from '../../src/sim/index.ts';
import { CLI, reckonAsync, simulatorRulesEnv, waitForLine } from '../support/cli.ts';
import { lakeRowCount } from '../support/lake.ts';
import { waitFor } from '../support/wait.ts';

const CHROMIUM = '/usr/bin/chromium';
const ADMIN = 'dashboard-test-admin-token-0123456789';
const DAY = 86_400_000;
const HOUR = 3_600_000;
/** Colours of the charts' series (src/ui/assets/charts.js). */
const SPEED_BLUE = '#1f6fd1';
const BATCH_ORANGE = '#e8710a';
const PALETTE = ['#1f6fd1', '#e8710a', '#2e9e44', '#9334e6', '#d01884', '#12a4af', '#795548', '#5f6368'];
const START = Date.UTC(2026, 10, 1);

type Json = Record<string, unknown>;

/** How many pixels of a chart's canvas have `hex`'s colour (the series' line and points). */
async function seriesPixels(page: Page, testid: string, hex: string): Promise<number> {
  const rgb = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  interface Canvas {
    width: number;
    height: number;
    getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } };
  }
  return page.locator(`[data-testid="${testid}"] canvas`).evaluate((canvas: Canvas, [r, g, b]) => {
    if (canvas.width === 0 || canvas.height === 0) return 0;
    const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
    let n = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (
        (data[i + 3] as number) > 200 &&
        Math.abs((data[i] as number) - (r as number)) < 16 &&
        Math.abs((data[i + 1] as number) - (g as number)) < 16 &&
        Math.abs((data[i + 2] as number) - (b as number)) < 16
      )
        n++;
    }
    return n;
  }, rgb);
}

/** Rows of one kind of Parquet file in the lake whose id is `id` (-1 before the lake has any). */
function lakeRows(lake: string, kind: 'clicks' | 'emissions', id?: string): Promise<number> {
  return lakeRowCount(lake, [kind], id === undefined ? '' : `WHERE id = '${id}'`);
}

describe('dashboard (headless Chromium)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'reckon-ui-'));
  const data = join(dir, 'data');
  const lake = join(data, 'lake');
  const options = { ...DEFAULT_SIMULATION, seed: 41, emissions: 2_000, start: START, durationMs: DAY };
  const sim = simulate(options);
  const expected = expectedStatistics(sim.events, options.rules);
  const env = {
    ...simulatorRulesEnv(options.rules),
    // No scheduled runs of the simulated day: the backfill makes them.
    RECKON_SCHEDULER_START_DATE: '2030-01-01',
    RECKON_SCHEDULER_POKE_INTERVAL: '500ms',
    // Reads stay open (loopback); the scheduler's API and replay need this token.
    RECKON_ADMIN_TOKEN: ADMIN,
  };
  let child: ChildProcess | undefined;
  let stderr = '';
  let url = '';
  let accepted = 0;
  let browser: Browser | undefined;
  let page: Page;
  /** Console errors and failed or refused requests of the page, since the last check. */
  let problems: string[] = [];
  /** While true, 401 answers (and Chromium's console line about them) are expected. */
  let expecting401 = false;
  const seen401: string[] = [];

  const admin = { authorization: `Bearer ${ADMIN}` };
  const api = async (path: string, init: RequestInit = {}): Promise<Json> => {
    const r = await fetch(`${url}${path}`, init);
    assert.equal(r.status, 200, `${path}: ${r.status} ${await r.clone().text()}`);
    return (await r.json()) as Json;
  };

  /** Opens a page of the dashboard and waits for its first successful refresh. */
  async function open(route: string): Promise<void> {
    await page.goto(`${url}/ui/#/${route}`);
    await page.waitForSelector(`main[data-page="${route}"][data-loaded="true"]`, { timeout: 15_000 });
  }

  /** Waits until the page has refreshed `n` more times (auto-refresh picks up new data). */
  async function refreshes(n = 1): Promise<void> {
    const now = Number(await page.getAttribute('main', 'data-refreshes'));
    await waitFor(
      `${n} more refreshes`,
      async () => Number(await page.getAttribute('main', 'data-refreshes')) >= now + n,
      15_000,
      100,
    );
  }

  function assertNoProblems(): void {
    const found = problems;
    problems = [];
    assert.deepEqual(found, [], 'no console errors, page errors or failed requests');
  }

  /** On failure: the server's last words, for the log. */
  const explain = (e: unknown): never => {
    throw new Error(`${e instanceof Error ? e.message : String(e)}\nserver stderr:\n${stderr.slice(-3000)}`, {
      cause: e,
    });
  };

  before(
    async () => {
      try {
        await setUp();
      } catch (e) {
        explain(e);
      }
    },
    { timeout: 180_000 },
  );

  /** Starts reckon on a simulated day, recalculates the day, and opens the browser. */
  async function setUp(): Promise<void> {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (.ci/run installs it)`);
    writeFileSync(join(dir, 'events.ndjson'), `${sim.lines.join('\n')}\n`);
    child = spawn(process.execPath, [...CLI, 'start', '--port', '0', '--data', data], { cwd: dir, env });
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    url = (await waitForLine(child, /http:\/\/127\.0\.0\.1:\d+/)).trim();
    const ingest = await reckonAsync(['ingest', join(dir, 'events.ndjson'), '--url', url, '--batch', '500']);
    assert.equal(ingest.status, 0, ingest.stderr);
    accepted = Number(/(\d+) events accepted/.exec(ingest.stdout)?.[1]);
    await waitFor(
      'speed rows in /v1/stats',
      async () => ((await api('/v1/stats?from=2026-11-01&to=2026-11-03&limit=1')).rows as unknown[]).length > 0,
      30_000,
      200,
    );
    await waitFor(
      'every accepted event in the lake',
      async () => (await lakeRows(lake, 'emissions')) + (await lakeRows(lake, 'clicks')) === accepted,
      60_000,
      250,
    );
    const backfill = await reckonAsync(
      ['dags', 'backfill', 'recalculate-daily', '--from', '2026-11-01', '--to', '2026-11-01', '--data', data],
      env,
    );
    assert.equal(backfill.status, 0, `${backfill.stdout}\n${backfill.stderr}`);
    // The daily recalculation waits on the lake, not on hourly runs: the hours are backfilled on their own.
    assert.match(backfill.stdout, /1 of 1 runs succeeded/);
    const hours = await reckonAsync(
      ['dags', 'backfill', 'recalculate-hourly', '--from', '2026-11-01', '--to', '2026-11-01', '--data', data],
      env,
    );
    assert.equal(hours.status, 0, `${hours.stdout}\n${hours.stderr}`);
    assert.match(hours.stdout, /24 of 24 runs succeeded/);

    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      if (expecting401 && /status of 401/.test(m.text())) return;
      problems.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
    page.on('response', (r) => {
      if (r.status() === 401 && expecting401) seen401.push(new URL(r.url()).pathname);
      else if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`);
    });
  }

  after(async () => {
    await browser?.close();
    if (child !== undefined && child.exitCode === null) {
      const exited = new Promise((resolve) => child?.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
    // Its workers notice the orphaning within a moment and may still write: best effort.
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // left in the temp directory
    }
  });

  it('serves / as a redirect to /ui/, the page and uPlot from node_modules, with a CSP and no CDN', async () => {
    const root = await fetch(`${url}/`, { redirect: 'manual' });
    assert.equal(root.status, 302);
    assert.equal(root.headers.get('location'), '/ui/');
    const html = await fetch(`${url}/ui/`);
    assert.equal(html.status, 200);
    assert.match(html.headers.get('content-type') ?? '', /text\/html/);
    assert.match(html.headers.get('content-security-policy') ?? '', /default-src 'self'/);
    const text = await html.text();
    assert.doesNotMatch(text, /https?:\/\//, 'nothing loaded from another origin');
    const uplot = await fetch(`${url}/ui/vendor/uPlot.iife.min.js`);
    assert.equal(uplot.status, 200);
    assert.match(await uplot.text(), /uPlot/);
    assert.equal((await fetch(`${url}/ui/vendor/../../package.json`)).status, 404);
    assert.equal((await fetch(`${url}/ui/nope.js`)).status, 404);
  });

  it('asks once for the admin token on a 401, keeps it in sessionStorage, and shows the DAG runs: grid, Gantt chart, duration trend', async () => {
    try {
      expecting401 = true;
      await page.goto(`${url}/ui/#/dags`);
      const dialog = page.getByTestId('token-dialog');
      await dialog.waitFor({ state: 'visible', timeout: 15_000 });
      assert.match(await page.locator('#token-reason').innerText(), /admin token/);
      await page.getByTestId('token-input').fill(ADMIN);
      await page.getByTestId('token-submit').click();
      await page.waitForSelector('main[data-page="dags"][data-loaded="true"]', { timeout: 15_000 });
      expecting401 = false;
      assert.deepEqual([...new Set(seen401)], ['/v1/dags'], 'one request was refused, then repeated with the token');
      assert.equal(await page.evaluate("sessionStorage.getItem('reckon.token')"), ADMIN);
      assert.equal(await dialog.isVisible(), false);

      const { dags } = (await api('/v1/dags', { headers: admin })) as { dags: { dag_id: string; tasks: unknown[] }[] };
      const hourly = dags.find((d) => d.dag_id === 'recalculate-hourly') as { tasks: { task_id: string }[] };
      const grid = page.getByTestId('dag-grid-recalculate-hourly');
      await grid.waitFor();
      // 24 hourly runs of the backfill, every task instance a success.
      assert.equal(await grid.getAttribute('data-runs'), '24');
      const cells = grid.getByTestId('ti-cell');
      assert.equal(await cells.count(), 24 * hourly.tasks.length);
      const states = await cells.evaluateAll((els: { dataset: { state?: string } }[]) =>
        els.map((e) => e.dataset.state),
      );
      assert.deepEqual([...new Set(states)], ['success']);
      assert.equal(await page.getByTestId('dag-grid-recalculate-daily').getAttribute('data-runs'), '1');

      // The Gantt chart shows the latest run's tries; a click on the first run shows that one's.
      const gantt = page.getByTestId('gantt-recalculate-hourly');
      const tries = (await api('/v1/dags/recalculate-hourly/taskTries?limit=1000', { headers: admin })) as {
        task_tries: { logical_date: string }[];
      };
      const triesOf = (iso: string) => tries.task_tries.filter((t) => t.logical_date === iso).length;
      assert.equal(Number(await gantt.getAttribute('data-bars')), triesOf('2026-11-01T23:00:00.000Z'));
      assert.ok(triesOf('2026-11-01T23:00:00.000Z') >= hourly.tasks.length);
      await grid.getByTestId('run-head').first().locator('button').click();
      await page
        .getByTestId('dag-recalculate-hourly')
        .getByText('backfill__2026-11-01T00:00:00.000Z')
        .waitFor({ timeout: 5000 });
      assert.equal(
        Number(await page.getByTestId('gantt-recalculate-hourly').getAttribute('data-bars')),
        triesOf('2026-11-01T00:00:00.000Z'),
      );
      assert.equal(
        await page.getByTestId('gantt-recalculate-hourly').getByTestId('gantt-bar').count(),
        triesOf('2026-11-01T00:00:00.000Z'),
      );

      // The duration trend: one point per logical date, drawn.
      const trend = page.getByTestId('chart-duration-recalculate-hourly');
      assert.equal(await trend.getAttribute('data-points'), '24');
      assert.ok((await seriesPixels(page, 'chart-duration-recalculate-hourly', SPEED_BLUE)) > 20, 'first task drawn');
      assert.ok(
        (await seriesPixels(page, 'chart-duration-recalculate-hourly', BATCH_ORANGE)) > 20,
        'second task drawn',
      );
      await page.screenshot({ path: '/tmp/ui-dags.png', fullPage: true });
      assertNoProblems();
    } catch (e) {
      explain(e);
    }
  });

  it('statistics explorer: defaults to the last day with data; speed and batch per column, differing buckets shaded and listed', async () => {
    try {
      await open('explorer');
      // The last hour with data ends the window; it starts at the beginning of the day before.
      const lastHour = Math.max(...expected.hour.map((r) => Date.parse(r.bucket)));
      const to = lastHour + HOUR;
      const from = Math.floor((to - DAY) / DAY) * DAY;
      assert.equal(await page.getByTestId('explorer-from').inputValue(), new Date(from).toISOString().slice(0, 16));
      assert.equal(await page.getByTestId('explorer-to').inputValue(), new Date(to).toISOString().slice(0, 16));
      const series = (await api(
        `/v1/stats/series?from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}&granularity=hour`,
      )) as { buckets: { bucket: string; speed: Json; batch: Json | null }[] };
      const hours = new Set(expected.hour.map((r) => r.bucket).filter((b) => Date.parse(b) >= from));
      assert.equal(series.buckets.length, hours.size);
      assert.equal(await page.getByTestId('explorer-summary').getAttribute('data-buckets'), String(hours.size));
      const differs = (column: string) =>
        series.buckets.filter((b) => b.batch !== null && String(b.speed[column]) !== String(b.batch[column]));
      for (const column of ['emissions', 'clicks', 'clickCost']) {
        const chart = page.getByTestId(`chart-${column}`);
        assert.equal(await chart.getAttribute('data-points'), String(hours.size), column);
        assert.equal(await chart.getAttribute('data-highlighted'), String(differs(column).length), column);
        assert.ok((await seriesPixels(page, `chart-${column}`, SPEED_BLUE)) > 50, `${column}: speed drawn`);
        assert.ok((await seriesPixels(page, `chart-${column}`, BATCH_ORANGE)) > 50, `${column}: batch drawn`);
      }
      // The simulated faults make the speed layer miss some fraud: some buckets differ.
      const pairs = ['emissions', 'clicks', 'clickCost'].reduce((n, c) => n + differs(c).length, 0);
      assert.ok(pairs > 0, 'faults make speed and batch differ somewhere');
      assert.equal(await page.getByTestId('diff-row').count(), pairs);
      await page.screenshot({ path: '/tmp/ui-explorer.png', fullPage: true });

      // Day granularity: two buckets (the day and the spill past midnight).
      await page.getByTestId('explorer-granularity').selectOption('day');
      const days = new Set(expected.day.map((r) => r.bucket).filter((b) => Date.parse(b) >= from)).size;
      assert.equal(days, 2);
      await waitFor(
        'the charts by day',
        async () => (await page.getByTestId('chart-clicks').getAttribute('data-points')) === String(days),
        10_000,
        100,
      );
      assertNoProblems();
    } catch (e) {
      explain(e);
    }
  });

  it('discrepancies: one row per recalculated interval, deviating cells marked as the API says', async () => {
    try {
      await open('discrepancies');
      const lastDay = Math.max(...expected.day.map((r) => Date.parse(r.bucket)));
      const answer = (await api(
        `/v1/discrepancies?from=${new Date(lastDay - 6 * DAY).toISOString()}&to=${new Date(lastDay + DAY).toISOString()}`,
      )) as { intervals: { columns: Record<string, { absolute: number | string }> }[] };
      assert.equal(answer.intervals.length, 25, '24 hours and the day');
      assert.equal(await page.getByTestId('discrepancy-row').count(), 25);
      const deviating = answer.intervals.flatMap((i) =>
        Object.values(i.columns).filter((c) => c.absolute !== 0 && c.absolute !== '0'),
      ).length;
      assert.ok(deviating > 0);
      assert.equal(await page.getByTestId('deviating-cell').count(), deviating);
      await page.getByTestId('discrepancies-only').check();
      const deviatingIntervals = answer.intervals.filter((i) =>
        Object.values(i.columns).some((c) => c.absolute !== 0 && c.absolute !== '0'),
      ).length;
      await waitFor(
        'only the deviating intervals',
        async () => (await page.getByTestId('discrepancy-row').count()) === deviatingIntervals,
        10_000,
        100,
      );
      await page.screenshot({ path: '/tmp/ui-discrepancies.png', fullPage: true });
      assertNoProblems();
    } catch (e) {
      explain(e);
    }
  });

  it('alerts: every alert of the API in the table, with kind, message and delivery state', async () => {
    try {
      await open('alerts');
      const { alerts } = (await api('/v1/alerts', { headers: admin })) as { alerts: { kind: string }[] };
      assert.ok(alerts.length > 0, 'the discrepancy checks raised alerts');
      assert.equal(await page.getByTestId('alert-row').count(), alerts.length);
      assert.match(await page.getByTestId('alerts-table').innerText(), /discrepancy/);
      await page.screenshot({ path: '/tmp/ui-alerts.png', fullPage: true });
      assertNoProblems();
    } catch (e) {
      explain(e);
    }
  });

  it("overview: the pipeline flow with each part's health and figures, and a live chart of the rates", async () => {
    try {
      await open('overview');
      const overview = (await api('/v1/overview')) as {
        parts: { id: string; figures: Record<string, number> }[];
        edges: { from: string; to: string }[];
      };
      for (const id of ['collector', 'log', 'speed', 'archiver', 'scheduler', 'serving']) {
        const part = page.getByTestId(`part-${id}`);
        assert.match((await part.getAttribute('data-health')) ?? '', /^(ok|lagging|down|idle)$/, id);
      }
      for (const e of overview.edges) assert.equal(await page.getByTestId(`edge-${e.from}-${e.to}`).count(), 1);
      // Nothing has moved since the ingest: the log holds what was accepted, and the page says so.
      const records = overview.parts.find((p) => p.id === 'log')?.figures.records as number;
      assert.equal(records, accepted);
      assert.match(await page.getByTestId('part-card-log').innerText(), new RegExp(records.toLocaleString('en-US')));
      await refreshes(2);
      const chart = page.getByTestId('chart-rates');
      assert.ok(Number(await chart.getAttribute('data-points')) >= 2, 'a sample per refresh');
      // Live traffic (events of now: the simulated day's pages are checked already) shows as a rate.
      let sent = 0;
      await waitFor(
        'a rate above 0 on the live chart',
        async () => {
          const events = Array.from({ length: 20 }, () => ({
            type: 'emission',
            id: `live-${sent++}`,
            ts: new Date().toISOString(),
            placement: 'live',
            offers: [{ offerId: 'live-offer', clickCost: '0.10' }],
          }));
          const r = await fetch(`${url}/v1/events`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(events),
          });
          assert.equal(r.status, 200);
          return Number((await chart.getAttribute('data-max')) || 0) > 0;
        },
        20_000,
        300,
      );
      const drawn = await Promise.all(PALETTE.map((c) => seriesPixels(page, 'chart-rates', c)));
      assert.ok(
        drawn.reduce((a, b) => a + b, 0) > 50,
        `the rates are drawn (pixels per series colour: ${drawn.join(', ')})`,
      );
      await page.screenshot({ path: '/tmp/ui-overview.png', fullPage: true });
      assertNoProblems();
    } catch (e) {
      explain(e);
    }
  });

  it('dead letters: a click written with an unknown schema id is dead-lettered; after the schema is registered, Replay on the page lands it in the lake', async () => {
    try {
      // The id the registry hands out next: ids are sequential.
      let next = 1;
      while ((await fetch(`${url}/schemas/ids/${next}`)).status === 200) next++;
      const clickV2 = {
        ...CLICK_SCHEMA,
        fields: [...CLICK_SCHEMA.fields, { name: 'campaign', type: ['null', 'string'], default: null }],
      };
      const ts = Date.now(); // an hour not sealed: no late data, no reruns
      const value = frameConfluent(
        next,
        avroType(clickV2).toBuffer({
          id: 'dlq-click-1',
          ts,
          emissionId: 'dlq-emission',
          offerId: 'dlq-offer',
          userId: 'dlq-user',
          ip: '203.0.113.50',
          dc: null,
          campaign: 'spring-sale',
        }),
      );
      // A producer of our own: the log as a reader process appends through the writer.
      const log = await openLog({ ...loadConfig({ env: {}, cwd: dir }).config, dataDir: data }, 'reader');
      try {
        await log.append('clicks', [{ key: 'dlq-emission', value, timestamp: ts }]);
      } finally {
        await log.close();
      }
      const letter = await waitFor(
        'the archiver to dead-letter the click after its retries',
        async () => {
          const { deadLetters } = (await api('/v1/dead-letters?group=archiver')) as {
            deadLetters: { id: number; error: string; replayed: boolean }[];
          };
          return deadLetters[0];
        },
        30_000,
        250,
      );
      assert.match(letter.error, new RegExp(`schema.*${next}`));

      await open('dead-letters');
      const row = page.locator(`[data-testid="dlq-row"][data-group="archiver"][data-id="${letter.id}"]`);
      await row.waitFor({ timeout: 10_000 });
      assert.equal(await row.getAttribute('data-replayed'), 'false');
      assert.match(await row.innerText(), new RegExp(`clicks/\\d+@\\d+[\\s\\S]*schema[\\s\\S]*5`));
      const { groups } = (await api('/v1/dead-letters')) as { groups: unknown[] };
      assert.equal(await page.getByTestId('dlq-group-row').count(), groups.length);
      // The collector's rejected lines, each with its reason.
      assert.equal(await page.getByTestId('rejected-row').count(), sim.counts.malformed);
      await page.screenshot({ path: '/tmp/ui-dead-letters.png', fullPage: true });

      // Register the schema that has that id (BACKWARD compatible: one optional field), then replay.
      const registered = await api('/subjects/clicks-value/versions', {
        method: 'POST',
        headers: { ...admin, 'content-type': 'application/vnd.schemaregistry.v1+json' },
        body: JSON.stringify({ schema: JSON.stringify(clickV2) }),
      });
      assert.equal(registered.id, next);
      await page.getByTestId(`replay-archiver-${letter.id}`).click();
      await row.locator('[data-testid="replay-outcome"]').filter({ hasText: 'replayed:' }).waitFor({ timeout: 10_000 });
      await page.waitForSelector(
        `[data-testid="dlq-row"][data-group="archiver"][data-id="${letter.id}"][data-replayed="true"]`,
        { timeout: 10_000 },
      );
      assert.equal(
        await page.getByTestId(`replay-archiver-${letter.id}`).isDisabled(),
        true,
        'a replayed letter cannot be replayed twice',
      );
      await waitFor(
        'the replayed click in the lake',
        async () => (await lakeRows(lake, 'clicks', 'dlq-click-1')) === 1,
        30_000,
        250,
      );
      // The speed layer's own letter of the same record is still there, not replayed.
      const speed = page.locator('[data-testid="dlq-row"][data-group="speed"]');
      await speed.first().waitFor({ timeout: 10_000 });
      assert.equal(await speed.count(), 1);
      assert.equal(await speed.getAttribute('data-replayed'), 'false');
      await page.screenshot({ path: '/tmp/ui-dead-letters-replayed.png', fullPage: true });
      assertNoProblems();
    } catch (e) {
      explain(e);
    }
  });
});

describe('recalculation from the dashboard (headless Chromium)', () => {
  it(
    'recalculates a chosen past day from the DAGs page and shows its progress until done; the day is then served exact, source=batch, final=true',
    { timeout: 240_000 },
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'reckon-ui-recalc-'));
      const data = join(dir, 'data');
      const options = { ...DEFAULT_SIMULATION, seed: 31, emissions: 1_500 };
      const day = '2026-11-21';
      assert.equal(new Date(options.start).toISOString().slice(0, 10), day);
      const sim = simulate(options);
      const expected = expectedStatistics(sim.events, options.rules);
      const env = {
        ...simulatorRulesEnv(options.rules),
        // No scheduled runs: the only run is the one the page asks for.
        RECKON_SCHEDULER_START_DATE: '2099-01-01',
        RECKON_SCHEDULER_POKE_INTERVAL: '500ms',
      };
      writeFileSync(join(dir, 'events.ndjson'), `${sim.lines.join('\n')}\n`);
      const child = spawn(process.execPath, [...CLI, 'start', '--port', '0', '--data', data], { cwd: dir, env });
      let stderr = '';
      child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
      let browser: Browser | undefined;
      try {
        const url = (await waitForLine(child, /http:\/\/127\.0\.0\.1:\d+/)).trim();
        const ingest = await reckonAsync(['ingest', join(dir, 'events.ndjson'), '--url', url, '--batch', '500']);
        assert.equal(ingest.status, 0, ingest.stderr);
        assert.equal(Number(/(\d+) events accepted/.exec(ingest.stdout)?.[1]), sim.lines.length - sim.counts.malformed);

        browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox'] });
        const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
        const problems: string[] = [];
        let expecting400 = false;
        page.on('console', (m) => {
          if (m.type() !== 'error') return;
          if (expecting400 && /status of 400/.test(m.text())) return;
          problems.push(`console: ${m.text()}`);
        });
        page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
        page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
        page.on('response', (r) => {
          if (r.status() === 400 && expecting400) return;
          if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`);
        });
        /** When the page asked for the window's progress (ms since the epoch). */
        const asked: number[] = [];
        page.on('request', (r) => {
          if (r.method() === 'GET' && new URL(r.url()).pathname === '/v1/dags/recalculate-daily/recalculations')
            asked.push(Date.now());
        });

        await page.goto(`${url}/ui/#/dags`);
        await page.waitForSelector('main[data-page="dags"][data-loaded="true"]', { timeout: 15_000 });
        const yesterday = new Date(Date.now() - DAY).toISOString().slice(0, 10);
        assert.equal(await page.getByTestId('recalc-from').inputValue(), yesterday, 'from defaults to yesterday');
        assert.equal(await page.getByTestId('recalc-to').inputValue(), yesterday, 'to defaults to yesterday');
        assert.equal(asked.length, 0, 'no window chosen: no progress asked for');

        // A window the server refuses: its message next to the form, nothing started.
        expecting400 = true;
        await page.getByTestId('recalc-from').fill('2026-11-22');
        await page.getByTestId('recalc-to').fill(day);
        await page.getByTestId('recalc-submit').click();
        const error = page.getByTestId('recalc-error');
        await error.waitFor({ timeout: 10_000 });
        assert.match(await error.innerText(), /to: must not be before from/);
        assert.equal(await page.getByTestId('recalc-progress').count(), 0);
        expecting400 = false;

        // The simulated day, without waiting for the lake: the sensor waits for it.
        await page.getByTestId('recalc-from').fill(day);
        await page.getByTestId('recalc-to').fill(day);
        await page.getByTestId('recalc-submit').click();
        const outcome = page.getByTestId('recalc-outcome');
        await outcome.waitFor({ timeout: 10_000 });
        assert.match(await outcome.innerText(), /^1 day: 1 new/);
        assert.equal(await page.getByTestId('recalc-error').count(), 0, 'the earlier error is gone');
        assert.match(new URL(page.url()).hash, new RegExp(`recalcFrom=${day}&recalcTo=${day}`));

        const panel = page.getByTestId('recalc-progress');
        const row = panel.getByTestId('recalc-day');
        const seen = new Set<string>();
        const waiting = new Set<string>();
        let doneAt = 0;
        await waitFor(
          `the page to show ${day} recalculated`,
          async () => {
            if ((await panel.count()) === 0) return false;
            const state = await panel.evaluate(
              (el: {
                querySelector(s: string): { dataset: { state?: string } } | null;
                dataset: Record<string, string | undefined>;
              }) => ({
                done: el.dataset.done,
                total: el.dataset.total,
                failed: el.dataset.failed,
                day: el.querySelector('[data-testid="recalc-day"]')?.dataset.state,
              }),
            );
            if (state.day !== undefined) seen.add(state.day);
            for (const text of await panel.getByTestId('recalc-waiting').allInnerTexts()) waiting.add(text);
            assert.notEqual(state.day, 'failed', `the run failed: ${await panel.innerText()}`);
            if (state.done === '1' && state.total === '1' && state.day === 'success') {
              doneAt = Date.now();
              return true;
            }
            return false;
          },
          90_000,
          100,
        );
        assert.equal(await row.count(), 1);
        assert.equal(await row.getAttribute('data-day'), day);
        assert.equal(await panel.getAttribute('data-failed'), '0');
        assert.match(await panel.getByTestId('recalc-summary').innerText(), /^1 of 1 days? done/);
        assert.ok(seen.size >= 1, `states shown: ${[...seen].join(', ')}`);
        // A waiting sensor says what it waits for (when the page caught it waiting).
        for (const text of waiting)
          assert.match(text, /wait-for-hours waits for lake input: .+since \d{4}-\d{2}-\d{2} /);
        // While the day was not done, the page asked about every second (its own refresh is 5 s).
        const before = asked.filter((t) => t <= doneAt);
        const gaps = before.slice(1).map((t, i) => t - (before[i] as number));
        assert.ok(gaps.length >= 1, `asked ${before.length} times before the day was done`);
        assert.ok(Math.max(...gaps) < 2_500, `gaps between asks: ${gaps.join(', ')} ms`);
        await page.screenshot({ path: '/tmp/ui-recalc.png', fullPage: true });

        // The window lives in the URL: a reload shows the same progress.
        await page.reload();
        await page.waitForSelector('main[data-page="dags"][data-loaded="true"]', { timeout: 15_000 });
        await page.waitForSelector('[data-testid="recalc-progress"][data-done="1"][data-total="1"]', {
          timeout: 10_000,
        });
        assert.equal(await page.getByTestId('recalc-day').getAttribute('data-state'), 'success');
        assert.equal(await page.getByTestId('recalc-from').inputValue(), day);

        // Asked again, the ended run is cleared and reruns whole.
        await page.getByTestId('recalc-submit').click();
        await page.getByTestId('recalc-outcome').waitFor({ timeout: 10_000 });
        assert.match(await page.getByTestId('recalc-outcome').innerText(), /^1 day: 0 new, 1 cleared to rerun/);
        await page
          .locator(
            '[data-testid="recalc-progress"][data-done="1"][data-total="1"] [data-testid="recalc-day"][data-state="success"]',
          )
          .filter({ hasText: 'rerun 1×' })
          .waitFor({ timeout: 90_000 });
        assert.deepEqual(problems, [], 'no console errors, page errors or failed requests');

        // The day is served from the batch layer, final and exact.
        const rows: Record<string, unknown>[] = [];
        let cursor: string | undefined;
        do {
          const r = await fetch(
            `${url}/v1/stats?from=${day}&to=2026-11-22&granularity=minute&limit=10000${cursor === undefined ? '' : `&cursor=${encodeURIComponent(cursor)}`}`,
          );
          assert.equal(r.status, 200);
          const answer = (await r.json()) as { rows: Record<string, unknown>[]; nextCursor?: string };
          rows.push(...answer.rows);
          cursor = answer.nextCursor;
        } while (cursor !== undefined);
        assert.ok(rows.length > 0);
        assert.ok(
          rows.every((r) => r.source === 'batch' && r.final === true),
          'every minute of the day from the batch layer, final',
        );
        const dayEnd = options.start + DAY;
        assert.deepEqual(
          rows.map(({ source: _s, final: _f, ...r }) => r),
          expected.minute.filter((r) => Date.parse(r.bucket) < dayEnd),
        );
      } catch (e) {
        throw new Error(`${e instanceof Error ? e.message : String(e)}\nserver stderr:\n${stderr.slice(-3000)}`, {
          cause: e,
        });
      } finally {
        await browser?.close();
        if (child.exitCode === null) {
          const exited = new Promise((resolve) => child.once('exit', resolve));
          child.kill('SIGKILL');
          await exited;
        }
        try {
          rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
        } catch {
          // left in the temp directory
        }
      }
    },
  );
});
