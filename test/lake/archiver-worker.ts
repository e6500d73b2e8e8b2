/**
 * Kill-test child: runs the archiver as its own process, as `reckon start` would: the log as a
 * reader, events written by test/support/speed.ts; with a third argument `group`, as one of several
 * archivers of the group. Prints `ready`; stops gracefully on SIGTERM.
 */
import { Archiver } from '../../src/lake/index.ts';
import { openEmbeddedLog } from '../../src/log/index.ts';
import { plainDecoder } from '../support/speed.ts';

const [logDir = '', lakeDir = '', mode = ''] = process.argv.slice(2);
const log = await openEmbeddedLog({ dir: logDir, role: 'reader' });
const archiver = new Archiver({
  log,
  lakeDir,
  decoder: plainDecoder,
  flushIntervalMs: 10,
  maxBufferedRows: 250,
  // `group`: one of several archivers sharing the partitions.
  groupMembership: mode === 'group',
});
await archiver.start();
process.stdout.write('ready\n');
process.once('SIGTERM', () => {
  void archiver
    .stop()
    .then(() => log.close())
    .then(() => process.exit(0));
});
