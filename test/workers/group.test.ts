import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { describe, it, type TestContext } from 'node:test';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assignRoundRobin, KafkaLog, type Log, openEmbeddedLog, type TopicPartition } from '../../src/log/index.ts';
import { startMockKafka } from '../support/kafka-mock.ts';
import { ensureGroupTopics } from '../../src/workers/index.ts';
import { waitFor } from '../support/wait.ts';

const TSX = import.meta.resolve('tsx');
const CONSUMER = new URL('../support/group-consumer.ts', import.meta.url).pathname;

interface Member {
  child: ChildProcess;
  assigned: number[];
  processed: Set<number>;
}

function member(kind: string, where: string): Member {
  const child = spawn(process.execPath, ['--import', TSX, CONSUMER, kind, where], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const m: Member = { child, assigned: [], processed: new Set() };
  let buffered = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line.startsWith('assigned ')) m.assigned = JSON.parse(line.slice(9)) as number[];
      if (line.startsWith('processed ')) m.processed.add(Number(line.slice(10)));
    }
  });
  child.stderr?.resume();
  return m;
}

/**
 * Two member processes of group `g` share 4 partitions; after A is killed, B owns them all; every
 * record is processed at least once.
 */
async function shareAndTakeOver(t: TestContext, log: Log, kind: string, where: string): Promise<void> {
  const members: Member[] = [];
  try {
    await log.createTopic({ name: 'events', partitions: 4 });
    // librdkafka's mock has no CreateTopics: the test creates the group topics for its members.
    await ensureGroupTopics(log, 'g');
    let next = 0;
    const produce = async (n: number) => {
      await log.append(
        'events',
        Array.from({ length: n }, () => ({ partition: next % 4, value: Buffer.from(String(next++)) })),
      );
    };
    await produce(200);
    const a = member(kind, where);
    members.push(a);
    await waitFor('the first member to own every partition', () => a.assigned.length === 4, 30_000);
    const b = member(kind, where);
    members.push(b);
    await waitFor(
      'the partitions to be shared',
      () => a.assigned.length === 2 && b.assigned.length === 2 && new Set([...a.assigned, ...b.assigned]).size === 4,
      30_000,
    );
    await produce(200);
    await waitFor('both members to process', () => a.processed.size > 0 && b.processed.size > 0, 30_000);
    const killedAt = Date.now();
    a.child.kill('SIGKILL');
    await waitFor('the survivor to take every partition', () => b.assigned.length === 4, 30_000);
    const takeover = Date.now() - killedAt;
    await produce(200);
    await waitFor(
      'every record to be processed at least once',
      () => new Set([...a.processed, ...b.processed]).size === 600,
      30_000,
    );
    t.diagnostic(
      `${kind}: member A processed ${a.processed.size}, member B ${b.processed.size} of 600 records; takeover after ${takeover} ms`,
    );
  } finally {
    for (const m of members) m.child.kill('SIGKILL');
  }
}

describe('consumer groups', () => {
  it('deals partitions round-robin over sorted members, the same on every member', () => {
    const parts = [0, 1, 2, 3, 4].map((partition) => ({ topic: 't', partition }));
    const a = assignRoundRobin(['m2', 'm1'], parts, 'm1').map((p) => p.partition);
    const b = assignRoundRobin(['m1', 'm2'], parts, 'm2').map((p) => p.partition);
    assert.deepEqual(a, [0, 2, 4]);
    assert.deepEqual(b, [1, 3]);
    assert.deepEqual(assignRoundRobin(['m1'], parts, 'gone'), []);
  });

  it('on the embedded log, two consumer processes share the partitions, and one takes over when the other is killed', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'reckon-group-'));
    const log = await openEmbeddedLog({ dir, retentionIntervalMs: 0 });
    try {
      await shareAndTakeOver(t, log, 'embedded', dir);
    } finally {
      await log.close();
    }
  });

  it('on the embedded log, a member applying an assignment keeps its heartbeat and hears newer assignments at once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reckon-group-'));
    const log = await openEmbeddedLog({ dir, retentionIntervalMs: 0 });
    try {
      await log.createTopic({ name: 'events', partitions: 4 });
      const partitionsOf = (tps: TopicPartition[]) => tps.map((tp) => tp.partition);
      let aHolds: number[] = [];
      const a = await log.joinGroup('g', ['events'], async (tps) => {
        aHolds = partitionsOf(tps);
      });
      assert.deepEqual(aHolds, [0, 1, 2, 3]);
      // B's first assignment takes as long as the test says (a partition still being handed over).
      const bHeard: number[][] = [];
      let finishFirst: () => void = () => undefined;
      const firstApplied = new Promise<void>((r) => (finishFirst = r));
      const bJoined = log.joinGroup('g', ['events'], (tps) => {
        bHeard.push(partitionsOf(tps));
        return bHeard.length === 1 ? firstApplied : Promise.resolve();
      });
      await waitFor('B to hear its first assignment', () => bHeard.length === 1, 5_000);
      await waitFor('A to give B half the partitions', () => aHolds.length === 2, 5_000);
      const members = join(dir, 'groups', 'g', 'members');
      const bFile = () => readdirSync(members).find((f) => f.endsWith('.json') && !f.startsWith(`${a.memberId}.`));
      const beatOf = () =>
        (JSON.parse(readFileSync(join(members, bFile() as string), 'utf8')) as { heartbeatAt: number }).heartbeatAt;
      const firstBeat = beatOf();
      await waitFor(
        'B to renew its membership while its first assignment is unfinished',
        () => beatOf() > firstBeat,
        5_000,
      );
      await a.leave();
      await waitFor(
        'B to hear, before its first assignment is done, that it now has every partition',
        () => bHeard.length === 2,
        5_000,
      );
      assert.equal(bHeard[0]?.length, 2);
      assert.deepEqual(bHeard[1], [0, 1, 2, 3]);
      finishFirst();
      const b = await bJoined;
      await b.leave();
    } finally {
      await log.close();
    }
  });

  it('on Kafka, two consumer processes share the partitions, and one takes over when the other is killed', async (t) => {
    const mock = await startMockKafka(3);
    const log = await KafkaLog.connect({
      brokers: mock.brokers,
      createTopic: (spec) => mock.createTopic(spec.name, spec.partitions),
    });
    try {
      await shareAndTakeOver(t, log, 'kafka', mock.brokers.join(','));
    } finally {
      await log.close();
      await mock.stop();
    }
  });

  it('on Kafka, a group member is assigned every partition, processes them and commits through the group', async () => {
    const mock = await startMockKafka(3);
    const log = await KafkaLog.connect({
      brokers: mock.brokers,
      createTopic: (spec) => mock.createTopic(spec.name, spec.partitions),
    });
    let m: Member | undefined;
    try {
      await log.createTopic({ name: 'events', partitions: 4 });
      await ensureGroupTopics(log, 'g');
      await log.append(
        'events',
        Array.from({ length: 100 }, (_, i) => ({ partition: i % 4, value: Buffer.from(String(i)) })),
      );
      m = member('kafka', mock.brokers.join(','));
      const joined = m;
      await waitFor('the member to own every partition', () => joined.assigned.length === 4, 30_000);
      await waitFor('every record', () => joined.processed.size === 100, 30_000);
      await waitFor(
        'the committed offsets',
        async () => {
          const c = await log.committedOffsets('g', 'events');
          return [0, 1, 2, 3].every((p) => c.get(p) === 25);
        },
        15_000,
        100,
      );
    } finally {
      m?.child.kill('SIGKILL');
      await log.close();
      await mock.stop();
    }
  });
});
