/**
 * The thread side of {@link openStatsWriterThread}: owns one statistics store and runs the
 * calls it is sent, one at a time, in order. When no write has come for a moment and runs are
 * waiting, it compacts them, so queries mostly read the compacted base.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openPostgresStatsStore } from './postgres.ts';
import { openSqliteStatsStore } from './sqlite.ts';
import type { StatsStore } from './types.ts';
import type { StoreSpec, WriterCall, WriterReply } from './writer-thread.ts';

/** Quiet time after the last write before waiting runs are compacted (ms). */
const IDLE_COMPACT_MS = 500;

const port = parentPort;
if (port === null) throw new Error('writer-worker.ts runs as a worker thread');
const spec = workerData as StoreSpec;

let store: StatsStore;
try {
  store = spec.kind === 'sqlite' ? await openSqliteStatsStore(spec.path) : await openPostgresStatsStore(spec.url);
  port.postMessage({ id: 0, result: 'ready' } satisfies WriterReply);
} catch (e) {
  port.postMessage({ id: 0, error: errorOf(e) } satisfies WriterReply);
  throw e;
}

function errorOf(e: unknown): NonNullable<WriterReply['error']> {
  const err = e as { message?: unknown; code?: unknown; retriable?: unknown };
  return {
    message: String(err.message ?? e),
    ...(typeof err.code === 'string' ? { code: err.code } : {}),
    retriable: err.retriable === true,
  };
}

let queue: Promise<void> = Promise.resolve();
let idle: NodeJS.Timeout | undefined;

const compactWhenIdle = (): void => {
  if (idle !== undefined) clearTimeout(idle);
  idle = setTimeout(() => {
    queue = queue.then(async () => {
      try {
        await store.compact();
      } catch {
        // A busy store: the next flush or quiet spell compacts.
      }
    });
  }, IDLE_COMPACT_MS);
  idle.unref();
};

port.on('message', (call: WriterCall) => {
  queue = queue.then(async () => {
    try {
      const method = store[call.method] as (...args: unknown[]) => Promise<unknown>;
      const result = await method.apply(store, call.args);
      port.postMessage({ id: call.id, result } satisfies WriterReply);
      if (call.method === 'applySpeedDeltas') compactWhenIdle();
      if (call.method === 'close') port.close();
    } catch (e) {
      port.postMessage({ id: call.id, error: errorOf(e) } satisfies WriterReply);
    }
  });
});
