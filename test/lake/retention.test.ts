import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { dropLakeDays } from '../../src/lake/index.ts';
import { compactionJournalPath } from '../../src/lake/layout.ts';

const H = 3_600_000;
const OLD_DAY = Date.UTC(2026, 10, 1);
const KEPT_DAY = Date.UTC(2026, 10, 20);

function journal(lake: string, topic: string, hourStartMs: number, state: string): string {
  const path = compactionJournalPath(lake, topic, hourStartMs);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify({ topic, hourStartMs, state, inputs: [], outputs: [] }));
  return path;
}

describe('lake retention', () => {
  it('drops whole days before the cutoff with their finished compaction journals, and keeps unfinished ones for recovery', async () => {
    const lake = mkdtempSync(join(tmpdir(), 'reckon-retention-'));
    for (const topic of ['emissions', 'clicks', 'stats'])
      for (const date of ['2026-11-01', '2026-11-20']) {
        mkdirSync(join(lake, topic, `date=${date}`, 'hour=03'), { recursive: true });
        writeFileSync(join(lake, topic, `date=${date}`, 'hour=03', 'part-0-0-9.parquet'), 'x');
      }
    const oldDone = journal(lake, 'emissions', OLD_DAY + 3 * H, 'done');
    const oldUndone = journal(lake, 'clicks', OLD_DAY + 5 * H, 'undone');
    const oldStarted = journal(lake, 'emissions', OLD_DAY + 4 * H, 'started');
    const keptDone = journal(lake, 'emissions', KEPT_DAY + 3 * H, 'done');
    const removed = await dropLakeDays(lake, Date.UTC(2026, 10, 10));
    assert.equal(removed, 3, 'one day in each of the three topics');
    for (const topic of ['emissions', 'clicks', 'stats']) {
      assert.equal(existsSync(join(lake, topic, 'date=2026-11-01')), false, `${topic}: the old day is gone`);
      assert.equal(existsSync(join(lake, topic, 'date=2026-11-20')), true, `${topic}: the recent day stays`);
    }
    assert.equal(existsSync(oldDone), false, 'a done journal of a dropped day is removed');
    assert.equal(existsSync(oldUndone), false, 'an undone journal of a dropped day is removed');
    assert.equal(existsSync(oldStarted), true, 'an unfinished journal stays for the recovery that owns it');
    assert.equal(existsSync(keptDone), true, 'journals of kept days stay');
    assert.equal(await dropLakeDays(lake, Date.UTC(2026, 10, 10)), 0, 'a second run drops nothing more');
  });
});
