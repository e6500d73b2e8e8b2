/** Test helpers for the collector: an app on a fresh embedded log, and events to send. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import {
  type CollectorLimits,
  collectorRoutes,
  CollectorMetrics,
  ensureCollectorTopics,
  type Tokens,
} from '../../src/collector/index.ts';
import { type EmbeddedLog, type Log, type LogRecord, openEmbeddedLog } from '../../src/log/index.ts';

/** Schema ids used where no registry runs. */
export const TEST_SCHEMA_IDS = { emission: 1, click: 2 };

/** Default limits, small enough to reach in tests. */
export const TEST_LIMITS: CollectorLimits = {
  maxBodyBytes: 1024 * 1024,
  maxLineBytes: 4096,
  maxEvents: 1000,
  maxInFlightBytes: 64 * 1024 * 1024,
};

/** A collector app (not listening; use inject) on `log`, or on a new embedded log. */
export async function collectorApp(
  options: { log?: Log; limits?: Partial<CollectorLimits>; tokens?: Tokens; fsync?: 'group' | 'none' } = {},
): Promise<{ app: FastifyInstance; log: Log; metrics: CollectorMetrics; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'reckon-collector-'));
  const log: Log =
    options.log ?? (await openEmbeddedLog({ dir, retentionIntervalMs: 0, fsync: options.fsync ?? 'group' }));
  await ensureCollectorTopics(log, 4);
  const metrics = new CollectorMetrics();
  const app = Fastify({ logger: false });
  await app.register(collectorRoutes, {
    log,
    schemaIds: TEST_SCHEMA_IDS,
    limits: { ...TEST_LIMITS, ...options.limits },
    tokens: options.tokens ?? {},
    metrics,
  });
  await app.ready();
  return { app, log, metrics, dir };
}

/** An emission line. */
export function emission(id: string, ts = '2026-11-21T10:00:00.000Z'): Record<string, unknown> {
  return {
    type: 'emission',
    id,
    ts,
    placement: 'home-top',
    offers: [
      { offerId: 'of-1', clickCost: '0.35' },
      { offerId: 'of-2', clickCost: '1.20' },
    ],
  };
}

/** A click line on emission `emissionId`. */
export function click(id: string, emissionId: string, ts = '2026-11-21T10:00:05.120Z'): Record<string, unknown> {
  return { type: 'click', id, ts, emissionId, offerId: 'of-1', userId: 'u-9', ip: '203.0.113.7' };
}

/** NDJSON of the given objects. */
export const ndjson = (items: unknown[]): string => items.map((i) => JSON.stringify(i)).join('\n') + '\n';

/** Every record of a topic, all partitions. */
export async function topicRecords(log: Log, topic: string): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  const n = await log.partitionCount(topic);
  for (let p = 0; p < n; p++) {
    let offset = await log.earliestOffset(topic, p);
    for (;;) {
      const batch = await log.read(topic, p, offset, { maxBytes: 4 << 20 });
      if (batch.length === 0) break;
      out.push(...batch);
      offset = (batch[batch.length - 1] as LogRecord).offset + 1;
    }
  }
  return out;
}

/** Closes an embedded log if it is one. */
export async function closeLog(log: Log): Promise<void> {
  await (log as EmbeddedLog).close();
}
