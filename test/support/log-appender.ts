/**
 * Crash-test child: appends batches to an embedded log forever and prints one line per
 * acknowledged batch: `ack <partition> <baseOffset> <count> <firstSeq>`. Record i of a batch is
 * `<firstSeq + i>` padded to 100 bytes, keyed so that one batch goes to one partition.
 */
import { openEmbeddedLog } from '../../src/log/index.ts';

const [dir = '', startSeqText = '0'] = process.argv.slice(2);
const log = await openEmbeddedLog({
  dir,
  segmentBytes: 256 * 1024,
  retentionIntervalMs: 0,
  onWarning: (m) => process.stderr.write(`${m}\n`),
});
await log.createTopic({ name: 'crash', partitions: 3 });
let seq = Number(startSeqText);
process.stdout.write('ready\n');
let inFlight = 0;
const appendOne = async (): Promise<void> => {
  const count = 1 + (seq % 50);
  const first = seq;
  seq += count;
  const records = Array.from({ length: count }, (_, i) => ({
    partition: first % 3,
    value: Buffer.from(String(first + i).padStart(100, '#')),
  }));
  inFlight++;
  const [range] = await log.append('crash', records);
  inFlight--;
  process.stdout.write(`ack ${range?.partition} ${range?.baseOffset} ${range?.count} ${first}\n`);
};
// Several appends in flight at all times, so kills land inside group commits.
for (;;) {
  while (inFlight < 4) void appendOne();
  await new Promise((r) => setImmediate(r));
}
