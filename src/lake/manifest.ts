/**
 * The manifest of one log partition: the commit log of its flushes into the lake. A flush's files
 * are in the lake only once its manifest line is on disk; the line's `to + 1` is where consumption
 * resumes. Before a flush renames its files into place it records them in the partition's pending
 * file, so that a crash between the renames and the manifest line leaves a list of exactly the
 * files to remove: recovery never has to walk the lake.
 */
import { mkdir, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  JsonLinesFile,
  mkdirDurable,
  readJsonLines,
  readLastJsonLine,
  syncDirectory,
  syncFile,
} from './durable-files.ts';
import { manifestDirectory, manifestPath, pendingPath, tmpDirectory } from './layout.ts';

/** One committed flush of one log partition. */
export interface ManifestEntry {
  /** First log offset of the flush. */
  from: number;
  /** Last log offset of the flush (inclusive). */
  to: number;
  /** Its data files, relative to the lake directory, one per (date, hour). */
  files: string[];
  /** Rows written (records of the log in [from, to] that were archived). */
  rows: number;
  /** Per event hour (its start, epoch ms): rows, and when the first of them was consumed. Absent in older lines. */
  hours?: Record<string, { rows: number; firstSeenAt: number }>;
  /** When it was committed (the archiver's clock, epoch ms). */
  at: number;
}

/** The files of a flush that is being committed. */
interface PendingFlush {
  from: number;
  to: number;
  files: string[];
}

/** Every committed flush of a log partition, oldest first. */
export function readManifest(lakeDir: string, topic: string, partition: number): Promise<ManifestEntry[]> {
  return readJsonLines<ManifestEntry>(manifestPath(lakeDir, topic, partition));
}

/** Where the archiver resumes each partition of a topic (last manifest line's `to + 1`); never-flushed partitions are absent. */
export async function lakeOffsets(lakeDir: string, topic: string, partitions: number[]): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  for (const p of partitions) {
    const last = await readLastJsonLine<ManifestEntry>(manifestPath(lakeDir, topic, p));
    if (last !== undefined) out.set(p, last.to + 1);
  }
  return out;
}

async function removeQuietly(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

/** The writer's side of one partition's manifest. */
export class PartitionManifest {
  private constructor(
    private readonly lakeDir: string,
    readonly topic: string,
    readonly partition: number,
    private readonly file: JsonLinesFile,
    /** One past the last committed offset; undefined before the first flush. */
    public committedNext: number | undefined,
  ) {}

  /** The pending file's name is known to be durable in its directory. */
  private pendingNamed = false;

  /**
   * Opens a partition's manifest and undoes whatever a crash left half done: a torn manifest
   * line is cut off, the files of a flush that never got its manifest line are removed, and the
   * partition's temporary files are deleted. After this the lake holds exactly the committed flushes.
   */
  static async recover(lakeDir: string, topic: string, partition: number): Promise<PartitionManifest> {
    const dir = manifestDirectory(lakeDir, topic);
    await mkdirDurable(dir);
    const file = await JsonLinesFile.open(manifestPath(lakeDir, topic, partition));
    // The manifest (and, later, the pending file) may just have been created: make their names durable.
    await syncDirectory(dir);
    const last = await readLastJsonLine<ManifestEntry>(file.path);
    const manifest = new PartitionManifest(
      lakeDir,
      topic,
      partition,
      file,
      last === undefined ? undefined : last.to + 1,
    );
    await manifest.discardUncommitted();
    const tmp = tmpDirectory(lakeDir, topic, partition);
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    return manifest;
  }

  /** Removes the files of a pending flush that was not committed (a crash or a failed flush). */
  async discardUncommitted(): Promise<void> {
    const path = pendingPath(this.lakeDir, this.topic, this.partition);
    let pending: PendingFlush;
    try {
      pending = JSON.parse(await readFile(path, 'utf8')) as PendingFlush;
    } catch {
      // Missing, or torn while being written: then none of its files had been renamed yet.
      return;
    }
    if (this.committedNext !== undefined && pending.to < this.committedNext) return;
    const dirs = new Set<string>();
    for (const file of pending.files) {
      const full = join(this.lakeDir, file);
      if (await removeQuietly(full)) dirs.add(dirname(full));
    }
    for (const dir of dirs) await syncDirectory(dir);
    await removeQuietly(path);
    this.pendingNamed = false;
  }

  /** Records the files a flush is about to rename into place; durable before it resolves. */
  async recordPending(from: number, to: number, files: string[]): Promise<void> {
    const path = pendingPath(this.lakeDir, this.topic, this.partition);
    await writeFile(path, JSON.stringify({ from, to, files } satisfies PendingFlush));
    await syncFile(path);
    if (!this.pendingNamed) {
      await syncDirectory(manifestDirectory(this.lakeDir, this.topic));
      this.pendingNamed = true;
    }
  }

  /** Commits a flush: its manifest line is on disk when this resolves. */
  async commit(entry: ManifestEntry): Promise<void> {
    await this.file.append([entry]);
    this.committedNext = entry.to + 1;
  }

  close(): Promise<void> {
    return this.file.close();
  }
}

/**
 * Rows the lake holds per event hour (its start, epoch ms) inside [from, to), summed over every
 * partition's manifest of `topics`: what a recalculation of the window will read, for progress.
 * Flushes of older lines (without hours) count for the hours their files name.
 */
export async function lakeRowsByHour(
  lakeDir: string,
  topics: readonly string[],
  from: number,
  to: number,
): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  for (const topic of topics) {
    let names: string[];
    try {
      names = (await readdir(manifestDirectory(lakeDir, topic))).filter((n) => /^\d+\.jsonl$/.test(n));
    } catch {
      continue;
    }
    for (const name of names) {
      for (const e of await readManifest(lakeDir, topic, Number.parseInt(name, 10))) {
        for (const [hour, v] of Object.entries(e.hours ?? {})) {
          const h = Number(hour);
          if (h >= from && h < to) out.set(h, (out.get(h) ?? 0) + v.rows);
        }
      }
    }
  }
  return out;
}
