/**
 * Kill-test child: safe-writes one interval over and over, alternating between two row sets
 * (JSON files with money as strings), and prints which one each finished write was.
 */
import { readFileSync } from 'node:fs';
import { safeWriteInterval } from '../../src/batch/index.ts';
import { openSqliteStatsStore } from '../../src/stats/index.ts';
import type { MinuteStats } from '../../src/stats/index.ts';

const [lakeDir = '', dbPath = '', from = '0', to = '0', ...sets] = process.argv.slice(2);
const rowsOf = (file: string): MinuteStats[] =>
  (
    JSON.parse(readFileSync(file, 'utf8')) as (Omit<MinuteStats, 'clickCost' | 'fraudCost'> & {
      clickCost: string;
      fraudCost: string;
    })[]
  ).map((r) => ({ ...r, clickCost: BigInt(r.clickCost), fraudCost: BigInt(r.fraudCost) }));
const rowSets = sets.map(rowsOf);
const store = await openSqliteStatsStore(dbPath);
process.stdout.write('ready\n');
for (let i = 0; ; i++) {
  const which = i % rowSets.length;
  await safeWriteInterval({
    store,
    lakeDir,
    from: Number(from),
    to: Number(to),
    rows: rowSets[which] as MinuteStats[],
    runId: `run-${i}`,
  });
  process.stdout.write(`wrote ${which}\n`);
}
