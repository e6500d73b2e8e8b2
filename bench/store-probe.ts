/**
 * A speed writer in a process of its own for `batch.store-lock`: `store-probe.ts PATH` appends a
 * one-row run to the SQLite store at PATH every 5 ms, timing each, until its standard input
 * closes; then prints [start (epoch ms), duration (ms)] of each as one JSON line and exits.
 */
import { openSqliteStatsStore, RunColumnsBuilder } from '../src/stats/index.ts';

const store = await openSqliteStatsStore(process.argv[2] as string);
const b = new RunColumnsBuilder();
b.push(Date.UTC(2026, 10, 21), 'of-probe', 'home', 1, 0, 0n, 0, 0, 0n, 0);
const one = b.take();
const waits: [number, number][] = [];
let running = true;
process.stdin.on('end', () => (running = false));
process.stdin.resume();
process.stdout.write('ready\n');
for (let offset = 1; running; offset++) {
  const at = Date.now();
  const t = performance.now();
  await store.applySpeedDeltas('probe', one, [{ topic: 'clicks', partition: 0, offset }]);
  waits.push([at, performance.now() - t]);
  await new Promise((r) => setTimeout(r, 5));
}
await store.close();
process.stdout.write(`${JSON.stringify(waits)}\n`);
