/** Lake retention: whole days of partitions dropped once they are older than the retention. */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

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
        removed++;
      }
    }
  }
  return removed;
}
