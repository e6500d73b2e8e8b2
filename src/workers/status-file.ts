/**
 * Status files: a worker process (speed layer, archiver, scheduler) publishes figures that only
 * it knows (queues, state sizes, watermarks) as a small JSON file, rewritten every second by
 * rename, so that the process serving `/metrics` and the dashboard can read them without
 * talking to it. A file older than a few seconds means the process is not running.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** What a status file holds. */
export interface PartStatus {
  /** The part: `speed`, `archiver`, `scheduler`. */
  part: string;
  pid: number;
  /** When it was written, epoch ms. */
  at: number;
  /** Numbers by name; labelled series as `{ labels, value }` lists. */
  figures: Record<string, number | { labels: Record<string, string>; value: number }[]>;
}

/**
 * Writes `<dir>/<part>.json` now and every `intervalMs` with what `collect` returns (a failing
 * `collect` skips that write); returns a function that stops it.
 */
export function publishStatus(
  dir: string,
  part: string,
  collect: () => PartStatus['figures'],
  intervalMs = 1000,
): () => void {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${part}.json`);
  const write = () => {
    try {
      const status: PartStatus = { part, pid: process.pid, at: Date.now(), figures: collect() };
      writeFileSync(`${path}.tmp`, JSON.stringify(status));
      renameSync(`${path}.tmp`, path);
    } catch {
      // A status file is best effort: the next write replaces it.
    }
  };
  write();
  const timer = setInterval(write, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** Every status file of `dir` that can be read (none when the folder does not exist). */
export function readStatuses(dir: string): PartStatus[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
  const out: PartStatus[] = [];
  for (const n of names) {
    try {
      out.push(JSON.parse(readFileSync(join(dir, n), 'utf8')) as PartStatus);
    } catch {
      // Being replaced, or torn by a crash: the next read finds the next one.
    }
  }
  return out;
}
