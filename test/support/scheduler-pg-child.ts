/**
 * A scheduler process for the PostgreSQL test: `<connection string>` runs a `Scheduler` (real
 * clock, poll 50 ms, parallelism 4) of the shared DAG on the scheduler store in that database.
 * Each task inserts (dag, logical date, task, attempt, pid) into the test's `executions` table
 * and sleeps a few ms. Prints `ready` once started and every scheduler event as `event: …`;
 * SIGTERM stops the scheduler and exits 0.
 */
import pg from 'pg';
import { defineDag, Scheduler } from '../../src/scheduler/index.ts';
import { openPostgresSchedulerStore } from '../../src/store/index.ts';
import { sharedDag } from './scheduler-child-dags.ts';

const [connectionString = ''] = process.argv.slice(2);

const executions = new pg.Pool({ connectionString, max: 4 });
executions.on('error', () => undefined);
const store = await openPostgresSchedulerStore(connectionString);
const scheduler = new Scheduler({
  store,
  dags: [
    defineDag(
      sharedDag(async ({ dagId, logicalDate, taskId, attempt }) => {
        await executions.query(
          'INSERT INTO executions (dag_id, logical_date, task_id, attempt, pid) VALUES ($1, $2, $3, $4, $5)',
          [dagId, logicalDate, taskId, attempt, process.pid],
        );
        await new Promise((resolve) => setTimeout(resolve, 5 + Math.floor(Math.random() * 10)));
      }),
    ),
  ],
  pollMs: 50,
  parallelism: 4,
  onEvent: (message) => process.stdout.write(`event: ${message}\n`),
});

process.once('SIGTERM', () => {
  void (async () => {
    await scheduler.stop(2000);
    await store.close();
    await executions.end();
    process.exit(0);
  })();
});

scheduler.start();
process.stdout.write('ready\n');
