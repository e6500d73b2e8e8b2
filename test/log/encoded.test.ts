import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { BatchBuilder, type EncodedBatch, type Log, openEmbeddedLog, type RecordInput } from '../../src/log/index.ts';
import { SeededRandom } from '../../src/sim/index.ts';
import { readAll } from './contract.ts';

const quiet = { retentionIntervalMs: 0, onWarning: () => undefined };
const PARTITIONS = 3;

/** The encoded batches a builder drained, as views of one buffer. */
function drained(builder: BatchBuilder): EncodedBatch[] {
  const bytes = Buffer.alloc(builder.byteLength);
  const list: number[] = [];
  builder.drainTo(bytes, 0, list);
  const batches: EncodedBatch[] = [];
  for (let i = 0; i < list.length; i += 4)
    batches.push({ partition: list[i]!, bytes: bytes.subarray(list[i + 1]!, list[i + 2]!), count: list[i + 3]! });
  return batches;
}

/** Every record of the topic, partition by partition, as plain values. */
async function contents(log: Log, topic: string) {
  const out: unknown[] = [];
  for (let p = 0; p < PARTITIONS; p++) {
    for (const r of await readAll(log, topic, p))
      out.push([p, r.offset, r.key?.toString('hex'), r.value.toString('hex'), r.timestamp]);
  }
  return out;
}

/** Records with ids for keys, some values far larger than the builder's first scratch space. */
function records(random: SeededRandom, n: number): RecordInput[] {
  return Array.from({ length: n }, (_, i) => ({
    key: `e-${random.int(50)}-${i % 7 === 0 ? 'ü' : ''}${i}`,
    value: Buffer.alloc(random.int(10) === 0 ? 100_000 : random.between(1, 300), i % 251),
    timestamp: 1_700_000_000_000 + random.int(86_400_000),
  }));
}

describe('encoded batches (BatchBuilder, Log.appendEncoded)', () => {
  it('append the same records to the same partitions and offsets as Log.append', async () => {
    const dirs = [mkdtempSync(join(tmpdir(), 'reckon-enc-')), mkdtempSync(join(tmpdir(), 'reckon-enc-'))];
    const [encoded, plain] = await Promise.all(dirs.map((dir) => openEmbeddedLog({ dir, ...quiet })));
    try {
      for (const log of [encoded!, plain!]) await log.createTopic({ name: 't', partitions: PARTITIONS });
      const random = new SeededRandom(11);
      const builder = new BatchBuilder(PARTITIONS);
      for (let round = 0; round < 12; round++) {
        const batch = records(random, random.between(1, 400));
        for (const [i, r] of batch.entries()) {
          const key = r.key as string;
          if (i % 2 === 0) {
            // Keys given as bytes inside a larger buffer, as the collector's parse threads give them.
            const line = Buffer.from(`{"id":"${key}"}`);
            const start = line.indexOf(key);
            builder.add(line, start, start + Buffer.byteLength(key), r.value, 0, r.value.length, r.timestamp!);
          } else {
            builder.addStringKey(key, r.value, 0, r.value.length, r.timestamp!);
          }
        }
        assert.equal(builder.count, batch.length);
        const ranges = await encoded!.appendEncoded!('t', drained(builder));
        const expected = await plain!.append('t', batch);
        assert.deepEqual(
          [...ranges].sort((a, b) => a.partition - b.partition),
          [...expected].sort((a, b) => a.partition - b.partition),
        );
        assert.equal(builder.count, 0, 'the builder starts over after draining');
      }
      assert.deepEqual(await contents(encoded!, 't'), await contents(plain!, 't'));
      // The records survive a reopen: the batches' CRCs and offsets are those the log checks.
      await encoded!.close();
      const reopened = await openEmbeddedLog({ dir: dirs[0]!, ...quiet });
      assert.deepEqual(await contents(reopened, 't'), await contents(plain!, 't'));
      await reopened.close();
    } finally {
      await plain!.close();
      await encoded!.close().catch(() => undefined);
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a batch whose header disagrees with it, and appends none of the call', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reckon-enc-'));
    const log = await openEmbeddedLog({ dir, ...quiet });
    try {
      await log.createTopic({ name: 't', partitions: PARTITIONS });
      const builder = new BatchBuilder(PARTITIONS);
      for (const r of records(new SeededRandom(3), 60))
        builder.addStringKey(r.key as string, r.value, 0, r.value.length, r.timestamp!);
      const batches = drained(builder);
      assert.ok(batches.length >= 2);
      const wrongCount = batches.map((b, i) => (i === 1 ? { ...b, count: b.count + 1 } : b));
      await assert.rejects(log.appendEncoded!('t', wrongCount), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'RECKON_LOG_BAD_BATCH');
        assert.match(e.message, /t\/\d+ cannot be appended: its header says \d+ records, it is given as \d+/);
        return true;
      });
      const cut = batches.map((b, i) => (i === 0 ? { ...b, bytes: b.bytes.subarray(0, b.bytes.length - 1) } : b));
      await assert.rejects(log.appendEncoded!('t', cut), /its header says \d+ bytes, it has \d+/);
      await assert.rejects(log.appendEncoded!('t', [{ ...batches[0]!, partition: PARTITIONS }]), /partition/);
      for (let p = 0; p < PARTITIONS; p++) assert.equal(await log.latestOffset('t', p), 0, 'nothing was appended');
      await log.appendEncoded!('t', batches);
      let total = 0;
      for (let p = 0; p < PARTITIONS; p++) total += await log.latestOffset('t', p);
      assert.equal(total, 60);
    } finally {
      await log.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('are forwarded as their records by a reader process to the writer', async () => {
    const dirs = [mkdtempSync(join(tmpdir(), 'reckon-enc-')), mkdtempSync(join(tmpdir(), 'reckon-enc-'))];
    const writer = await openEmbeddedLog({ dir: dirs[0]!, ...quiet });
    const plain = await openEmbeddedLog({ dir: dirs[1]!, ...quiet });
    const reader = await openEmbeddedLog({ dir: dirs[0]!, role: 'reader', ...quiet });
    try {
      for (const log of [writer, plain]) await log.createTopic({ name: 't', partitions: PARTITIONS });
      const batch = records(new SeededRandom(5), 200);
      const builder = new BatchBuilder(PARTITIONS);
      for (const r of batch) builder.addStringKey(r.key as string, r.value, 0, r.value.length, r.timestamp!);
      await reader.appendEncoded!('t', drained(builder));
      await plain.append('t', batch);
      assert.deepEqual(await contents(writer, 't'), await contents(plain, 't'));
    } finally {
      await reader.close();
      await writer.close();
      await plain.close();
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    }
  });
});
