/**
 * Consumer-group membership of the embedded log, for worker processes on one machine: each
 * member keeps a lease file `groups/<group>/members/<memberId>.json` fresh; a member whose
 * lease is stale, or whose process is gone, is dead. Every member computes the same assignment
 * (partitions dealt round-robin over the sorted live members), so no coordinator is needed.
 * While membership changes, two members may briefly process one partition: at-least-once.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { processAlive } from './files.ts';
import type { AssignmentListener, GroupMember, Log, PartitionOffset, TopicPartition } from './types.ts';

/** How often a member renews its lease and re-reads the group. */
export const GROUP_HEARTBEAT_MS = 500;
/** A lease older than this is dead. */
export const GROUP_SESSION_MS = 5000;

interface Lease {
  pid: number;
  heartbeatAt: number;
}

/** Deals partitions round-robin over members, both sorted: every member computes the same result. */
export function assignRoundRobin(members: string[], partitions: TopicPartition[], member: string): TopicPartition[] {
  const sorted = [...members].sort();
  const index = sorted.indexOf(member);
  if (index < 0) return [];
  const all = [...partitions].sort((a, b) =>
    a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition,
  );
  return all.filter((_, i) => i % sorted.length === index);
}

/** Joins a group of the embedded log. */
export async function joinEmbeddedGroup(
  log: Log,
  logDir: string,
  group: string,
  topics: string[],
  onAssignment: AssignmentListener,
): Promise<GroupMember> {
  const memberId = `${process.pid}-${randomUUID().slice(0, 8)}`;
  const dir = join(logDir, 'groups', group, 'members');
  mkdirSync(dir, { recursive: true });
  const partitions: TopicPartition[] = [];
  for (const topic of topics) {
    const n = await log.partitionCount(topic);
    for (let p = 0; p < n; p++) partitions.push({ topic, partition: p });
  }
  let current = '';
  let stopped = false;
  // Every assignment applied or being applied; `leave` waits for them.
  let applying: Promise<unknown> = Promise.resolve();

  const renew = (): void => {
    const tmp = join(dir, `.${memberId}.tmp`);
    writeFileSync(tmp, JSON.stringify({ pid: process.pid, heartbeatAt: Date.now() } satisfies Lease));
    renameSync(tmp, join(dir, `${memberId}.json`));
  };
  const liveMembers = (): string[] => {
    const now = Date.now();
    const members: string[] = [];
    for (const name of readdirSync(dir)) {
      if (!name.endsWith('.json')) continue;
      const id = name.slice(0, -5);
      let lease: Lease;
      try {
        lease = JSON.parse(readFileSync(join(dir, name), 'utf8')) as Lease;
      } catch {
        continue;
      }
      if (now - lease.heartbeatAt < GROUP_SESSION_MS && processAlive(lease.pid)) members.push(id);
      else if (id !== memberId) rmSync(join(dir, name), { force: true });
    }
    return members;
  };
  // The heartbeat never waits for an assignment to be applied (that may wait for another member to
  // hand a partition over): the member stays alive, and the listener hears of newer assignments.
  const tick = (): Promise<void> => {
    if (stopped) return Promise.resolve();
    renew();
    const assigned = assignRoundRobin(liveMembers(), partitions, memberId);
    const key = JSON.stringify(assigned);
    if (key === current) return Promise.resolve();
    current = key;
    const applied = onAssignment(assigned);
    applying = Promise.allSettled([applying, applied]);
    return applied;
  };
  const first = tick();
  const timer = setInterval(() => {
    try {
      tick().catch(() => undefined);
    } catch {
      // A failed renewal is retried at the next beat; a member that cannot renew drops out of the group.
    }
  }, GROUP_HEARTBEAT_MS);
  timer.unref();
  try {
    await first;
  } catch (e) {
    stopped = true;
    clearInterval(timer);
    rmSync(join(dir, `${memberId}.json`), { force: true });
    throw e;
  }
  return {
    memberId,
    commit: (topic: string, offsets: readonly PartitionOffset[]) => log.commitOffsets(group, topic, offsets),
    leave: async () => {
      stopped = true;
      clearInterval(timer);
      await applying;
      if (existsSync(join(dir, `${memberId}.json`))) rmSync(join(dir, `${memberId}.json`), { force: true });
    },
  };
}
