/**
 * The monitor's HTTP API, what the dashboard reads: `GET /v1/overview`, `GET /v1/stats/series`
 * (speed and batch per bucket, side by side), `GET /v1/dead-letters` (and replay), and
 * `GET /v1/rejected` (the collector's rejected input with reasons). Reads need the read token,
 * a replay the admin token.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { listRejected, REJECTED_TOPIC } from '../collector/index.ts';
import { formatMoney, formatTimestamp, parseTimestamp, ReckonError } from '../events/index.ts';
import { type Granularity, type StatsColumns, zeroColumns } from '../stats/index.ts';
import { listDeadLetters, replayDeadLetters } from '../workers/index.ts';
import { type Overview, pipelineOverview, type RateSampler } from './overview.ts';
import { CONSUMER_GROUPS, type MonitorSources } from './sources.ts';

type Hook = (request: FastifyRequest, reply: FastifyReply) => Promise<void>;

/** Options of {@link monitorRoutes}. */
export interface MonitorRoutesOptions {
  sources: MonitorSources;
  sampler: RateSampler;
  readAccess?: Hook;
  adminAccess?: Hook;
}

class BadParameter extends Error {}

const GRANULARITY_MS: Record<Granularity, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };
/** Most buckets one series answers (a week of hours is 168, a day of minutes 1,440). */
const MAX_BUCKETS = 5000;

function time(name: string, raw: string | undefined): number {
  if (raw === undefined || raw === '')
    throw new BadParameter(`${name}: is required (RFC 3339, a date like 2026-11-21, or epoch ms)`);
  const value = /^[0-9]+$/.test(raw) ? Number(raw) : /^\d{4}-\d{2}-\d{2}$/.test(raw) ? `${raw}T00:00:00Z` : raw;
  const ms = parseTimestamp(value);
  if (typeof ms === 'string') throw new BadParameter(`${name}: ${ms}`);
  return ms;
}

/** Columns as the API shows them: counts as numbers, money as decimal strings. */
function columnsJson(c: StatsColumns): Record<string, number | string> {
  return {
    emissions: c.emissions,
    clicks: c.clicks,
    clickCost: formatMoney(c.clickCost),
    duplicateClicks: c.duplicateClicks,
    fraudClicks: c.fraudClicks,
    fraudCost: formatMoney(c.fraudCost),
    invalidClicks: c.invalidClicks,
  };
}

/** A dead letter's value for people: text when it is printable, else base64. */
function preview(value: Buffer): string {
  const text = value.subarray(0, 2048).toString('utf8');
  // eslint-disable-next-line no-control-regex -- control characters are what this looks for
  return /[\u0000-\u0008\u000e-\u001f\ufffd]/.test(text)
    ? `base64:${value.subarray(0, 1536).toString('base64')}`
    : text;
}

/** Registers the routes (see the file comment). */
export const monitorRoutes: FastifyPluginAsync<MonitorRoutesOptions> = async (app, o) => {
  const { sources } = o;
  const read = o.readAccess === undefined ? {} : { onRequest: o.readAccess };
  const admin = o.adminAccess === undefined ? {} : { onRequest: o.adminAccess };
  app.setErrorHandler(async (err, _request, reply) => {
    if (err instanceof BadParameter) return reply.code(400).send({ error: 'bad request', message: err.message });
    if (err instanceof ReckonError)
      return reply.code(err.retriable ? 503 : 400).send({ error: err.code, message: err.message });
    return reply.code(500).send({ error: 'internal', message: err instanceof Error ? err.message : String(err) });
  });

  app.get('/v1/overview', read, async (): Promise<Overview> => pipelineOverview(sources, o.sampler));

  app.get<{ Querystring: Record<string, string | undefined> }>('/v1/stats/series', read, async (request) => {
    const q = request.query;
    const from = time('from', q.from);
    const to = time('to', q.to);
    if (to <= from) throw new BadParameter(`to: must be after from (${formatTimestamp(from)})`);
    const granularity = (q.granularity ?? 'hour') as Granularity;
    const size = GRANULARITY_MS[granularity];
    if (size === undefined)
      throw new BadParameter(`granularity: expected minute, hour or day, got ${JSON.stringify(q.granularity)}`);
    if ((to - from) / size > MAX_BUCKETS)
      throw new BadParameter(
        `to: at most ${MAX_BUCKETS} ${granularity} buckets per series; choose a coarser granularity`,
      );
    const filter = {
      from,
      to,
      granularity,
      ...(q.offerId ? { offerId: q.offerId } : {}),
      ...(q.placement ? { placement: q.placement } : {}),
    };
    const [speed, batch, intervals] = await Promise.all([
      sources.stats.sideSeries('speed', filter),
      sources.stats.sideSeries('batch', filter),
      sources.stats.batchIntervals(),
    ]);
    const covered = (start: number, end: number) => {
      // Intervals are ordered by from; walk the union across [start, end).
      let at = start;
      for (const i of intervals) {
        if (i.from > at) break;
        if (i.to > at) at = i.to;
        if (at >= end) return true;
      }
      return at >= end;
    };
    const buckets = new Map<number, { speed?: StatsColumns; batch?: StatsColumns }>();
    for (const p of speed) buckets.set(p.bucketStart, { speed: p.columns });
    for (const p of batch) buckets.set(p.bucketStart, { ...buckets.get(p.bucketStart), batch: p.columns });
    const zero = zeroColumns();
    return {
      buckets: [...buckets.keys()]
        .sort((a, b) => a - b)
        .map((start) => {
          const b = buckets.get(start) ?? {};
          const end = Math.min(start + size, to);
          const final = covered(start, end);
          return {
            bucket: formatTimestamp(start),
            speed: columnsJson(b.speed ?? zero),
            batch: final || b.batch !== undefined ? columnsJson(b.batch ?? zero) : null,
            final,
          };
        }),
    };
  });

  app.get<{ Querystring: { group?: string } }>('/v1/dead-letters', read, async (request) => {
    const group = request.query.group;
    if (group === undefined) {
      const groups = [];
      for (const g of CONSUMER_GROUPS) {
        const letters = await listDeadLetters(sources.log, g).catch(() => []);
        groups.push({ group: g, count: letters.length, replayed: letters.filter((l) => l.replayed).length });
      }
      return { groups };
    }
    if (!(CONSUMER_GROUPS as readonly string[]).includes(group))
      throw new BadParameter(`group: expected one of ${CONSUMER_GROUPS.join(', ')}, got ${JSON.stringify(group)}`);
    const letters = await listDeadLetters(sources.log, group).catch(() => []);
    return {
      group,
      deadLetters: letters.map((l) => ({
        id: l.id,
        topic: l.topic,
        partition: l.partition,
        offset: l.offset,
        error: l.error,
        attempts: l.attempts,
        failedAt: formatTimestamp(l.failedAt),
        replayed: l.replayed,
        value: preview(l.value),
      })),
    };
  });

  app.post<{ Params: { group: string }; Body: unknown }>('/v1/dead-letters/:group/replay', admin, async (request) => {
    const { group } = request.params;
    if (!(CONSUMER_GROUPS as readonly string[]).includes(group))
      throw new BadParameter(`group: expected one of ${CONSUMER_GROUPS.join(', ')}, got ${JSON.stringify(group)}`);
    const body = (request.body ?? {}) as { ids?: unknown };
    let ids: number[] | undefined;
    if (body.ids !== undefined) {
      if (!Array.isArray(body.ids) || !body.ids.every((x) => Number.isSafeInteger(x) && x >= 0))
        throw new BadParameter(
          'ids: expected a list of dead-letter ids (non-negative integers); leave it out to replay every letter',
        );
      ids = body.ids as number[];
    }
    return { replayed: await replayDeadLetters(sources.log, group, ids) };
  });

  app.get<{ Querystring: { limit?: string } }>('/v1/rejected', read, async (request) => {
    const limit = request.query.limit === undefined ? 100 : Number(request.query.limit);
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 10_000)
      throw new BadParameter('limit: expected 1 to 10000');
    let end = 0;
    try {
      end = await sources.log.latestOffset(REJECTED_TOPIC, 0);
    } catch {
      return { rejected: [] };
    }
    const records = await listRejected(sources.log, { fromId: Math.max(0, end - limit), limit });
    return {
      rejected: records.reverse().map((r) => ({
        id: r.id,
        at: formatTimestamp(r.receivedAt),
        requestId: r.requestId,
        line: r.line,
        kind: r.kind,
        reason: r.reason,
        raw: preview(r.raw),
        truncated: r.truncated,
      })),
    };
  });
};
