/**
 * `npm run bench`: runs every benchmark and prints one JSON object per line:
 * {"name","unit","value","baseline","ratio"}, the baseline measured in the same run.
 * Pass name fragments as arguments to run only matching benchmark groups.
 */
import { cpus, totalmem } from 'node:os';
import { eventBenchmarks } from './events.bench.ts';
import { type BenchResult, report } from './harness.ts';
import { logBenchmarks } from './log.bench.ts';
import { workerBenchmarks } from './workers.bench.ts';

const GROUPS: Record<string, () => BenchResult[] | Promise<BenchResult[]>> = {
  events: eventBenchmarks,
  log: logBenchmarks,
  workers: workerBenchmarks,
};

const filters = process.argv.slice(2);
process.stderr.write(
  `reckon bench: ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${new Date().toISOString()}\n`,
);
for (const [group, run] of Object.entries(GROUPS)) {
  if (filters.length > 0 && !filters.some((f) => group.includes(f))) continue;
  for (const result of await run()) report(result);
}
