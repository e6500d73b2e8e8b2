/**
 * Status files: a worker process (speed layer, archiver, scheduler) publishes figures that only
 * it knows (queues, state sizes, watermarks) as a small JSON file, rewritten every second by
 * rename, so that the process serving `/metrics` and the dashboard can read them without
 * talking to it. A file older than a few seconds means the process is not running. Each process
 * writes its own file, `<part>.<pid>.json`, so that the processes of a group (two speed layers)
 * are all seen; a starting process removes the files of its part left by processes now dead.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { processAlive } from '../log/index.ts';

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
 * Writes `<dir>/<part>.<pid>.json` now and every `intervalMs` with what `collect` returns (a
 * failing `collect` skips that write); returns a function that stops it.
 */
export function publishStatus(
  dir: string,
  part: string,
  collect: () => PartStatus['figures'],
  intervalMs = 1000,
): () => void {
  mkdirSync(dir, { recursive: true });
  removeDeadStatuses(dir, part);
  const path = join(dir, `${part}.${process.pid}.json`);
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

/** Removes the status files of `part` whose process is gone (and any of the older one-per-part name). */
function removeDeadStatuses(dir: string, part: string): void {
  for (const st of readStatuses(dir)) {
    if (st.part !== part || st.pid === process.pid || processAlive(st.pid)) continue;
    rmSync(join(dir, `${part}.${st.pid}.json`), { force: true });
  }
  rmSync(join(dir, `${part}.json`), { force: true });
}
