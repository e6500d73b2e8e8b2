import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Fastify from 'fastify';
import { accessHook } from '../../src/collector/index.ts';
import { statsRoutes } from '../../src/serving/index.ts';
import { type MinuteStats, openSqliteStatsStore } from '../../src/stats/index.ts';

const T = Date.UTC(2026, 10, 21);
const row = (minute: number, offerId: string, clicks: number, cost: bigint): MinuteStats => ({
  bucketStart: T + minute * 60_000,
  offerId,
  placement: 'home',
  emissions: 1,
  clicks,
  clickCost: cost,
  duplicateClicks: 0,
  fraudClicks: 0,
  fraudCost: 0n,
  invalidClicks: 0,
});

async function app(tokens = {}) {
  const store = await openSqliteStatsStore(join(mkdtempSync(join(tmpdir(), 'reckon-serving-')), 'reckon.sqlite'));
  const server = Fastify({ logger: false });
  await server.register(statsRoutes, { store, readAccess: accessHook('read', tokens) });
  await server.ready();
  return { server, store };
}

describe('GET /v1/stats', () => {
  it('rolls minutes up to hours and days with decimal money, batch rows replacing speed rows where a run covers them', async () => {
    const { server, store } = await app();
    try {
      await store.applySpeedDeltas('speed', [row(0, 'of-1', 1, 350_000n), row(61, 'of-1', 2, 1_000_001n)], []);
      // A batch run for the first hour says the first minute had 3 clicks.
      await store.replaceBatchInterval(T, T + 3_600_000, [row(0, 'of-1', 3, 1_050_000n)], 'run-1');
      const get = async (q: string) => (await server.inject({ method: 'GET', url: `/v1/stats?${q}` })).json();
      const hours = await get('from=2026-11-21&to=2026-11-22&granularity=hour');
      assert.deepEqual(
        hours.rows.map((r: Record<string, unknown>) => [r.bucket, r.clicks, r.clickCost, r.source, r.final]),
        [
          ['2026-11-21T00:00:00.000Z', 3, '1.05', 'batch', true],
          ['2026-11-21T01:00:00.000Z', 2, '1.000001', 'speed', false],
        ],
      );
      assert.equal(hours.exactUntil, '2026-11-21T01:00:00.000Z');
      const day = await get(`from=${T}&to=${T + 86_400_000}&granularity=day`);
      assert.deepEqual(
        day.rows.map((r: Record<string, unknown>) => [r.clicks, r.clickCost, r.source, r.final]),
        [[5, '2.050001', 'speed', false]],
      );
      const page1 = await get('from=2026-11-21&to=2026-11-22&granularity=minute&limit=1');
      assert.equal(page1.rows.length, 1);
      const page2 = await get(
        `from=2026-11-21&to=2026-11-22&granularity=minute&limit=1&cursor=${encodeURIComponent(page1.nextCursor)}`,
      );
      assert.equal(page2.rows[0].bucket, '2026-11-21T01:01:00.000Z');
      assert.equal(page2.nextCursor, undefined);
      const filtered = await get('from=2026-11-21&to=2026-11-22&offerId=of-2');
      assert.deepEqual(filtered.rows, []);
    } finally {
      await server.close();
      await store.close();
    }
  });

  it('answers 400 naming the parameter and what is wrong, and checks the read token', async () => {
    const { server, store } = await app({ readToken: 'read-token-0123456789' });
    const status = async (q: string, auth = 'Bearer read-token-0123456789') => {
      const res = await server.inject({ method: 'GET', url: `/v1/stats?${q}`, headers: { authorization: auth } });
      return [res.statusCode, res.json().message as string] as const;
    };
    try {
      assert.match((await status('to=2026-11-22'))[1], /^from: is required/);
      assert.match((await status('from=2026-11-22&to=2026-11-21'))[1], /^to: must be after from/);
      assert.match(
        (await status('from=2026-11-21&to=2026-11-22&granularity=week'))[1],
        /^granularity: expected minute, hour or day/,
      );
      assert.match(
        (await status('from=2026-11-21&to=2026-11-22&limit=0'))[1],
        /^limit: expected an integer from 1 to 10000/,
      );
      assert.match((await status('from=2026-11-21&to=2026-11-22&offer=x'))[1], /^offer: unknown parameter/);
      assert.match((await status('from=yesterday&to=2026-11-22'))[1], /^from: expected an RFC 3339 timestamp/);
      assert.equal((await status('from=2026-11-21&to=2026-11-22'))[0], 200);
      assert.equal((await status('from=2026-11-21&to=2026-11-22', 'Bearer nope-nope-nope-nope'))[0], 401);
    } finally {
      await server.close();
      await store.close();
    }
  });
});

describe('GET /v1/discrepancies', () => {
  it('shows per interval and column the speed total, the exact one, and their absolute and relative difference', async () => {
    const { server, store } = await app({ readToken: 'r' });
    try {
      const totals = {
        emissions: 10,
        clicks: 4,
        clickCost: 1_400_000n,
        duplicateClicks: 0,
        fraudClicks: 0,
        fraudCost: 0n,
        invalidClicks: 1,
      };
      await store.recordDiscrepancies(T, T + 3_600_000, 'run-7', totals, {
        ...totals,
        clicks: 5,
        clickCost: 1_750_000n,
        invalidClicks: 0,
      });
      const get = async (q: string, token = 'r') =>
        server.inject({ method: 'GET', url: `/v1/discrepancies?${q}`, headers: { authorization: `Bearer ${token}` } });
      const answer = (await get('from=2026-11-21&to=2026-11-22')).json();
      assert.equal(answer.intervals.length, 1);
      const [interval] = answer.intervals;
      assert.equal(interval.runId, 'run-7');
      assert.deepEqual(interval.columns.clicks, { speed: 4, batch: 5, absolute: -1, relative: -0.2 });
      assert.deepEqual(interval.columns.clickCost, { speed: '1.4', batch: '1.75', absolute: '-0.35', relative: -0.2 });
      assert.deepEqual(interval.columns.invalidClicks, { speed: 1, batch: 0, absolute: 1, relative: null });
      assert.deepEqual(interval.columns.emissions, { speed: 10, batch: 10, absolute: 0, relative: 0 });
      assert.deepEqual((await get('from=2026-11-22&to=2026-11-23')).json().intervals, []);
      const badTo = await get('from=2026-11-22&to=2026-11-21');
      assert.equal(badTo.statusCode, 400);
      assert.match(badTo.json().message, /^to: must be after from/);
      assert.equal((await get('from=2026-11-21&to=2026-11-22', 'wrong')).statusCode, 401);
    } finally {
      await server.close();
      await store.close();
    }
  });
});
