import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type AssignmentListener, type EmbeddedLog, type Log, openEmbeddedLog } from '../../src/log/index.ts';
import {
  listDeadLetters,
  listGaps,
  replayDeadLetters,
  type WorkerOptions,
  type WorkerRecord,
  WorkerRuntime,
  type WorkerTask,
} from '../../src/workers/index.ts';
import { waitFor } from '../support/wait.ts';

const quiet = () => undefined;

async function logWith(records: number, partitions = 2, topic = 'events'): Promise<EmbeddedLog> {
  const log = await openEmbeddedLog({ dir: mkdtempSync(join(tmpdir(), 'reckon-workers-')), retentionIntervalMs: 0 });
  await log.createTopic({ name: topic, partitions });
  const batch = Array.from({ length: records }, (_, i) => ({
    partition: i % partitions,
    key: `k${i}`,
    value: Buffer.from(String(i)),
  }));
  if (records > 0) await log.append(topic, batch);
  return log;
}

function runtime(
  log: Log,
  task: (rec: WorkerRecord) => WorkerTask['process'] | undefined,
  overrides: Partial<WorkerOptions> = {},
): WorkerRuntime {
  return new WorkerRuntime({
    log,
    group: 'g',
    topics: ['events'],
    taskFactory: () => ({ process: (r, o) => (task(r) ?? ((_, obs) => obs.success()))(r, o) }),
    commitIntervalMs: 20,
    punctuateIntervalMs: 20,
    fetchWaitMs: 50,
    onError: quiet,
    ...overrides,
  });
}

const valueOf = (r: WorkerRecord) => Number(r.value.toString());

describe('worker runtime', () => {
  it('processes every record in offset order per partition and commits the positions', async () => {
    const log = await logWith(500, 2);
    const seen: [number, number][] = [];
    const rt = runtime(log, (r) => {
      seen.push([r.partition, r.offset]);
      return undefined;
    });
    await rt.start();
    await waitFor('all records', () => rt.stats.processed === 500);
    await rt.stop();
    for (const p of [0, 1]) {
      const offsets = seen.filter(([q]) => q === p).map(([, o]) => o);
      assert.deepEqual(
        offsets,
        Array.from({ length: 250 }, (_, i) => i),
      );
    }
    assert.deepEqual([...(await log.committedOffsets('g', 'events')).entries()].sort(), [
      [0, 250],
      [1, 250],
    ]);
    // A restart starts after the committed positions: nothing is redelivered.
    await log.append('events', [{ partition: 1, value: Buffer.from('500') }]);
    const again: number[] = [];
    const rt2 = runtime(log, (r) => {
      again.push(valueOf(r));
      return undefined;
    });
    await rt2.start();
    await waitFor('the new record', () => again.length === 1);
    await rt2.stop();
    assert.deepEqual(again, [500]);
  });

  it('lets timers run while it feeds a backlog to tasks that finish synchronously', async () => {
    const log = await logWith(20_000, 2);
    let ticks = 0;
    let ticksAtEnd = -1;
    const timer = setInterval(() => ticks++, 5);
    const rt = runtime(log, (r) => {
      // About 20 µs of work per record: the backlog takes hundreds of ms, in synchronous tasks.
      const until = performance.now() + 0.02;
      while (performance.now() < until);
      if (r.offset === 9_999) ticksAtEnd = ticks;
      return undefined;
    });
    try {
      await rt.start();
      await waitFor('all records', () => rt.stats.processed === 20_000);
    } finally {
      clearInterval(timer);
      await rt.stop();
    }
    // Without returning to the event loop, the timer would not have fired once until the end.
    assert.ok(ticksAtEnd >= 5, `the timer fired ${ticksAtEnd} times while the backlog was fed`);
  });

  it('never commits past an unfinished record, under random completion order, failures and timeouts (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            delay: fc.integer({ min: 0, max: 8 }),
            fails: fc.integer({ min: 0, max: 3 }),
            hang: fc.boolean(),
          }),
          { minLength: 5, maxLength: 40 },
        ),
        fc.integer({ min: 1, max: 4 }),
        async (plan, subpartitions) => {
          const log = await logWith(plan.length, 1);
          const finished = new Set<number>();
          const attempts = new Map<number, number>();
          const violations: string[] = [];
          // Check the invariant at every commit: everything below the committed offset is finished.
          const commit = log.commitOffsets.bind(log);
          log.commitOffsets = async (group, topic, offsets) => {
            for (const { offset } of offsets)
              for (let o = 0; o < offset; o++)
                if (!finished.has(o)) violations.push(`committed ${offset} before ${o} finished`);
            return commit(group, topic, offsets);
          };
          const rt = new WorkerRuntime({
            log,
            group: 'g',
            topics: ['events'],
            partitioner: { count: () => subpartitions, subpartition: (r) => r.offset % subpartitions },
            taskFactory: () => ({
              process: (r, observer) => {
                const step = plan[r.offset] as (typeof plan)[number];
                const n = (attempts.get(r.offset) ?? 0) + 1;
                attempts.set(r.offset, n);
                if (step.hang && n === 1) return; // never completes: the timeout fails it
                setTimeout(() => {
                  if (n <= step.fails) return observer.failure(new Error(`fail ${n}`));
                  finished.add(r.offset);
                  observer.success();
                }, step.delay);
              },
            }),
            processingTimeoutMs: 30,
            retry: { maxAttempts: 3, initialBackoffMs: 1 },
            commitIntervalMs: 5,
            onError: quiet,
          });
          // Records exhausted after 3 attempts are dead-lettered: they count as finished once written.
          await rt.start();
          await waitFor(
            'all records settled',
            () => rt.stats.processed + rt.stats.deadLettered === plan.length,
            20_000,
            5,
          );
          const dead = (await listDeadLetters(log, 'g')).map((d) => d.offset);
          for (const d of dead) finished.add(d);
          await rt.stop();
          assert.deepEqual(
            violations.filter((v) => !dead.some((d) => v.includes(`before ${d} `))),
            [],
          );
          // Attempt n fails when n <= fails (the first one hangs instead when hang): 3 failed attempts are fatal.
          const expectedDead = plan.flatMap((s, i) => (s.fails >= 3 ? [i] : []));
          assert.deepEqual(
            dead.sort((a, b) => a - b),
            expectedDead,
          );
          assert.equal((await log.committedOffsets('g', 'events')).get(0), plan.length);
          await log.close();
        },
      ),
      { numRuns: 15 },
    );
  });

  it('fails a record that is not completed within the processing timeout, retries it, then dead-letters it', async () => {
    const log = await logWith(3, 1);
    const rt = runtime(log, (r) => (r.offset === 1 ? () => undefined : undefined), {
      processingTimeoutMs: 40,
      retry: { maxAttempts: 2, initialBackoffMs: 5 },
    });
    await rt.start();
    await waitFor('dead letter', () => rt.stats.deadLettered === 1);
    await waitFor('the rest', () => rt.stats.processed === 2);
    await rt.stop();
    assert.equal(rt.stats.timedOut, 2);
    const [letter] = await listDeadLetters(log, 'g');
    assert.equal(letter?.offset, 1);
    assert.equal(letter?.attempts, 2);
    assert.match(letter?.error ?? '', /not completed within 40 ms/);
    assert.equal((await log.committedOffsets('g', 'events')).get(0), 3);
  });

  it('retries with back-off and succeeds; with onExhausted=stop it stops without committing past the record, and tells its owner', async () => {
    const log = await logWith(4, 1);
    let tries = 0;
    const rt = runtime(
      log,
      (r) => (r.offset === 2 ? (_, o) => (++tries < 3 ? o.failure(new Error('flaky')) : o.success()) : undefined),
      {
        retry: { maxAttempts: 5, initialBackoffMs: 5 },
      },
    );
    await rt.start();
    await waitFor('all', () => rt.stats.processed === 4);
    await rt.stop();
    assert.equal(rt.stats.retried, 2);

    const log2 = await logWith(4, 1);
    const fatal: Error[] = [];
    const rt2 = runtime(log2, (r) => (r.offset === 2 ? (_, o) => o.failure(new Error('poison')) : undefined), {
      retry: { maxAttempts: 2, initialBackoffMs: 1 },
      onExhausted: 'stop',
      onFatal: (e) => fatal.push(e),
    });
    await rt2.start();
    await waitFor('the runtime to stop', () => rt2.error);
    await rt2.stop();
    assert.deepEqual(fatal, [rt2.error]);
    assert.match(rt2.error?.message ?? '', /events\/0@2 failed 2 times: poison/);
    assert.equal((await log2.committedOffsets('g', 'events')).get(0), 2);
  });

  it('skips failures with guarantee none, counting them', async () => {
    const log = await logWith(5, 1);
    const rt = runtime(log, (r) => (r.offset % 2 === 0 ? (_, o) => o.failure(new Error('bad')) : undefined), {
      guarantee: 'none',
    });
    await rt.start();
    await waitFor('all', () => rt.stats.processed === 5);
    await rt.stop();
    assert.equal(rt.stats.failed, 3);
    assert.equal((await listDeadLetters(log, 'g')).length, 0);
    assert.equal((await log.committedOffsets('g', 'events')).get(0), 5);
  });

  it('lists dead letters with their origin and replays them onto their topic', async () => {
    const log = await logWith(4, 2);
    let poison = true;
    const processed: number[] = [];
    const rt = runtime(
      log,
      (r) => (_, o) => {
        if (valueOf(r) === 3 && poison) return o.failure(new Error('cannot parse'));
        processed.push(valueOf(r));
        o.success();
      },
      { retry: { maxAttempts: 1 } },
    );
    await rt.start();
    await waitFor('dead letter', () => rt.stats.deadLettered === 1);
    const [letter] = await listDeadLetters(log, 'g');
    assert.deepEqual(
      [letter?.topic, letter?.partition, letter?.offset, letter?.error, letter?.replayed],
      ['events', 1, 1, 'cannot parse', false],
    );
    poison = false;
    assert.equal(await replayDeadLetters(log, 'g'), 1);
    await waitFor('the replayed record', () => processed.includes(3));
    assert.equal((await listDeadLetters(log, 'g'))[0]?.replayed, true);
    assert.equal(await replayDeadLetters(log, 'g'), 0, 'a replayed letter is not replayed twice');
    await rt.stop();
  });

  it('keeps sub-partitions ordered while processing them concurrently', async () => {
    const log = await logWith(200, 1);
    const order = new Map<number, number[]>();
    let concurrent = 0;
    let maxConcurrent = 0;
    const rt = new WorkerRuntime({
      log,
      group: 'g',
      topics: ['events'],
      partitioner: { count: () => 4, subpartition: (r) => Number(r.value.toString()) % 4 },
      taskFactory: (_, sp) => ({
        process: (r, o) => {
          concurrent++;
          maxConcurrent = Math.max(maxConcurrent, concurrent);
          order.set(sp, [...(order.get(sp) ?? []), valueOf(r)]);
          setTimeout(() => {
            concurrent--;
            o.success();
          }, 1);
        },
      }),
      onError: quiet,
    });
    await rt.start();
    await waitFor('all', () => rt.stats.processed === 200);
    await rt.stop();
    assert.equal(maxConcurrent, 4);
    for (const [sp, values] of order) {
      assert.ok(values.every((v) => v % 4 === sp));
      assert.deepEqual(
        values,
        [...values].sort((a, b) => a - b),
      );
    }
  });

  it('applies back-pressure: a slow task keeps queued memory bounded by pausing its partition', async () => {
    const log = await logWith(0, 1);
    const big = Buffer.alloc(10_000, 1);
    for (let i = 0; i < 20; i++)
      await log.append(
        'events',
        Array.from({ length: 50 }, () => ({ partition: 0, value: big })),
      );
    let maxQueued = 0;
    let release: (() => void) | undefined;
    const rt = new WorkerRuntime({
      log,
      group: 'g',
      topics: ['events'],
      queueBytes: 200_000,
      fetchMaxBytes: 100_000,
      taskFactory: () => ({
        process: (_, o) => {
          release = () => o.success();
        },
      }),
      onError: quiet,
    });
    await rt.start();
    for (let i = 0; i < 1000; i++) {
      await waitFor('a record in the task', () => release);
      maxQueued = Math.max(maxQueued, rt.status()[0]?.queuedBytes ?? 0);
      const r = release as () => void;
      release = undefined;
      r();
    }
    await rt.stop();
    assert.equal(rt.stats.processed, 1000);
    assert.ok(rt.stats.pauses > 0, 'the partition was paused');
    // A fetch returns whole log batches (here 50 records of ~10 KB): the bound plus one batch.
    assert.ok(maxQueued <= 200_000 + 50 * 10_096, `queued ${maxQueued} bytes stays within the bound plus one fetch`);
  });

  it('lets a task pause and resume its partition', async () => {
    const log = await logWith(10, 1);
    let ctx: { pause(): void; resume(): void } | undefined;
    const seen: number[] = [];
    const rt = new WorkerRuntime({
      log,
      group: 'g',
      topics: ['events'],
      fetchMaxBytes: 1,
      taskFactory: () => ({
        init: (c) => {
          ctx = c;
        },
        process: (r, o) => {
          seen.push(r.offset);
          if (r.offset === 2) ctx?.pause();
          o.success();
        },
      }),
      fetchWaitMs: 20,
      onError: quiet,
    });
    await rt.start();
    await waitFor('the pause', () => seen.includes(2));
    const atPause = rt.status()[0]?.fetchOffset ?? 0;
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(rt.status()[0]?.fetchOffset, atPause, 'no fetching while paused');
    assert.equal(rt.status()[0]?.paused, true);
    ctx?.resume();
    await waitFor('the rest', () => rt.stats.processed === 10);
    await rt.stop();
  });

  it('skips forward past a backlog only when told to, recording the skipped range durably', async () => {
    const log = await logWith(1000, 1);
    const rt = runtime(log, () => undefined, { catchUp: { kind: 'skipForward', maxLagRecords: 100 } });
    await rt.start();
    await waitFor('the recent records', () => rt.stats.processed === 100);
    await rt.stop();
    const gaps = await listGaps(log, 'g');
    assert.equal(gaps.length, 1);
    assert.deepEqual(
      [gaps[0]?.topic, gaps[0]?.partition, gaps[0]?.from, gaps[0]?.to, gaps[0]?.reason],
      ['events', 0, 0, 900, 'skip_forward'],
    );
  });

  it('starts from the offsets a sink keeps, and leaves log offsets alone', async () => {
    const log = await logWith(10, 1);
    const seen: number[] = [];
    const rt = runtime(
      log,
      (r) => {
        seen.push(r.offset);
        return undefined;
      },
      { sinkOffsets: { committed: async () => new Map([[0, 7]]) } },
    );
    await rt.start();
    await waitFor('the rest', () => rt.stats.processed === 3);
    await rt.stop();
    assert.deepEqual(seen, [7, 8, 9]);
    assert.equal((await log.committedOffsets('g', 'events')).size, 0);
  });

  it('in a group, stops waiting for a partition the group has moved elsewhere meanwhile, and applies the newest assignment', async () => {
    const log = await logWith(100, 2);
    const both = [0, 1].map((partition) => ({ topic: 'events', partition }));
    let deliver: AssignmentListener = async () => undefined;
    // The group first gives this member both partitions, then (test's choice) only partition 0.
    log.joinGroup = async (_group, _topics, listener) => {
      deliver = listener;
      void listener(both);
      return {
        memberId: 'm',
        commit: (topic, offsets) => log.commitOffsets('g', topic, offsets),
        leave: async () => {},
      };
    };
    let waitingFor1 = false;
    let heldElsewhere = true;
    const declined: number[] = [];
    const seen = new Set<number>();
    const rt = runtime(
      log,
      (r) => {
        seen.add(r.partition);
        return undefined;
      },
      {
        groupMembership: true,
        sinkOffsets: {
          // Partition 1 is first held by another member, until this one is no longer assigned it.
          committed: async (_topic, partitions, stillAssigned) => {
            const out = new Map<number, number | 'declined'>();
            for (const p of partitions) {
              if (p === 1 && heldElsewhere) {
                waitingFor1 = true;
                while (stillAssigned(1)) await new Promise((r) => setTimeout(r, 10));
                declined.push(p);
                heldElsewhere = false;
                out.set(p, 'declined');
              } else out.set(p, 0);
            }
            return out;
          },
        },
      },
    );
    await rt.start();
    await waitFor('the sink to wait for partition 1', () => waitingFor1);
    void deliver([{ topic: 'events', partition: 0 }]);
    await waitFor('partition 0 to be processed', () => rt.stats.processed === 50);
    assert.deepEqual(declined, [1]);
    assert.deepEqual(rt.assignment, [{ topic: 'events', partition: 0 }]);
    assert.deepEqual([...seen], [0]);
    // Given back once its holder has let go, the partition is taken up.
    void deliver(both);
    await waitFor('partition 1 to be processed too', () => rt.stats.processed === 100);
    assert.deepEqual([...seen].sort(), [0, 1]);
    await rt.stop();
  });

  it('uses the batch form when a task offers it', async () => {
    const log = await logWith(1000, 1);
    const sizes: number[] = [];
    const rt = new WorkerRuntime({
      log,
      group: 'g',
      topics: ['events'],
      maxBatchRecords: 300,
      taskFactory: () => ({
        process: () => assert.fail('process is not used when processBatch exists'),
        processBatch: (records, o) => {
          sizes.push(records.length);
          o.success();
        },
      }),
      onError: quiet,
    });
    await rt.start();
    await waitFor('all', () => rt.stats.processed === 1000);
    await rt.stop();
    assert.ok(Math.max(...sizes) <= 300 && sizes.length < 1000 / 2);
  });
});

describe('worker runtime lifecycle', () => {
  it('stops gracefully: no new records, the in-flight one finishes and is committed', async () => {
    const log = await logWith(10, 1);
    let finishInFlight: (() => void) | undefined;
    const rt = runtime(log, (r) =>
      r.offset === 3
        ? (_, o) => {
            finishInFlight = () => o.success();
          }
        : undefined,
    );
    await rt.start();
    await waitFor('record 3 in flight', () => finishInFlight);
    const stopped = rt.stop(5000);
    setTimeout(() => finishInFlight?.(), 50);
    await stopped;
    assert.equal(rt.stats.processed, 4, 'records after the in-flight one were not started');
    assert.equal((await log.committedOffsets('g', 'events')).get(0), 4);
  });
});

describe('ScalingAdvisor', () => {
  it('scales out while the backlog grows and in only when nothing is in flight, within bounds', async () => {
    const { ScalingAdvisor } = await import('../../src/workers/index.ts');
    const advisor = new ScalingAdvisor(1, 3, 2);
    assert.equal(advisor.desiredWorkers(1, { lag: 10, inFlight: 5 }), 1);
    assert.equal(advisor.desiredWorkers(1, { lag: 20, inFlight: 5 }), 1);
    assert.equal(advisor.desiredWorkers(1, { lag: 30, inFlight: 5 }), 2, 'three growing samples');
    assert.equal(advisor.desiredWorkers(2, { lag: 25, inFlight: 5 }), 2, 'a shrinking backlog keeps the count');
    assert.equal(advisor.desiredWorkers(2, { lag: 0, inFlight: 1 }), 2, 'never scale in while work is in flight');
    assert.equal(advisor.desiredWorkers(2, { lag: 0, inFlight: 0 }), 1);
    assert.equal(advisor.desiredWorkers(1, { lag: 0, inFlight: 0 }), 1, 'never below min');
    assert.throws(() => new ScalingAdvisor(3, 2), /min <= max/);
  });
});
