import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openEmbeddedLog, partitionForKey } from '../../src/log/index.ts';
import { SeededRandom } from '../../src/sim/index.ts';
import { waitFor } from '../support/wait.ts';
import { readAll } from './contract.ts';

const TSX = import.meta.resolve('tsx');
const support = (name: string) => new URL(`../support/${name}`, import.meta.url).pathname;
const tempDir = () => mkdtempSync(join(tmpdir(), 'reckon-elog-'));
const quiet = { retentionIntervalMs: 0, onWarning: () => undefined };

function segmentFiles(dir: string, topic: string, partition: number): string[] {
  const p = join(dir, 'topics', topic, String(partition));
  return readdirSync(p)
    .filter((n) => n.endsWith('.log'))
    .sort()
    .map((n) => join(p, n));
}

function lines(child: ChildProcess, onLine: (line: string) => void): void {
  let buffered = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      onLine(buffered.slice(0, nl));
      buffered = buffered.slice(nl + 1);
    }
  });
}

describe('embedded log', () => {
  it('truncates a torn tail on open, reports it, and keeps offsets dense afterwards', async () => {
    const dir = tempDir();
    const warnings: string[] = [];
    let log = await openEmbeddedLog({ dir, ...quiet });
    await log.createTopic({ name: 't', partitions: 1 });
    await log.append(
      't',
      Array.from({ length: 10 }, (_, i) => ({ value: Buffer.from(`r${i}`) })),
    );
    await log.close();
    const [segment] = segmentFiles(dir, 't', 0);
    const before = statSync(segment as string).size;
    // A batch that was being written when the machine stopped: header and half a body.
    const torn = Buffer.from(readFileSync(segment as string).subarray(0, 40));
    appendFileSync(segment as string, torn);
    log = await openEmbeddedLog({ dir, retentionIntervalMs: 0, onWarning: (m) => warnings.push(m) });
    assert.equal(statSync(segment as string).size, before);
    assert.match(warnings.join('\n'), /truncated 40 bytes of unacknowledged torn tail/);
    assert.equal(await log.latestOffset('t', 0), 10);
    const [range] = await log.append('t', [{ value: Buffer.from('r10') }]);
    assert.equal(range?.baseOffset, 10);
    assert.deepEqual(
      (await readAll(log, 't', 0)).map((r) => r.value.toString()),
      Array.from({ length: 11 }, (_, i) => `r${i}`),
    );
    await log.close();
  });

  it('refuses to open a log whose acknowledged data is corrupt, and never returns corrupt records', async () => {
    const dir = tempDir();
    const log = await openEmbeddedLog({ dir, ...quiet });
    await log.createTopic({ name: 't', partitions: 1 });
    await log.append('t', [{ value: Buffer.from('first') }]);
    await log.append('t', [{ value: Buffer.from('second') }]);
    // A reader in another process sees the flipped byte as a CRC failure, not as data.
    const [segment] = segmentFiles(dir, 't', 0);
    const bytes = readFileSync(segment as string);
    bytes[40] = (bytes[40] as number) ^ 0xff;
    writeFileSync(segment as string, bytes);
    const reader = await openEmbeddedLog({ dir, role: 'reader', ...quiet });
    await assert.rejects(
      reader.read('t', 0, 0),
      (e: { code?: string; message: string }) => e.code === 'RECKON_LOG_CORRUPT' && /fails its CRC/.test(e.message),
    );
    await reader.close();
    await log.close();
    await assert.rejects(
      openEmbeddedLog({ dir, ...quiet }).then((l) => l.partitionCount('t')),
      (e: { code?: string; message: string }) =>
        e.code === 'RECKON_LOG_CORRUPT' && /inside acknowledged data/.test(e.message),
    );
  });

  it('cuts off unacknowledged bytes past the durable end even when a valid batch follows a hole', async () => {
    const dir = tempDir();
    let log = await openEmbeddedLog({ dir, ...quiet });
    await log.createTopic({ name: 't', partitions: 1 });
    await log.append('t', [{ value: Buffer.from('kept') }]);
    await log.close();
    const [segment] = segmentFiles(dir, 't', 0);
    const acknowledged = readFileSync(segment as string);
    // Parallel writes cut short by a crash: a hole (zeros) where one batch was going, then a whole later batch.
    appendFileSync(segment as string, Buffer.concat([Buffer.alloc(acknowledged.length), acknowledged]));
    const warnings: string[] = [];
    log = await openEmbeddedLog({ dir, retentionIntervalMs: 0, onWarning: (m) => warnings.push(m) });
    assert.match(warnings.join('\n'), /unacknowledged torn tail/);
    assert.deepEqual(
      (await readAll(log, 't', 0)).map((r) => r.value.toString()),
      ['kept'],
    );
    await log.close();
  });

  it('explains a missing directory, a foreign directory, an unusable path and an incompatible version', async () => {
    const dir = tempDir();
    await assert.rejects(
      openEmbeddedLog({ dir: join(dir, 'nope'), role: 'reader' }),
      /does not exist: start the writer first/,
    );
    writeFileSync(join(dir, 'notes.txt'), 'hello');
    await assert.rejects(openEmbeddedLog({ dir }), /is not empty and is not a reckon log/);
    await assert.rejects(
      openEmbeddedLog({ dir: join(dir, 'notes.txt', 'log') }),
      (e: { code?: string }) => e.code === 'RECKON_LOG_NOT_WRITABLE',
    );
    const other = tempDir();
    writeFileSync(join(other, 'reckon-log.json'), JSON.stringify({ format: 'reckon-log', version: 99 }));
    await assert.rejects(
      openEmbeddedLog({ dir: other }),
      /holds format reckon-log version 99; this reckon reads reckon-log version 1/,
    );
  });

  it('allows one writer per directory, refusing a second one while the first lives', async () => {
    const dir = tempDir();
    const log = await openEmbeddedLog({ dir, ...quiet });
    writeFileSync(join(dir, 'writer.lock'), String(process.ppid));
    await assert.rejects(openEmbeddedLog({ dir, ...quiet }), /another process \(pid \d+\) is writing the log/);
    writeFileSync(join(dir, 'writer.lock'), String(process.pid));
    await log.close();
  });

  it('lets a reader in another process tail the log without polling', async () => {
    const dir = tempDir();
    const log = await openEmbeddedLog({ dir, ...quiet });
    await log.createTopic({ name: 'tail', partitions: 2 });
    const child = spawn(process.execPath, ['--import', TSX, support('log-tailer.ts'), dir, 'tail', '1', '30'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const got: string[] = [];
    lines(child, (l) => got.push(l));
    try {
      await waitFor('the reader to start', () => got.includes('ready'));
      for (let i = 0; i < 30; i += 10) {
        await log.append(
          'tail',
          Array.from({ length: 10 }, (_, j) => ({ partition: 1, value: Buffer.from(`v${i + j}`) })),
        );
      }
      await waitFor('the reader to see all records', () => got.includes('done'), 15_000);
      assert.deepEqual(
        got.filter((l) => l.startsWith('v')),
        Array.from({ length: 30 }, (_, i) => `v${i}`),
      );
    } finally {
      child.kill('SIGKILL');
      await log.close();
    }
  });

  it("forwards a reader's appends and topic creation to the writer, and says so when no writer runs", async () => {
    const dir = tempDir();
    let writer = await openEmbeddedLog({ dir, ...quiet });
    await writer.createTopic({ name: 'fw', partitions: 2 });
    await writer.close();
    const reader = await openEmbeddedLog({ dir, role: 'reader' });
    try {
      await assert.rejects(
        reader.append('fw', [{ value: Buffer.from('x') }]),
        (e: { code?: string; retriable?: boolean; message?: string }) =>
          e.code === 'RECKON_LOG_WRITER_UNAVAILABLE' && e.retriable === true && /must be running/.test(e.message ?? ''),
      );
      writer = await openEmbeddedLog({ dir, ...quiet });
      await writer.append('fw', [{ partition: 1, value: Buffer.from('from the writer') }]);
      const ranges = await reader.append('fw', [
        { key: 'k', value: Buffer.from('keyed'), timestamp: 1234, headers: { h: 'v', b: Buffer.from([0, 1]) } },
        { partition: 1, value: Buffer.alloc(0) },
        { partition: 1, key: Buffer.from([255]), value: Buffer.from('bytes key') },
      ]);
      // The keyed record goes to murmur2's partition of "k"; the two others to partition 1, after the writer's own record.
      const keyPartition = partitionForKey('k', 2);
      const expected =
        keyPartition === 1
          ? [[1, 1, 3]]
          : [
              [keyPartition, 0, 1],
              [1, 1, 2],
            ];
      assert.deepEqual(ranges.map((r) => [r.partition, r.baseOffset, r.count]).sort(), expected);
      const all = [...(await readAll(writer, 'fw', 0)), ...(await readAll(writer, 'fw', 1))];
      const k = all.find((r) => r.value.toString() === 'keyed');
      assert.equal(k?.key?.toString(), 'k');
      assert.equal(k?.timestamp, 1234);
      assert.deepEqual({ ...k?.headers }, { h: Buffer.from('v'), b: Buffer.from([0, 1]) });
      assert.deepEqual(
        (await readAll(writer, 'fw', 1))
          .filter((r) => r.value.toString() !== 'keyed')
          .map((r) => [r.offset, r.value.toString()]),
        [
          [0, 'from the writer'],
          [1, ''],
          [2, 'bytes key'],
        ],
      );
      await reader.createTopic({ name: 'made-by-a-reader', partitions: 3 });
      assert.equal(await writer.partitionCount('made-by-a-reader'), 3);
      await assert.rejects(reader.createTopic({ name: 'fw', partitions: 5 }), /exists with 2 partitions, not 5/);
      await assert.rejects(reader.append('nope', [{ value: Buffer.from('x') }]), /topic "nope" does not exist/);
    } finally {
      await reader.close();
      await writer.close();
    }
  });

  it('a reader forwarding appends loses nothing acknowledged when the writer is SIGKILLed and restarted', async (t) => {
    const dir = tempDir();
    const setup = await openEmbeddedLog({ dir, ...quiet });
    await setup.createTopic({ name: 'crash', partitions: 3 });
    await setup.close();
    const reader = await openEmbeddedLog({ dir, role: 'reader' });
    const acknowledged = new Set<string>();
    let refused = 0;
    try {
      for (let round = 0; round < 5; round++) {
        const child = spawn(
          process.execPath,
          ['--import', TSX, support('log-appender.ts'), dir, String(1e9 * (round + 1))],
          {
            stdio: ['ignore', 'pipe', 'inherit'],
          },
        );
        let ready = false;
        lines(child, (l) => {
          if (l === 'ready') ready = true;
        });
        const exited = new Promise((r) => child.once('exit', r));
        await waitFor('the writer to start', () => ready, 20_000);
        // Forward appends while the writer also appends, then kill the writer mid-stream.
        const forwarded: Promise<void>[] = [];
        let stop = false;
        const pump = async (lane: number) => {
          for (let i = 0; !stop; i++) {
            const value = `r${round}-l${lane}-${i}`;
            try {
              await reader.append('crash', [{ partition: lane % 3, value: Buffer.from(value) }]);
              acknowledged.add(value);
            } catch (e) {
              assert.equal((e as { code?: string }).code, 'RECKON_LOG_WRITER_UNAVAILABLE');
              refused++;
              return;
            }
          }
        };
        for (let lane = 0; lane < 4; lane++) forwarded.push(pump(lane));
        await waitFor('forwarded appends to be acknowledged', () => acknowledged.size > (round + 1) * 20, 20_000, 5);
        child.kill('SIGKILL');
        await exited;
        stop = true;
        await Promise.all(forwarded);
      }
    } finally {
      await reader.close();
    }
    const log = await openEmbeddedLog({ dir, ...quiet });
    const present = new Set<string>();
    for (let p = 0; p < 3; p++) for (const r of await readAll(log, 'crash', p)) present.add(r.value.toString());
    await log.close();
    const lost = [...acknowledged].filter((v) => !present.has(v));
    assert.deepEqual(lost, [], 'every forwarded append that was acknowledged is in the log');
    t.diagnostic(
      `${acknowledged.size} forwarded appends acknowledged across 5 writer kills, ${refused} refused as the writer died`,
    );
  });

  it('loses no acknowledged record and returns nothing corrupt across 50 SIGKILLs of a writing process', async (t) => {
    const dir = tempDir();
    const rng = new SeededRandom(20261123);
    const acked: { partition: number; baseOffset: number; count: number; first: number }[] = [];
    let nextSeq = 0;
    let torn = 0;
    for (let kill = 0; kill < 50; kill++) {
      const child = spawn(process.execPath, ['--import', TSX, support('log-appender.ts'), dir, String(nextSeq)], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let ready = false;
      let stderr = '';
      child.stderr?.on('data', (c: Buffer) => {
        stderr += c.toString();
      });
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      const before = acked.length;
      lines(child, (line) => {
        if (line === 'ready') ready = true;
        const m = /^ack (\d+) (\d+) (\d+) (\d+)$/.exec(line);
        if (m)
          acked.push({ partition: Number(m[1]), baseOffset: Number(m[2]), count: Number(m[3]), first: Number(m[4]) });
      });
      await waitFor(`appender ${kill} to start (${stderr})`, () => ready, 20_000);
      await waitFor('a first acknowledgement', () => acked.length > before, 20_000);
      await new Promise((r) => setTimeout(r, rng.int(60)));
      child.kill('SIGKILL');
      await exited;
      if (/torn tail/.test(stderr)) torn++;
      // Every acknowledged record is there, intact, at its offset; offsets are dense; nothing corrupt is returned.
      const log = await openEmbeddedLog({ dir, ...quiet, onWarning: () => torn++ });
      const partitions = await Promise.all([0, 1, 2].map((p) => readAll(log, 'crash', p)));
      for (const [p, records] of partitions.entries()) {
        assert.deepEqual(
          records.map((r) => r.offset),
          records.map((_, i) => i),
          `dense offsets in partition ${p}`,
        );
      }
      for (const a of acked) {
        const records = partitions[a.partition] ?? [];
        for (let i = 0; i < a.count; i++) {
          assert.equal(
            records[a.baseOffset + i]?.value.toString().replace(/^#+/, ''),
            String(a.first + i),
            `acknowledged record ${a.first + i}`,
          );
        }
      }
      // Continue numbering after everything that reached the log, acknowledged or not.
      const maxSeq = Math.max(-1, ...partitions.flat().map((r) => Number(r.value.toString().replace(/^#+/, ''))));
      nextSeq = Math.max(nextSeq, maxSeq + 1);
      await log.close();
    }
    assert.ok(acked.length >= 50, `${acked.length} acknowledged batches`);
    t.diagnostic(`crash test: 50 kills, ${acked.length} acknowledged batches verified, ${torn} torn tails truncated`);
  });
});

describe('embedded log rolls', () => {
  it('recovers from a roll that did not finish by dropping the unacknowledged later segment', async () => {
    const dir = tempDir();
    let log = await openEmbeddedLog({ dir, ...quiet, segmentBytes: 65_536 });
    await log.createTopic({ name: 't', partitions: 1 });
    for (let i = 0; i < 3; i++)
      await log.append(
        't',
        Array.from({ length: 300 }, (_, j) => ({ value: Buffer.alloc(100, i * 300 + j) })),
      );
    await log.close();
    const segments = segmentFiles(dir, 't', 0);
    assert.ok(segments.length >= 2, 'the appends rolled a segment');
    const penultimate = segments[segments.length - 2] as string;
    const hwPath = join(dir, 'topics', 't', '0', 'hw');
    // The crash came after the new segment was created but before the full one was sealed and acknowledged:
    // the summary is missing and the published end still lies in the full segment.
    rmSync(penultimate.replace(/\.log$/, '.sealed'));
    const base = Number(penultimate.split('/').pop()?.slice(0, 20));
    const { encodeHighWatermark } = await import('../../src/log/files.ts');
    writeFileSync(hwPath, encodeHighWatermark({ nextOffset: base + 1, segmentBase: base, segmentSize: 1 }));
    const warnings: string[] = [];
    log = await openEmbeddedLog({
      dir,
      retentionIntervalMs: 0,
      onWarning: (m) => warnings.push(m),
      segmentBytes: 65_536,
    });
    assert.match(warnings.join('\n'), /removed 1 unacknowledged segment/);
    assert.equal(segmentFiles(dir, 't', 0).length, segments.length - 1);
    const records = await readAll(log, 't', 0);
    assert.deepEqual(
      records.map((r) => r.offset),
      records.map((_, i) => i),
    );
    await log.close();
  });
});
