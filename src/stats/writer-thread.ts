/**
 * A statistics store on a thread of its own: the speed layer decodes and joins on its thread
 * while another one appends its runs and compacts them, so a process uses two cores and a
 * flush never stops the counting. Calls go to the thread in order and answer as the store
 * would, errors with their code and `retriable` flag.
 */
import { Worker } from 'node:worker_threads';
import { ReckonError } from '../events/index.ts';
import type { BatchRows, MinuteStatsColumns, StatsStore } from './types.ts';

/** Which store the thread opens. */
export type StoreSpec = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string };

/** A call sent to the thread. */
export interface WriterCall {
  id: number;
  method: Exclude<keyof StatsStore, 'kind'>;
  args: unknown[];
}

/** The thread's answer to call `id` (0: the store is open). */
export interface WriterReply {
  id: number;
  result?: unknown;
  error?: { message: string; code?: string; retriable: boolean };
}

function threadUrl(): URL {
  return new URL(import.meta.url.endsWith('.ts') ? './writer-worker.ts' : './writer-worker.js', import.meta.url);
}

/** The batches of rows given as columns. */
function batchesOf(rows: BatchRows): Iterable<MinuteStatsColumns> {
  return (rows as { columns: Iterable<MinuteStatsColumns> }).columns;
}

/** The buffers of the typed arrays among columns of rows (given as columns, not as objects). */
function transferable(deltas: unknown): ArrayBuffer[] {
  if (Array.isArray(deltas) || typeof deltas !== 'object' || deltas === null) return [];
  const buffers = new Set<ArrayBuffer>();
  for (const v of Object.values(deltas)) {
    if (ArrayBuffer.isView(v) && v.buffer instanceof ArrayBuffer && v.byteLength === v.buffer.byteLength)
      buffers.add(v.buffer);
  }
  return [...buffers];
}

/** Opens the store of `spec` on a new thread; the returned store forwards every call to it. */
export async function openStatsWriterThread(spec: StoreSpec): Promise<StatsStore> {
  const url = threadUrl();
  // Run from TypeScript sources (tests, benchmarks), the thread registers tsx's loader first.
  const worker = url.pathname.endsWith('.ts')
    ? new Worker(
        `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); })`,
        { eval: true, workerData: spec },
      )
    : new Worker(url, { workerData: spec });
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let failed: Error | undefined;
  const fail = (e: Error): void => {
    failed = e;
    for (const p of pending.values()) p.reject(e);
    pending.clear();
  };
  const ready = new Promise<void>((resolve, reject) => pending.set(0, { resolve: () => resolve(), reject }));
  worker.on('message', (reply: WriterReply) => {
    const p = pending.get(reply.id);
    pending.delete(reply.id);
    if (p === undefined) return;
    if (reply.error === undefined) return p.resolve(reply.result);
    const { message, code, retriable } = reply.error;
    p.reject(code === undefined ? new Error(message) : new ReckonError(code, message, { retriable }));
  });
  worker.on('error', (e) =>
    fail(
      new ReckonError('RECKON_STORE_THREAD_FAILED', `the statistics writer thread failed: ${e.message}`, { cause: e }),
    ),
  );
  worker.on('exit', (code) => {
    if (failed === undefined && pending.size > 0)
      fail(new ReckonError('RECKON_STORE_THREAD_FAILED', `the statistics writer thread exited with ${code}`));
  });
  await ready;

  const call = <T>(method: WriterCall['method'], args: unknown[], transfer: ArrayBuffer[] = []): Promise<T> => {
    if (failed !== undefined) return Promise.reject(failed);
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      worker.postMessage({ id, method, args } satisfies WriterCall, transfer);
    });
  };
  let closed = false;
  return {
    kind: spec.kind,
    // The deltas' typed arrays move to the thread instead of being copied: the caller hands them over.
    applySpeedDeltas: (...args) => call('applySpeedDeltas', args, transferable(args[1])),
    speedOffsets: (...args) => call('speedOffsets', args),
    compact: () => call('compact', []),
    pendingRuns: () => call('pendingRuns', []),
    // Batches of columns may come from a generator, which cannot cross to the thread: gathered first.
    replaceBatchInterval: (from, to, rows, runId, options) =>
      call('replaceBatchInterval', [
        from,
        to,
        Array.isArray(rows) ? rows : { columns: [...batchesOf(rows)] },
        runId,
        options,
      ]),
    batchIntervals: () => call('batchIntervals', []),
    query: (...args) => call('query', args),
    speedTotals: (...args) => call('speedTotals', args),
    sideSeries: (...args) => call('sideSeries', args),
    recordDiscrepancies: (...args) => call('recordDiscrepancies', args),
    discrepancies: (...args) => call('discrepancies', args),
    async close() {
      if (closed) return;
      closed = true;
      try {
        await call('close', []);
      } finally {
        await worker.terminate();
      }
    },
  };
}

/**
 * Several store threads that answer reads, each call going to the thread with the fewest calls
 * in flight: queries from many connections use every core instead of queueing on the serving
 * thread. Writes go to the first thread.
 */
export async function openStatsThreadPool(spec: StoreSpec, threads: number): Promise<StatsStore> {
  const members = await Promise.all(Array.from({ length: Math.max(1, threads) }, () => openStatsWriterThread(spec)));
  const busy = members.map(() => 0);
  const read =
    <A extends unknown[], R>(pick: (s: StatsStore) => (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      let at = 0;
      for (let i = 1; i < members.length; i++) if ((busy[i] as number) < (busy[at] as number)) at = i;
      busy[at] = (busy[at] as number) + 1;
      try {
        const member = members[at] as StatsStore;
        return await pick(member).apply(member, args);
      } finally {
        busy[at] = (busy[at] as number) - 1;
      }
    };
  const first = members[0] as StatsStore;
  return {
    kind: spec.kind,
    applySpeedDeltas: (...args) => first.applySpeedDeltas(...args),
    compact: () => first.compact(),
    replaceBatchInterval: (...args) => first.replaceBatchInterval(...args),
    recordDiscrepancies: (...args) => first.recordDiscrepancies(...args),
    speedOffsets: read((s) => s.speedOffsets),
    pendingRuns: read((s) => s.pendingRuns),
    batchIntervals: read((s) => s.batchIntervals),
    query: read((s) => s.query),
    speedTotals: read((s) => s.speedTotals),
    sideSeries: read((s) => s.sideSeries),
    discrepancies: read((s) => s.discrepancies),
    async close() {
      await Promise.all(members.map((m) => m.close()));
    },
  };
}
