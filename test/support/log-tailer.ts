/** Reader-process child: tails one partition of an embedded log and prints each value, then `done`. */
import { openEmbeddedLog } from '../../src/log/index.ts';

const [dir = '', topic = '', partitionText = '0', countText = '0'] = process.argv.slice(2);
const log = await openEmbeddedLog({ dir, role: 'reader' });
process.stdout.write('ready\n');
let offset = 0;
const want = Number(countText);
while (offset < want) {
  for (const r of await log.read(topic, Number(partitionText), offset, { waitMs: 10_000 })) {
    process.stdout.write(`${r.value.toString()}\n`);
    offset = r.offset + 1;
  }
}
process.stdout.write('done\n');
await log.close();
