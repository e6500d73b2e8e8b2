/**
 * A second speed process for `speed.e2e.*` with two processes: `speed-member.ts LOGDIR DBPATH
 * INDEX OF` runs a speed layer over its share of the partitions (p % OF === INDEX) of the
 * embedded log at LOGDIR into the SQLite store at DBPATH, prints `ready`, and stops (writing
 * what it processed) when its standard input closes.
 */
import { decodeClick, decodeEmission } from '../src/events/index.ts';
import { openEmbeddedLog } from '../src/log/index.ts';
import { DEFAULT_SIMULATION } from '../src/sim/index.ts';
import { SpeedLayer } from '../src/speed/index.ts';
import { openStatsWriterThread } from '../src/stats/index.ts';

const [logDir = '', dbPath = '', index = '1', of = '2'] = process.argv.slice(2);
const log = await openEmbeddedLog({ dir: logDir, role: 'reader' });
const store = await openStatsWriterThread({ kind: 'sqlite', path: dbPath });
const speed = new SpeedLayer({
  log,
  sink: store,
  decoder: { emission: (v) => decodeEmission(v), click: (v) => decodeClick(v) },
  rules: DEFAULT_SIMULATION.rules,
  allowedLatenessMs: 3_600_000,
  share: { index: Number(index), of: Number(of) },
  flushSpacing: 0,
});
await speed.start();
process.stdout.write('ready\n');
process.stdin.on('end', () => {
  void speed
    .stop()
    .then(() => store.close())
    .then(() => log.close())
    .then(() => process.exit(0));
});
process.stdin.resume();
