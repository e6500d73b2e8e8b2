/**
 * A scheduler process for the kill test: `<sqlite file> <marker dir>` runs a `Scheduler` (real
 * clock, poll 50 ms, heartbeat 200 ms, zombies only after 60 s, so a takeover comes from the
 * dead-pid check) of the `resume` DAG on the SQLite scheduler store in that file. Prints `ready`
 * once started and every scheduler event as `event: …`; SIGTERM stops the scheduler and exits 0.
 */
import { defineDag, Scheduler } from '../../src/scheduler/index.ts';
import { openSqliteSchedulerStore } from '../../src/store/index.ts';
import { resumeDag } from './scheduler-child-dags.ts';

const [file = '', markerDir = ''] = process.argv.slice(2);

const store = await openSqliteSchedulerStore(file);
const scheduler = new Scheduler({
  store,
  dags: [defineDag(resumeDag(markerDir))],
  pollMs: 50,
  heartbeatMs: 200,
  zombieAfterMs: 60_000,
  onEvent: (message) => process.stdout.write(`event: ${message}\n`),
});

process.once('SIGTERM', () => {
  void (async () => {
    await scheduler.stop(1000);
    await store.close();
    process.exit(0);
  })();
});

scheduler.start();
process.stdout.write('ready\n');
