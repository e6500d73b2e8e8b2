/**
 * Log benchmarks: the embedded log's durable append and its read, each against the raw file
 * operation on the same bytes (append + fdatasync per batch; a sequential read).
 */
import {
  closeSync,
  fdatasyncSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type EmbeddedLog, type Log, openEmbeddedLog, type RecordInput } from '../src/log/index.ts';
import { type BenchResult, compareAsync, readWholeTopic } from './harness.ts';

const RECORDS_PER_BATCH = 1000;
const BATCHES = 200;
const PARTITIONS = 4;

function makeBatches(): RecordInput[][] {
  const value = Buffer.alloc(100, 'x');
  return Array.from({ length: BATCHES }, (_, b) =>
    Array.from({ length: RECORDS_PER_BATCH }, (_, i) => ({ key: `em-${(b * RECORDS_PER_BATCH + i) % 50_000}`, value })),
  );
}

async function freshLog(): Promise<{ log: EmbeddedLog; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'reckon-bench-log-'));
  const log = await openEmbeddedLog({ dir, retentionIntervalMs: 0 });
  await log.createTopic({ name: 'bench', partitions: PARTITIONS });
  return { log, dir };
}

/** Appends every batch with `concurrency` appends in flight, as concurrent producers would. */
async function appendAll(log: Log, batches: RecordInput[][], concurrency: number): Promise<void> {
  const inFlight = new Set<Promise<unknown>>();
  for (const batch of batches) {
    const p = log.append('bench', batch).finally(() => inFlight.delete(p));
    inFlight.add(p);
    if (inFlight.size >= concurrency) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
}

function segmentFiles(dir: string): string[] {
  const out: string[] = [];
  for (let p = 0; p < PARTITIONS; p++) {
    const pdir = join(dir, 'topics', 'bench', String(p));
    for (const name of readdirSync(pdir)) if (name.endsWith('.log')) out.push(join(pdir, name));
  }
  return out;
}

/** Runs the log benchmarks. */
export async function logBenchmarks(): Promise<BenchResult[]> {
  const batches = makeBatches();
  const total = BATCHES * RECORDS_PER_BATCH;
  // The raw baseline writes the bytes the log writes: measure them once.
  const probe = await freshLog();
  await appendAll(probe.log, batches, 16);
  await probe.log.close();
  const bytes = segmentFiles(probe.dir).reduce((n, f) => n + statSync(f).size, 0);
  rmSync(probe.dir, { recursive: true, force: true });
  const rawBatch = Buffer.alloc(Math.ceil(bytes / BATCHES), 'x');

  const rawAppend = async (): Promise<void> => {
    const dir = mkdtempSync(join(tmpdir(), 'reckon-bench-raw-'));
    const fd = openSync(join(dir, 'raw'), 'w');
    for (let b = 0; b < BATCHES; b++) {
      writeSync(fd, rawBatch);
      fdatasyncSync(fd);
    }
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  };
  const logAppend = (concurrency: number) => async (): Promise<void> => {
    const { log, dir } = await freshLog();
    await appendAll(log, batches, concurrency);
    await log.close();
    rmSync(dir, { recursive: true, force: true });
  };
  const results: BenchResult[] = [];
  results.push(
    await compareAsync(
      'log.append (100-byte records, batches of 1000, group commit, 16 appends in flight)',
      'events/s',
      logAppend(16),
      rawAppend,
      total,
    ),
  );
  results.push(
    await compareAsync(
      'log.append (100-byte records, batches of 1000, one append at a time)',
      'events/s',
      logAppend(1),
      rawAppend,
      total,
    ),
  );

  // Forwarded appends: a reader's appends go over the writer's socket; baseline the writer's own.
  const forwardedAppend = async (): Promise<void> => {
    const { log, dir } = await freshLog();
    const reader = await openEmbeddedLog({ dir, role: 'reader' });
    await appendAll(reader, batches, 16);
    await reader.close();
    await log.close();
    rmSync(dir, { recursive: true, force: true });
  };
  results.push(
    await compareAsync(
      'log.append forwarded from a reader (same batches, 16 in flight, writer in the same process)',
      'events/s',
      forwardedAppend,
      logAppend(16),
      total,
    ),
  );

  // Reads: the whole topic back through the log, against a raw sequential read of its segment files.
  const { log, dir } = await freshLog();
  await appendAll(log, batches, 16);
  const files = segmentFiles(dir);
  const chunk = Buffer.allocUnsafe(1 << 20);
  let sink = 0;
  const rawRead = async (): Promise<void> => {
    for (const f of files) {
      const fd = openSync(f, 'r');
      let pos = 0;
      for (;;) {
        const n = readSync(fd, chunk, 0, chunk.length, pos);
        if (n === 0) break;
        pos += n;
        sink += chunk[0] as number;
      }
      closeSync(fd);
    }
  };
  const logRead = async (): Promise<void> => {
    sink += await readWholeTopic(log, 'bench', PARTITIONS);
  };
  results.push(await compareAsync('log.read (whole topic, 1 MiB reads)', 'events/s', logRead, rawRead, total));
  await log.close();
  rmSync(dir, { recursive: true, force: true });
  if (sink === -1) process.stdout.write('');
  return results;
}
