/**
 * Partition leases: which archiver process writes a log partition's part of the lake.
 *
 * Archivers of one consumer group share the partitions, and a rebalance hands a partition from
 * one to another while the old owner may still be committing a flush. A new owner that recovered
 * the partition at that moment would delete the old owner's pending files just before their
 * manifest line lands. So a partition's manifest has an owner file, `<partition>.owner`: it is
 * created exclusively, kept fresh by its owner, and removed by the owner once its last flush of
 * the partition is committed. A new owner waits until it is gone, or its process is dead (same
 * host), or it has not been refreshed for `staleMs`; and every commit first checks that the file
 * still names the committing process.
 */
import { randomBytes } from 'node:crypto';
import { readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { processAlive } from '../log/index.ts';
import { leasePath } from './layout.ts';

/** This process, as lease files name it: host, pid and a nonce (a reused pid is another owner). */
export const LEASE_OWNER = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;

/** An owner that has not refreshed its lease for this long is taken for gone (another host's crash). */
export const LEASE_STALE_MS = 30_000;

interface LeaseFile {
  owner: string;
  /** Last refresh (epoch ms). */
  at: number;
}

async function readLease(path: string): Promise<LeaseFile | 'missing' | 'unreadable'> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw e;
  }
  try {
    const v = JSON.parse(text) as LeaseFile;
    return typeof v.owner === 'string' && typeof v.at === 'number' ? v : 'unreadable';
  } catch {
    return 'unreadable'; // being written this very moment
  }
}

/** Whether the owner named by a lease is gone: its process is dead (same host), or it is silent. */
export function leaseAbandoned(lease: LeaseFile, now: number, staleMs = LEASE_STALE_MS): boolean {
  const [host, pid] = lease.owner.split(':');
  if (host === hostname() && !processAlive(Number(pid))) return true;
  return now - lease.at > staleMs;
}

/** A held partition lease. */
export class PartitionLease {
  private refreshedAt = 0;

  private constructor(
    readonly path: string,
    readonly owner: string,
  ) {}

  /**
   * Takes a partition's lease: waits while another live process holds it (reporting once), takes
   * over an abandoned one. Resolves undefined if `cancelled()` turns true while waiting.
   */
  static async acquire(
    lakeDir: string,
    topic: string,
    partition: number,
    o: { owner?: string; staleMs?: number; report?: (m: string) => void; cancelled?: () => boolean } = {},
  ): Promise<PartitionLease | undefined> {
    const owner = o.owner ?? LEASE_OWNER;
    const path = leasePath(lakeDir, topic, partition);
    let reported = false;
    for (let attempt = 0; ; attempt++) {
      if (o.cancelled?.() === true) return undefined;
      const now = Date.now();
      try {
        await writeFile(path, JSON.stringify({ owner, at: now }), { flag: 'wx' });
        const lease = new PartitionLease(path, owner);
        lease.refreshedAt = now;
        return lease;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const held = await readLease(path);
      if (held !== 'missing' && held !== 'unreadable') {
        if (held.owner === owner) {
          const lease = new PartitionLease(path, owner);
          await lease.refresh(now);
          return lease;
        }
        if (leaseAbandoned(held, now, o.staleMs)) {
          // Moved aside rather than deleted: of two processes taking over, one rename fails.
          await rename(path, `${path}.abandoned-${owner.replace(/:/g, '-')}`).catch(() => undefined);
          await unlink(`${path}.abandoned-${owner.replace(/:/g, '-')}`).catch(() => undefined);
          continue;
        }
        if (!reported) {
          o.report?.(`${topic}/${partition}: waiting for ${held.owner} to hand the partition over`);
          reported = true;
        }
      }
      await new Promise((r) => setTimeout(r, Math.min(500, 20 * 2 ** Math.min(attempt, 5))));
    }
  }

  /** Rewrites the refresh time (in place: readers retry a torn read). */
  async refresh(now = Date.now()): Promise<void> {
    await writeFile(this.path, JSON.stringify({ owner: this.owner, at: now }));
    this.refreshedAt = now;
  }

  /** Refreshes when a third of the stale window has passed since the last refresh. */
  async keepFresh(now = Date.now()): Promise<void> {
    if (now - this.refreshedAt >= LEASE_STALE_MS / 3) await this.refresh(now);
  }

  /** Throws unless the lease file still names this owner: a commit must not land otherwise. */
  async check(): Promise<void> {
    let held = await readLease(this.path);
    for (let i = 0; held === 'unreadable' && i < 10; i++) {
      await new Promise((r) => setTimeout(r, 5));
      held = await readLease(this.path);
    }
    if (held === 'missing' || held === 'unreadable' || held.owner !== this.owner) {
      const who = held === 'missing' ? 'nobody' : held === 'unreadable' ? 'an unreadable owner' : held.owner;
      throw Object.assign(new Error(`${this.path}: the partition is now held by ${who}, not ${this.owner}`), {
        code: 'RECKON_LAKE_LEASE_LOST',
      });
    }
  }

  /** Gives the partition up (its last flush is committed). */
  async release(): Promise<void> {
    const held = await readLease(this.path);
    if (held !== 'missing' && held !== 'unreadable' && held.owner === this.owner)
      await unlink(this.path).catch(() => undefined);
  }
}
