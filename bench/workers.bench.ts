/**
 * Worker runtime benchmarks: a no-op task through the runtime, against reading the same records
 * straight from the log, and against the hand-written at-least-once loop (take one record, await
 * its processing, commit its offset, take the next).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openEmbeddedLog } from '../src/log/index.ts';
import { WorkerRuntime, type WorkerTask } from '../src/workers/index.ts';
import { type BenchResult, compareAsync, readWholeTopic } from './harness.ts';

const PARTITIONS = 4;
const RECORDS = 400_000;
const HAND_WRITTEN_RECORDS = 2_000;

/** Runs the worker benchmarks. */
export async function workerBenchmarks(): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'reckon-bench-workers-'));
  const log = await openEmbeddedLog({ dir, retentionIntervalMs: 0 });
  await log.createTopic({ name: 'events', partitions: PARTITIONS });
  const value = Buffer.alloc(100, 'x');
  for (let b = 0; b < RECORDS / 1000; b++) {
    await log.append(
      'events',
      Array.from({ length: 1000 }, (_, i) => ({ key: `em-${b * 1000 + i}`, value })),
    );
  }
  let sink = 0;
  let round = 0;

  const readAll = async (): Promise<void> => {
    sink += await readWholeTopic(log, 'events', PARTITIONS);
  };

  const throughRuntime = (batched: boolean) => async (): Promise<void> => {
    const task: WorkerTask = batched
      ? {
          process: () => undefined,
          processBatch: (records, observer) => {
            for (const r of records) sink += r.value.length;
            observer.success();
          },
        }
      : {
          process: (r, observer) => {
            sink += r.value.length;
            observer.success();
          },
        };
    const runtime = new WorkerRuntime({
      log,
      group: `bench-${round++}`,
      topics: ['events'],
      taskFactory: () => task,
      onError: () => undefined,
    });
    await runtime.start();
    while (runtime.stats.processed < RECORDS) await new Promise((r) => setTimeout(r, 1));
    await runtime.stop();
  };

  const handWritten = async (): Promise<void> => {
    const group = `hand-${round++}`;
    let done = 0;
    for (let p = 0; p < PARTITIONS && done < HAND_WRITTEN_RECORDS; p++) {
      let offset = 0;
      while (done < HAND_WRITTEN_RECORDS) {
        const [record] = await log.read('events', p, offset, { maxBytes: 1 });
        if (record === undefined) break;
        await Promise.resolve(record.value.length).then((n) => (sink += n));
        await log.commitOffsets(group, 'events', [{ partition: p, offset: record.offset + 1 }]);
        offset = record.offset + 1;
        done++;
      }
    }
  };

  const results: BenchResult[] = [];
  results.push(
    await compareAsync(
      'workers.noop (no-op task, process per record)',
      'events/s',
      throughRuntime(false),
      readAll,
      RECORDS,
      3,
    ),
  );
  results.push(
    await compareAsync(
      'workers.noop (no-op task, processBatch)',
      'events/s',
      throughRuntime(true),
      readAll,
      RECORDS,
      3,
    ),
  );
  const runtimeRate = results[0]?.value ?? 0;
  const hand = await compareAsync(
    'hand-written at-least-once loop (await each record, commit each offset)',
    'events/s',
    handWritten,
    handWritten,
    HAND_WRITTEN_RECORDS,
    1,
  );
  results.push({
    name: 'workers.noop vs hand-written at-least-once loop',
    unit: 'events/s',
    value: runtimeRate,
    baseline: hand.value,
    ratio: Number((runtimeRate / hand.value).toFixed(1)),
  });
  await log.close();
  rmSync(dir, { recursive: true, force: true });
  if (sink === -1) process.stdout.write('');
  return results;
}
