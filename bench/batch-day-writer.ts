/**
 * A recalculation's store write in a process of its own, for `speed.freshness.batch`:
 * `batch-day-writer.ts PATH ROWS DAY_START` writes ROWS batch minute rows of the UTC day starting
 * at DAY_START (epoch ms) into the SQLite store at PATH as a generation and switches it in, then
 * prints `switched <seconds>` and exits.
 */
import { openSqliteStatsStore } from '../src/stats/index.ts';
import { dayRows } from './store.bench.ts';

const [path = '', rows = '16000000', dayStart = '0'] = process.argv.slice(2);
const store = await openSqliteStatsStore(path);
const started = performance.now();
await store.replaceBatchInterval(
  Number(dayStart),
  Number(dayStart) + 86_400_000,
  { columns: dayRows(Number(rows), Number(dayStart)) },
  'bench-batch',
);
process.stdout.write(`switched ${((performance.now() - started) / 1000).toFixed(1)}\n`);
await store.close();
