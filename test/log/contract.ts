/**
 * The `Log` contract: one suite, run against every implementation (embedded, and Kafka through
 * a Kafka-protocol broker). Property-based where it fits.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { type Log, type LogRecord, partitionForKey, type RecordInput } from '../../src/log/index.ts';

/** How the suite gets a log of one implementation. */
export interface LogHarness {
  /** Opens the log (again): a reopen must see everything durable from before. */
  open(): Promise<Log>;
  /** Creates a topic, also where the broker needs help (the mock cannot create topics itself). */
  createTopic(log: Log, name: string, partitions: number): Promise<void>;
  /** Whether the implementation enforces retention itself in this setup. */
  retention: boolean;
  teardown(): Promise<void>;
}

let topicSeq = 0;
/** A fresh topic name for each test. */
export function freshTopic(prefix = 't'): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${topicSeq++}`;
}

/** Reads a whole partition from `from` to its latest offset. */
export async function readAll(log: Log, topic: string, partition: number, from = 0): Promise<LogRecord[]> {
  const latest = await log.latestOffset(topic, partition);
  const out: LogRecord[] = [];
  let offset = from;
  while (offset < latest) {
    const batch = await log.read(topic, partition, offset, { maxBytes: 256 * 1024 });
    assert.ok(batch.length > 0, `read at ${offset} of ${latest} returned nothing`);
    out.push(...batch);
    offset = (batch[batch.length - 1] as LogRecord).offset + 1;
  }
  return out;
}

const value = (s: string) => Buffer.from(s, 'utf8');

/** Runs the contract against one implementation. */
export function logContract(name: string, harness: () => Promise<LogHarness>): void {
  describe(`Log contract: ${name}`, () => {
    let h: LogHarness;
    let log: Log;
    before(async () => {
      h = await harness();
      log = await h.open();
    });
    after(async () => {
      await log?.close();
      await h?.teardown();
    });

    it('keeps per-partition order with dense offsets, for any sequence of appends (property)', async () => {
      const record = fc.record({
        key: fc.option(fc.string({ minLength: 1, maxLength: 12 }), { nil: null }),
        partition: fc.option(fc.integer({ min: 0, max: 2 }), { nil: undefined }),
      });
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.array(record, { minLength: 1, maxLength: 30 }), { minLength: 1, maxLength: 6 }),
          async (batches) => {
            const topic = freshTopic('order');
            await h.createTopic(log, topic, 3);
            // Each record carries its sequence number; where it must land is known unless its key is null.
            const expectedPartition: (number | undefined)[] = [];
            const ends = [0, 0, 0];
            for (const batch of batches) {
              const inputs: RecordInput[] = batch.map((r) => {
                const seq = expectedPartition.length;
                expectedPartition.push(r.partition ?? (r.key === null ? undefined : partitionForKey(r.key, 3)));
                return { key: r.key, value: value(String(seq)), partition: r.partition };
              });
              const ranges = await log.append(topic, inputs);
              assert.equal(
                ranges.reduce((n, r) => n + r.count, 0),
                batch.length,
                'every record is placed',
              );
              for (const range of ranges) {
                assert.equal(range.baseOffset, ends[range.partition], 'each append continues its partition densely');
                ends[range.partition] = range.baseOffset + range.count;
              }
            }
            const seen: number[] = [];
            for (let p = 0; p < 3; p++) {
              const records = await readAll(log, topic, p);
              assert.equal(await log.latestOffset(topic, p), ends[p]);
              assert.deepEqual(
                records.map((r) => r.offset),
                records.map((_, i) => i),
                'dense offsets from 0',
              );
              const seqs = records.map((r) => Number(r.value.toString()));
              assert.deepEqual(
                seqs,
                [...seqs].sort((a, b) => a - b),
                'append order is kept within the partition',
              );
              for (const seq of seqs) {
                const want = expectedPartition[seq];
                if (want !== undefined) assert.equal(p, want, `record ${seq} is on its key's partition`);
              }
              seen.push(...seqs);
            }
            assert.deepEqual(
              seen.sort((a, b) => a - b),
              expectedPartition.map((_, i) => i),
              'every record is read back exactly once',
            );
          },
        ),
        { numRuns: 12 },
      );
    });

    it("places keyed records on Kafka's murmur2 partition", async () => {
      const topic = freshTopic('keys');
      await h.createTopic(log, topic, 7);
      const keys = Array.from({ length: 60 }, (_, i) => `emission-${i * 7919}`);
      await log.append(
        topic,
        keys.map((k) => ({ key: k, value: value(k) })),
      );
      for (let p = 0; p < 7; p++) {
        for (const r of await readAll(log, topic, p)) {
          assert.equal(partitionForKey(r.key?.toString() ?? '', 7), p);
          assert.equal(r.key?.toString(), r.value.toString());
        }
      }
      const placed = (await Promise.all(Array.from({ length: 7 }, (_, p) => readAll(log, topic, p)))).flat();
      assert.equal(placed.length, keys.length);
    });

    it('round-trips keys, values, timestamps and headers', async () => {
      const topic = freshTopic('fields');
      await h.createTopic(log, topic, 1);
      const ts = Date.UTC(2026, 10, 21, 10, 0, 0, 123);
      await log.append(topic, [
        { key: 'k', value: value('v1'), timestamp: ts, headers: { source: 'dc1', raw: Buffer.from([0, 255]) } },
        { key: null, value: Buffer.alloc(0), timestamp: ts + 1 },
      ]);
      const [a, b] = await readAll(log, topic, 0);
      assert.equal(a?.key?.toString(), 'k');
      assert.equal(a?.value.toString(), 'v1');
      assert.equal(a?.timestamp, ts);
      assert.equal(a?.headers.source?.toString(), 'dc1');
      assert.deepEqual([...(a?.headers.raw ?? [])], [0, 255]);
      assert.equal(b?.key, null);
      assert.equal(b?.value.length, 0);
      assert.equal(b?.timestamp, ts + 1);
    });

    it('reads from any offset, bounded by maxBytes, at least one record', async () => {
      const topic = freshTopic('reads');
      await h.createTopic(log, topic, 1);
      for (let b = 0; b < 5; b++) {
        await log.append(
          topic,
          Array.from({ length: 20 }, (_, i) => ({ partition: 0, value: value(`${b * 20 + i}`.padStart(50, '.')) })),
        );
      }
      const mid = await log.read(topic, 0, 37, { maxBytes: 1 });
      assert.ok(mid.length >= 1);
      assert.equal(mid[0]?.offset, 37);
      assert.equal(mid[0]?.value.toString().replace(/^\.+/, ''), '37');
      assert.deepEqual(await log.read(topic, 0, 100), []);
      assert.equal(await log.earliestOffset(topic, 0), 0);
      assert.equal(await log.latestOffset(topic, 0), 100);
      await assert.rejects(
        log.read(topic, 0, 101),
        (e: { code?: string }) => e.code === 'RECKON_LOG_OFFSET_OUT_OF_RANGE',
      );
    });

    it('tails: a waiting read returns records appended while it waits', async () => {
      const topic = freshTopic('tail');
      await h.createTopic(log, topic, 1);
      const started = Date.now();
      const pending = log.read(topic, 0, 0, { waitMs: 5000 });
      setTimeout(() => void log.append(topic, [{ partition: 0, value: value('late') }]), 100);
      const records = await pending;
      assert.equal(records[0]?.value.toString(), 'late');
      assert.ok(Date.now() - started < 4000, 'woke up on the append, not at the deadline');
    });

    it('commits group offsets durably: they survive closing and reopening the log', async () => {
      const topic = freshTopic('groups');
      await h.createTopic(log, topic, 3);
      await log.append(
        topic,
        [0, 1, 2].map((p) => ({ partition: p, value: value('x') })),
      );
      await log.commitOffsets('reckon-test', topic, [
        { partition: 0, offset: 1 },
        { partition: 2, offset: 1 },
      ]);
      await log.commitOffsets('reckon-test', topic, [{ partition: 0, offset: 0 }]);
      await log.close();
      log = await h.open();
      const committed = await log.committedOffsets('reckon-test', topic);
      assert.equal(committed.get(0), 0);
      assert.equal(committed.get(2), 1);
      assert.equal(committed.has(1), false);
      assert.equal((await log.committedOffsets('another-group', topic)).size, 0);
      assert.equal((await readAll(log, topic, 1)).length, 1, 'appended records survive the reopen too');
    });

    it('refuses unknown topics and partitions with typed errors', async () => {
      const topic = freshTopic('known');
      await h.createTopic(log, topic, 2);
      await assert.rejects(log.read(topic, 2, 0), (e: { code?: string }) => e.code === 'RECKON_LOG_UNKNOWN_PARTITION');
      await assert.rejects(
        log.append(topic, [{ partition: 5, value: value('x') }]),
        (e: { code?: string }) => e.code === 'RECKON_LOG_UNKNOWN_PARTITION',
      );
      await assert.rejects(
        log.partitionCount(freshTopic('missing')),
        (e: { code?: string }) => e.code === 'RECKON_LOG_UNKNOWN_TOPIC',
      );
      assert.equal(await log.partitionCount(topic), 2);
    });

    it('applies retention by size and by age, keeping offsets of what remains', async (t) => {
      if (!h.retention) {
        t.diagnostic('retention is enforced by the broker, which this setup cannot configure');
        return;
      }
      const topic = freshTopic('retention');
      await h.createTopic(log, topic, 1);
      const old = Date.now() - 3 * 86_400_000;
      for (let b = 0; b < 40; b++) {
        await log.append(
          topic,
          Array.from({ length: 50 }, () => ({
            partition: 0,
            value: Buffer.alloc(100, b),
            timestamp: b < 20 ? old : Date.now(),
          })),
        );
      }
      await log.createTopic({ name: topic, partitions: 1, retention: { ms: 86_400_000 } });
      const byAge = await log.applyRetention();
      assert.ok(byAge.segmentsDeleted > 0, 'old segments are removed');
      const earliest = await log.earliestOffset(topic, 0);
      assert.ok(earliest > 0 && earliest <= 1000, `earliest ${earliest} is past the old records only`);
      const rest = await readAll(log, topic, 0, earliest);
      assert.equal(rest[0]?.offset, earliest);
      assert.equal(rest.length, 2000 - earliest);
      await assert.rejects(
        log.read(topic, 0, 0),
        (e: { code?: string }) => e.code === 'RECKON_LOG_OFFSET_OUT_OF_RANGE',
      );
      await log.createTopic({ name: topic, partitions: 1, retention: { bytes: 60_000 } });
      await log.applyRetention();
      const left = await readAll(log, topic, 0, await log.earliestOffset(topic, 0));
      assert.ok(left.length < 1000 && left.length > 0, `size retention keeps the newest records (${left.length})`);
      assert.equal(left[left.length - 1]?.offset, 1999);
    });
  });
}
