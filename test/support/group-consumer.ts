/**
 * Group test child: consumes `events` as a member of group `g` (on Kafka when brokers are given,
 * else on the embedded log in `dir`), printing `assigned <json>` on each assignment and
 * `processed <value>` for each record it processes.
 */
import { KafkaLog, type Log, openEmbeddedLog } from '../../src/log/index.ts';
import { WorkerRuntime } from '../../src/workers/index.ts';

const [kind = '', where = '', slow = '0'] = process.argv.slice(2);
const slowMs = Number(slow);
const log: Log =
  kind === 'kafka'
    ? await KafkaLog.connect({
        brokers: where.split(','),
        createTopic: async () => undefined,
        // librdkafka's mock cluster: quicker session expiry, and followers' SyncGroups before the leader's.
        sessionTimeoutMs: 3000,
        leaderSyncDelayMs: 300,
      })
    : await openEmbeddedLog({ dir: where, role: 'reader' });
const runtime = new WorkerRuntime({
  log,
  group: 'g',
  topics: ['events'],
  groupMembership: true,
  commitIntervalMs: 100,
  fetchWaitMs: 100,
  taskFactory: () => ({
    process: (record, observer) => {
      const done = () => {
        process.stdout.write(`processed ${record.value.toString()}\n`);
        observer.success();
      };
      // SLOW_MS makes a slow consumer, for scaling tests.
      if (slowMs > 0) setTimeout(done, slowMs);
      else done();
    },
  }),
  onError: (m) => process.stderr.write(`${m}\n`),
});
let last = '';
setInterval(() => {
  const now = JSON.stringify(runtime.assignment.map((tp) => tp.partition).sort());
  if (now !== last) {
    last = now;
    process.stdout.write(`assigned ${now}\n`);
  }
}, 50);
await runtime.start();
process.once('SIGTERM', () => {
  void runtime.stop().then(() => process.exit(0));
});
