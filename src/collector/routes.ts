/**
 * `POST /v1/events`, `/readyz` and `/metrics` of the collector, as a fastify plugin. An answer of
 * 200 means every accepted event, and every rejected line with its reason, is durable in the log.
 */
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import type { FastifyError, FastifyPluginAsync, FastifyReply } from 'fastify';
import { ReckonError } from '../events/index.ts';
import type { Log, RecordInput } from '../log/index.ts';
import { accessHook, type Tokens } from './auth.ts';
import {
  type BodyProblem,
  CLICKS_TOPIC,
  EMISSIONS_TOPIC,
  type EncodedBody,
  type EncodedEvents,
  isBodyProblem,
  type PreparedBatch,
  type TopicPartitions,
  type WriterSchemaIds,
} from './ingest.ts';
import { CollectorMetrics } from './metrics.ts';
import { ParsePool } from './parse-pool.ts';
import { MAX_KEPT_BODY_BYTES, REJECTED_TOPIC, rejectedRecord } from './rejected.ts';

const gunzipAsync = promisify(gunzip);

/** Limits of the collector (see the `ingest*` settings). */
export interface CollectorLimits {
  maxBodyBytes: number;
  maxLineBytes: number;
  maxEvents: number;
  maxInFlightBytes: number;
}

/** Options of {@link collectorRoutes}. */
export interface CollectorOptions {
  log: Log;
  schemaIds: WriterSchemaIds;
  limits: CollectorLimits;
  tokens: Tokens;
  metrics?: CollectorMetrics;
  /** Parse threads; without it bodies are parsed on the HTTP thread. */
  parsePool?: ParsePool;
}

/** Content types of `POST /v1/events`: NDJSON (one event per line) or JSON (an array of events). */
const NDJSON_TYPES = ['application/x-ndjson', 'application/jsonl', 'application/ndjson'];
const JSON_TYPES = ['application/json'];

function unsupportedType(type: string | undefined): string {
  return `Content-Type ${JSON.stringify(type ?? '(none)')} is not accepted: send application/x-ndjson (one event per line) or application/json (an array of events)`;
}

function problem(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  return reply.code(status).send({ error: code, message });
}

const BODY_TOO_LARGE = 'FST_ERR_CTP_BODY_TOO_LARGE';

/**
 * How much of a too-large body is read and thrown away before its 413 is sent. Many clients
 * (Python's urllib among them) write the whole body before they read the answer: if the server
 * closed the connection while they still write, they would see it reset instead of the 413.
 */
export function discardLimit(maxBodyBytes: number): number {
  return Math.max(4 * maxBodyBytes, 64 * 1024 * 1024);
}

/**
 * Reads a request body of at most `limit` bytes. A larger one (declared or sent) is read to its
 * end without being kept, up to {@link discardLimit}, and only then refused, so that its sender
 * gets the 413 instead of a reset connection.
 */
function readBody(
  payload: NodeJS.ReadableStream,
  declared: number,
  limit: number,
  done: (error: Error | null, body?: Buffer) => void,
): void {
  const chunks: Buffer[] = [];
  let received = 0;
  let tooLarge = declared > limit;
  let settled = false;
  const settle = (error: Error | null, body?: Buffer) => {
    if (settled) return;
    settled = true;
    payload.removeListener('data', onData);
    if (body === undefined) chunks.length = 0;
    done(error, body);
  };
  const refuse = () =>
    settle(Object.assign(new Error('the body is too large'), { code: BODY_TOO_LARGE, statusCode: 413 }));
  const onData = (chunk: Buffer) => {
    received += chunk.length;
    if (!tooLarge && received > limit) {
      tooLarge = true;
      chunks.length = 0;
    }
    if (!tooLarge) chunks.push(chunk);
    // Past this, the sender is not owed the wait: refuse now (and the connection closes).
    else if (received > discardLimit(limit)) refuse();
  };
  payload.on('data', onData);
  payload.once('end', () => (tooLarge ? refuse() : settle(null, Buffer.concat(chunks, received))));
  payload.once('error', (e: Error) => settle(Object.assign(e, { statusCode: 400 })));
  payload.resume();
}

/** The collector's routes. Register it on a fastify instance (its content-type parsers stay inside it). */
export const collectorRoutes: FastifyPluginAsync<CollectorOptions> = async (app, o) => {
  const metrics = o.metrics ?? new CollectorMetrics();
  const { limits, log } = o;
  const parsePool = o.parsePool ?? new ParsePool(0);
  let inFlightBytes = 0;
  // A log that takes batches in its own format gets them laid out by the parse threads.
  let partitions: TopicPartitions | undefined;
  if (log.appendEncoded !== undefined) {
    try {
      partitions = {
        emissions: await log.partitionCount(EMISSIONS_TOPIC),
        clicks: await log.partitionCount(CLICKS_TOPIC),
      };
    } catch {
      partitions = undefined; // topics not there yet: records, whose append names the problem
    }
  }
  const countOf = (events: RecordInput[] | EncodedEvents): number =>
    Array.isArray(events) ? events.length : events.count;
  const appendEvents = (topic: string, events: RecordInput[] | EncodedEvents) => {
    if (countOf(events) === 0) return undefined;
    return Array.isArray(events) ? log.append(topic, events) : log.appendEncoded!(topic, events.batches);
  };
  const ingestAccess = accessHook('ingest', o.tokens);
  const readAccess = accessHook('read', o.tokens);

  app.removeAllContentTypeParsers();
  app.addContentTypeParser([...NDJSON_TYPES, ...JSON_TYPES], (request, payload, done) =>
    readBody(payload, Number(request.headers['content-length']), limits.maxBodyBytes, done),
  );

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const status = error.statusCode ?? 500;
    metrics.requests.inc({ status: String(status) });
    if (error.code === BODY_TOO_LARGE)
      return problem(
        reply,
        413,
        'RECKON_INGEST_BODY_TOO_LARGE',
        `the body is larger than ${limits.maxBodyBytes} bytes (ingestMaxBodyBytes): split it into smaller requests`,
      );
    if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
      return problem(
        reply,
        415,
        'RECKON_INGEST_UNSUPPORTED_MEDIA_TYPE',
        unsupportedType(request.headers['content-type']),
      );
    if (status < 500) return problem(reply, status, error.code ?? 'RECKON_INGEST_BAD_REQUEST', error.message);
    request.log.error(error);
    return problem(reply, 500, 'RECKON_INTERNAL', `internal error: ${error.message}`);
  });

  const overloaded = (reply: FastifyReply, why: string): FastifyReply => {
    metrics.requests.inc({ status: '503' });
    return reply
      .code(503)
      .header('retry-after', '1')
      .send({ error: 'RECKON_INGEST_OVERLOADED', message: `${why}; retry after 1 s` });
  };

  app.post(
    '/v1/events',
    {
      onRequest: [
        ingestAccess,
        async (request, reply) => {
          // Back-pressure before reading the body: bounded memory instead of a growing backlog.
          const declared = Number(request.headers['content-length'] ?? limits.maxBodyBytes);
          const reserved = Number.isFinite(declared) ? Math.min(declared, limits.maxBodyBytes) : limits.maxBodyBytes;
          if (inFlightBytes > 0 && inFlightBytes + reserved > limits.maxInFlightBytes) {
            await overloaded(
              reply,
              `the collector is handling ${inFlightBytes} bytes of requests, its limit is ${limits.maxInFlightBytes} (ingestMaxInFlightBytes)`,
            );
            return;
          }
          inFlightBytes += reserved;
          metrics.inFlightBytes.set(inFlightBytes);
          reply.raw.once('close', () => {
            inFlightBytes -= reserved;
            metrics.inFlightBytes.set(inFlightBytes);
          });
        },
      ],
    },
    async (request, reply) => {
      const started = process.hrtime.bigint();
      const requestId = randomUUID();
      const receivedAt = Date.now();
      const type = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
      // Fastify skips content-type parsing for an empty body: check the type here too.
      if (!NDJSON_TYPES.includes(type) && !JSON_TYPES.includes(type)) {
        metrics.requests.inc({ status: '415' });
        return problem(
          reply,
          415,
          'RECKON_INGEST_UNSUPPORTED_MEDIA_TYPE',
          unsupportedType(request.headers['content-type']),
        );
      }
      let body = (request.body as Buffer | undefined) ?? Buffer.alloc(0);
      const encoding = (request.headers['content-encoding'] ?? 'identity').toLowerCase().trim();
      let prepared: PreparedBatch | EncodedBody | BodyProblem;
      if (encoding !== 'identity' && encoding !== 'gzip') {
        metrics.requests.inc({ status: '415' });
        return problem(
          reply,
          415,
          'RECKON_INGEST_UNSUPPORTED_ENCODING',
          `Content-Encoding ${JSON.stringify(encoding)} is not supported: send the body plain or gzip-compressed`,
        );
      }
      if (encoding === 'gzip') {
        try {
          body = await gunzipAsync(body, { maxOutputLength: limits.maxBodyBytes });
        } catch (e) {
          const tooLarge = (e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
          prepared = tooLarge
            ? {
                status: 413,
                code: 'RECKON_INGEST_BODY_TOO_LARGE',
                message: `the decompressed body is larger than ${limits.maxBodyBytes} bytes (ingestMaxBodyBytes): split it into smaller requests`,
              }
            : {
                status: 400,
                code: 'RECKON_INGEST_UNREADABLE_BODY',
                message: `the body is not readable gzip (${(e as Error).message})`,
              };
          return answerProblem(reply, prepared, requestId, receivedAt, request.body as Buffer);
        }
      }
      metrics.bodyBytes.inc(body.length);
      const ids = o.schemaIds;
      // From here on `body` may have been moved to a parse thread: a problem gives it back.
      const kind = NDJSON_TYPES.includes(type) ? 'ndjson' : 'json';
      try {
        prepared = await parsePool.prepare(kind, body, ids, limits, partitions);
      } catch (e) {
        return overloaded(
          reply,
          `the body could not be parsed now (${(e as Error).message}); nothing was acknowledged`,
        );
      }
      if (isBodyProblem(prepared)) return answerProblem(reply, prepared, requestId, receivedAt, prepared.body ?? body);
      const batch = prepared;
      const rejected = batch.rejected.map((r) =>
        rejectedRecord(requestId, receivedAt, r.line, r.kind, r.reason, r.raw, r.kind === 'line_too_long'),
      );
      // Every append settles before the answer (and before the batches' memory is reused).
      const settled = await Promise.allSettled([
        appendEvents(EMISSIONS_TOPIC, batch.emissions),
        appendEvents(CLICKS_TOPIC, batch.clicks),
        rejected.length > 0 ? log.append(REJECTED_TOPIC, rejected) : undefined,
      ]);
      const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      // After a failure a write may still hold the memory: it is left to the collector then.
      if (failed === undefined && 'release' in batch) batch.release?.();
      if (failed !== undefined)
        return overloaded(
          reply,
          `the log did not take the events (${(failed.reason as Error).message}); nothing was acknowledged`,
        );
      const emissions = countOf(batch.emissions);
      const clicks = countOf(batch.clicks);
      metrics.accepted.inc({ type: 'emission' }, emissions);
      metrics.accepted.inc({ type: 'click' }, clicks);
      for (const r of batch.rejected) metrics.rejected.inc({ reason: r.kind });
      metrics.requests.inc({ status: '200' });
      metrics.duration.observe(Number(process.hrtime.bigint() - started) / 1e9);
      return reply.code(200).send({
        requestId,
        accepted: emissions + clicks,
        rejected: batch.rejected.map((r) => ({ line: r.line, reason: r.reason })),
      });
    },
  );

  /** A whole-body problem: unreadable bodies are kept in the dead-letter store before the answer. */
  async function answerProblem(
    reply: FastifyReply,
    p: BodyProblem,
    requestId: string,
    receivedAt: number,
    raw: Buffer,
  ): Promise<FastifyReply> {
    if (p.status === 400) {
      const kept = raw.subarray(0, MAX_KEPT_BODY_BYTES);
      try {
        await log.append(REJECTED_TOPIC, [
          rejectedRecord(requestId, receivedAt, 0, 'unreadable_body', p.message, kept, kept.length < raw.length),
        ]);
      } catch (e) {
        return overloaded(reply, `the log did not take the rejected body (${(e as Error).message})`);
      }
      metrics.rejected.inc({ reason: 'unreadable_body' });
    }
    metrics.requests.inc({ status: String(p.status) });
    return reply.code(p.status).send({ requestId, error: p.code, message: p.message });
  }

  app.get('/readyz', async (_request, reply) => {
    try {
      await log.checkWritable();
      return { status: 'ready', log: log.kind };
    } catch (e) {
      return reply.code(503).send({
        status: 'not ready',
        reason: e instanceof ReckonError ? e.message : `log check failed: ${(e as Error).message}`,
      });
    }
  });

  app.get('/metrics', { onRequest: readAccess }, async (_request, reply) => {
    return reply.header('content-type', metrics.registry.contentType).send(await metrics.registry.metrics());
  });
};
