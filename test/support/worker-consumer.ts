/**
 * Kill-test child: consumes `events` in group `g` with a slow task that appends each processed
 * value to a file (before acknowledging it); values divisible by 97 always fail (poison). It opens
 * the log as a reader, as pipeline workers do: its dead letters are forwarded to the writer.
 */
import { appendFileSync } from 'node:fs';
import { openEmbeddedLog } from '../../src/log/index.ts';
import { stopOnSignals, WorkerRuntime } from '../../src/workers/index.ts';

const [dir = '', processedFile = ''] = process.argv.slice(2);
const log = await openEmbeddedLog({ dir, role: 'reader' });
const runtime = new WorkerRuntime({
  log,
  group: 'g',
  topics: ['events'],
  commitIntervalMs: 30,
  retry: { maxAttempts: 2, initialBackoffMs: 5 },
  taskFactory: () => ({
    process: (record, observer) => {
      const value = Number(record.value.toString());
      setTimeout(() => {
        if (value % 97 === 0) return observer.failure(new Error(`poison ${value}`));
        appendFileSync(processedFile, `${value}\n`);
        observer.success();
      }, 1);
    },
  }),
  onError: () => undefined,
});
await runtime.start();
stopOnSignals(runtime);
process.stdout.write('ready\n');
