/**
 * `GET /v1/stats`: statistics rows from the serving store, batch rows where a batch run covers
 * the bucket and speed rows elsewhere, with `source` and `final` per row and the time up to which
 * results are exact. Parameters are validated, and a 400 names the parameter and what is wrong.
 * `GET /v1/discrepancies`: per batch-recalculated interval and column, the speed layer's total,
 * the exact one, and how far apart they were.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { AccessHook } from '../collector/index.ts';
import { formatMoney, formatTimestamp, parseTimestamp } from '../events/index.ts';
import type { Discrepancy, Granularity, StatsStore } from '../stats/index.ts';

/** Options of {@link statsRoutes}. */
export interface StatsRoutesOptions {
  store: StatsStore;
  readAccess?: AccessHook;
}

const GRANULARITIES: readonly Granularity[] = ['minute', 'hour', 'day'];
const PARAMETERS = new Set(['from', 'to', 'granularity', 'offerId', 'placement', 'limit', 'cursor']);
/** Rows per page by default, and at most. */
export const DEFAULT_LIMIT = 1000;
export const MAX_LIMIT = 10_000;

class BadParameter extends Error {}

function bad(name: string, reason: string): never {
  throw new BadParameter(`${name}: ${reason}`);
}

function time(query: Record<string, string | undefined>, name: string): number {
  const raw = query[name];
  if (raw === undefined || raw === '')
    bad(name, 'is required (RFC 3339 like 2026-11-21T00:00:00Z, a date like 2026-11-21, or epoch ms)');
  const value = /^[0-9]+$/.test(raw)
    ? Number(raw)
    : /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/.test(raw)
      ? `${raw}T00:00:00Z`
      : raw;
  const ms = parseTimestamp(value);
  if (typeof ms === 'string') bad(name, ms);
  return ms;
}

/** Parses and checks the query string; throws {@link BadParameter} naming the parameter. */
function parse(query: Record<string, string | undefined>) {
  for (const key of Object.keys(query)) {
    if (!PARAMETERS.has(key)) bad(key, `unknown parameter (known: ${[...PARAMETERS].join(', ')})`);
  }
  const from = time(query, 'from');
  const to = time(query, 'to');
  if (to <= from) bad('to', `must be after from (${formatTimestamp(from)})`);
  const granularity = (query.granularity ?? 'hour') as Granularity;
  if (!GRANULARITIES.includes(granularity))
    bad('granularity', `expected minute, hour or day, got ${JSON.stringify(query.granularity)}`);
  let limit = DEFAULT_LIMIT;
  if (query.limit !== undefined) {
    if (!/^[0-9]+$/.test(query.limit) || Number(query.limit) < 1 || Number(query.limit) > MAX_LIMIT)
      bad('limit', `expected an integer from 1 to ${MAX_LIMIT}, got ${JSON.stringify(query.limit)}`);
    limit = Number(query.limit);
  }
  for (const name of ['offerId', 'placement', 'cursor'] as const) {
    const v = query[name];
    if (v !== undefined && (v === '' || v.length > 1024)) bad(name, 'must be 1 to 1024 characters');
  }
  return { from, to, granularity, limit, offerId: query.offerId, placement: query.placement, cursor: query.cursor };
}

const MONEY_COLUMNS = new Set(['clickCost', 'fraudCost']);

/** One interval's discrepancies as the API shows them: money as decimal strings, relative to the exact value. */
function discrepancyView(ds: Discrepancy[]) {
  const byInterval = new Map<string, Discrepancy[]>();
  for (const d of ds) {
    const key = `${d.from}-${d.to}`;
    byInterval.set(key, [...(byInterval.get(key) ?? []), d]);
  }
  return [...byInterval.values()].map((group) => {
    const first = group[0] as Discrepancy;
    const columns: Record<string, unknown> = {};
    for (const d of group) {
      const show = (v: bigint) => (MONEY_COLUMNS.has(d.column) ? formatMoney(v) : Number(v));
      const absolute = d.speed - d.batch;
      columns[d.column] = {
        speed: show(d.speed),
        batch: show(d.batch),
        absolute: show(absolute),
        // Relative to the exact value; null when the exact value is 0 and speed is not.
        relative: d.batch === 0n ? (absolute === 0n ? 0 : null) : Number(absolute) / Number(d.batch),
      };
    }
    return {
      from: formatTimestamp(first.from),
      to: formatTimestamp(first.to),
      runId: first.runId,
      computedAt: formatTimestamp(first.computedAt),
      columns,
    };
  });
}

/** The query API's routes. */
export const statsRoutes: FastifyPluginAsync<StatsRoutesOptions> = async (app, options) => {
  const { store } = options;
  app.get(
    '/v1/stats',
    options.readAccess === undefined ? {} : { onRequest: options.readAccess },
    async (request, reply) => {
      let q: ReturnType<typeof parse>;
      try {
        q = parse(request.query as Record<string, string | undefined>);
      } catch (e) {
        if (e instanceof BadParameter)
          return reply.code(400).send({ error: 'RECKON_STATS_BAD_PARAMETER', message: e.message });
        throw e;
      }
      let page;
      try {
        page = await store.query({
          from: q.from,
          to: q.to,
          granularity: q.granularity,
          limit: q.limit,
          ...(q.offerId !== undefined ? { offerId: q.offerId } : {}),
          ...(q.placement !== undefined ? { placement: q.placement } : {}),
          ...(q.cursor !== undefined ? { cursor: q.cursor } : {}),
        });
      } catch (e) {
        const code = (e as { code?: string }).code ?? '';
        if (code.startsWith('RECKON_') && !(e as { retriable?: boolean }).retriable)
          return reply.code(400).send({ error: code, message: (e as Error).message });
        throw e;
      }
      return {
        from: formatTimestamp(q.from),
        to: formatTimestamp(q.to),
        granularity: q.granularity,
        exactUntil: page.exactUntil === null ? null : formatTimestamp(page.exactUntil),
        rows: page.rows.map((r) => ({
          bucket: formatTimestamp(r.bucketStart),
          offerId: r.offerId,
          placement: r.placement,
          emissions: r.emissions,
          clicks: r.clicks,
          clickCost: formatMoney(r.clickCost),
          duplicateClicks: r.duplicateClicks,
          fraudClicks: r.fraudClicks,
          fraudCost: formatMoney(r.fraudCost),
          invalidClicks: r.invalidClicks,
          source: r.source,
          final: r.final,
        })),
        ...(page.nextCursor !== undefined ? { nextCursor: page.nextCursor } : {}),
      };
    },
  );
  app.get(
    '/v1/discrepancies',
    options.readAccess === undefined ? {} : { onRequest: options.readAccess },
    async (request, reply) => {
      const query = request.query as Record<string, string | undefined>;
      let from: number;
      let to: number;
      try {
        for (const key of Object.keys(query)) {
          if (key !== 'from' && key !== 'to') bad(key, 'unknown parameter (known: from, to)');
        }
        from = time(query, 'from');
        to = time(query, 'to');
        if (to <= from) bad('to', `must be after from (${formatTimestamp(from)})`);
      } catch (e) {
        if (e instanceof BadParameter)
          return reply.code(400).send({ error: 'RECKON_STATS_BAD_PARAMETER', message: e.message });
        throw e;
      }
      return {
        from: formatTimestamp(from),
        to: formatTimestamp(to),
        intervals: discrepancyView(await store.discrepancies(from, to)),
      };
    },
  );
};
