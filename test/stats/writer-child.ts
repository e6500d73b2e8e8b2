/**
 * A writer for the kill tests: `<sqlite PATH | postgres URL> KEYS BASE [MODE]` opens a
 * statistics store and, until killed, does MODE over and over:
 * - `flush` (default): adds +1 click (and 1 micro) to each of KEYS rows (20 minutes from BASE,
 *   KEYS / 20 offers) per call, recording offset n + 1 of group `killed`, topic `clicks`,
 *   partition 0 with call n, continuing from the offset it finds (the store compacts by itself
 *   every few calls);
 * - `compact`: the same, with a compaction after every call;
 * - `switch`: replaces the batch interval [BASE, BASE + 1 h) with KEYS rows whose clicks are all
 *   1 or all 2, alternately.
 * It prints `ready` once the store is open, then `.` after each iteration.
 */
import { type MinuteStats, openPostgresStatsStore, openSqliteStatsStore } from '../../src/stats/index.ts';

const [kind = '', database = '', keys = '', base = '', mode = 'flush'] = process.argv.slice(2);
const KEYS = Number(keys);
const BASE = Number(base);

const store = kind === 'sqlite' ? await openSqliteStatsStore(database) : await openPostgresStatsStore(database);
const rows = (clicks: number): MinuteStats[] =>
  Array.from({ length: KEYS }, (_, i) => ({
    bucketStart: BASE + (i % 20) * 60_000,
    offerId: `of-${Math.floor(i / 20)}`,
    placement: 'home',
    emissions: 0,
    clicks,
    clickCost: BigInt(clicks),
    duplicateClicks: 0,
    fraudClicks: 0,
    fraudCost: 0n,
    invalidClicks: 0,
  }));
const deltas = rows(1);
let next = (await store.speedOffsets('killed', 'clicks')).get(0) ?? 0;
process.stdout.write('ready\n');
for (let i = 0; ; i++) {
  if (mode === 'switch') {
    await store.replaceBatchInterval(BASE, BASE + 3_600_000, rows((i % 2) + 1), `run-${i}`);
  } else {
    next += 1;
    await store.applySpeedDeltas('killed', deltas, [{ topic: 'clicks', partition: 0, offset: next }]);
    if (mode === 'compact') await store.compact();
  }
  process.stdout.write('.');
}
