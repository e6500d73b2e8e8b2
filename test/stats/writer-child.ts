/**
 * A speed-layer writer for the kill test: `<sqlite PATH | postgres URL> KEYS BASE` opens a
 * statistics store and, until killed, adds +1 click (and 1 micro) to each of KEYS rows (20
 * minutes from BASE, KEYS / 20 offers) per call, recording offset n + 1 of group `killed`,
 * topic `clicks`, partition 0 with call n, continuing from the offset it finds.
 */
import { type MinuteStats, openPostgresStatsStore, openSqliteStatsStore } from '../../src/stats/index.ts';

const [kind = '', database = '', keys = '', base = ''] = process.argv.slice(2);
const KEYS = Number(keys);
const BASE = Number(base);

const store = kind === 'sqlite' ? await openSqliteStatsStore(database) : await openPostgresStatsStore(database);
const deltas: MinuteStats[] = Array.from({ length: KEYS }, (_, i) => ({
  bucketStart: BASE + (i % 20) * 60_000,
  offerId: `of-${Math.floor(i / 20)}`,
  placement: 'home',
  emissions: 0,
  clicks: 1,
  clickCost: 1n,
  duplicateClicks: 0,
  fraudClicks: 0,
  fraudCost: 0n,
  invalidClicks: 0,
}));
let next = (await store.speedOffsets('killed', 'clicks')).get(0) ?? 0;
process.stdout.write('ready\n');
for (;;) {
  next += 1;
  await store.applySpeedDeltas('killed', deltas, [{ topic: 'clicks', partition: 0, offset: next }]);
}
