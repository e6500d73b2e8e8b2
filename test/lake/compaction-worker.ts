/**
 * Kill-test child: compacts a lake's sealed hours pass after pass until none is left, as the
 * sealer would. Started ahead of time, it prints `ready`, then takes one line on stdin: a JSON
 * `{lakeDir, now, grace, crashAt}` (the clock, the inputs' grace in ms, and a step at which to
 * SIGKILL itself: `COMPACTION_CRASH_AT` in src/lake/compaction.ts). Prints `done`
 * after the last pass.
 */
import { createInterface } from 'node:readline';
import { COMPACTION_CRASH_AT, compactSealedHours } from '../../src/lake/compaction.ts';

process.stdout.write('ready\n');
const lines = createInterface({ input: process.stdin });
const [line] = await lines[Symbol.asyncIterator]()
  .next()
  .then((r) => [r.value as string | undefined]);
lines.close();
const job = JSON.parse(line ?? '{}') as { lakeDir: string; now: number; grace: number; crashAt: string };
process.env[COMPACTION_CRASH_AT] = job.crashAt;
for (;;) {
  const report = await compactSealedHours(job.lakeDir, ['emissions', 'clicks'], {
    now: () => job.now,
    quietMs: 0,
    inputGraceMs: job.grace,
    maxRowsPerFile: 150,
    maxHoursPerPass: 2,
  });
  if (report.hours.length === 0 && report.waiting === 0) break;
}
process.stdout.write('done\n');
