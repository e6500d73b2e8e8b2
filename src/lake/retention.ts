/** Lake retention: whole days of partitions dropped once they are older than the retention. */
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { compactionDirectory } from './layout.ts';

const DAY_MS = 86_400_000;

/** Topics of the lake whose partitions retention drops. */
const LAKE_TOPICS = ['emissions', 'clicks', 'stats'];

/** Removes lake partitions (`date=` directories) of days wholly before `cutoff`. */
export async function dropLakeDays(lakeDir: string, cutoff: number): Promise<number> {
  let removed = 0;
  for (const topic of LAKE_TOPICS) {
    let dates: string[];
    try {
      dates = (await readdir(join(lakeDir, topic))).filter((n) => n.startsWith('date='));
    } catch {
      continue;
    }
    for (const d of dates) {
      const start = Date.parse(`${d.slice(5)}T00:00:00.000Z`);
      if (Number.isFinite(start) && start + DAY_MS <= cutoff) {
        await rm(join(lakeDir, topic, d), { recursive: true, force: true });
        await dropFinishedJournals(lakeDir, topic, d.slice(5));
        removed++;
      }
    }
  }
  return removed;
}

/**
 * Removes the compaction journals of a dropped day's hours that are finished (`done` or
 * `undone`): nothing reads them once their hours are gone. An unfinished one stays for the
 * compaction's recovery, which owns it.
 */
async function dropFinishedJournals(lakeDir: string, topic: string, date: string): Promise<void> {
  const dir = join(compactionDirectory(lakeDir), topic);
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.startsWith(`${date}-`) && n.endsWith('.json'));
  } catch {
    return;
  }
  for (const name of names) {
    let state: unknown;
    try {
      state = (JSON.parse(await readFile(join(dir, name), 'utf8')) as { state?: unknown }).state;
    } catch {
      continue;
    }
    if (state === 'done' || state === 'undone') await rm(join(dir, name), { force: true });
  }
}
