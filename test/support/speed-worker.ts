/**
 * Kill-test child: runs the speed layer as its own process, as `reckon start` does: the log as a
 * reader, the SQLite stats store, events written by test/support/speed.ts. Prints `ready`.
 */
import { openEmbeddedLog } from '../../src/log/index.ts';
import { DEFAULT_SIMULATION } from '../../src/sim/index.ts';
import { SpeedLayer } from '../../src/speed/index.ts';
import { openSqliteStatsStore } from '../../src/stats/index.ts';
import { plainDecoder } from './speed.ts';

const [logDir = '', dbPath = ''] = process.argv.slice(2);
const log = await openEmbeddedLog({ dir: logDir, role: 'reader' });
const store = await openSqliteStatsStore(dbPath);
const speed = new SpeedLayer({
  log,
  sink: store,
  decoder: plainDecoder,
  rules: DEFAULT_SIMULATION.rules,
  allowedLatenessMs: 3_600_000,
  flushIntervalMs: 20,
  onFatal: (e) => {
    process.stderr.write(`${e.message}\n`);
    process.exit(1);
  },
});
await speed.start();
process.stdout.write('ready\n');
process.once('SIGTERM', () => {
  void speed
    .stop()
    .then(() => store.close())
    .then(() => process.exit(0));
});
