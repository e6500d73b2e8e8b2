/**
 * `npm run bench`: runs every benchmark and prints one JSON object per line:
 * {"name","unit","value","baseline","ratio"}, the baseline measured in the same run.
 * Pass name fragments as arguments to run only matching benchmark groups.
 */
import { writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { batchBenchmarks } from './batch.bench.ts';
import { mttrBenchmarks } from './mttr.bench.ts';
import { catchupBenchmarks } from './catchup.bench.ts';
import { collectorBenchmarks } from './collector.bench.ts';
import { compactionBenchmarks } from './compaction.bench.ts';
import { eventBenchmarks } from './events.bench.ts';
import { type BenchResult, report, withStableName } from './harness.ts';
import { lakeBenchmarks } from './lake.bench.ts';
import { logBenchmarks } from './log.bench.ts';
import { servingBenchmarks } from './serving.bench.ts';
import { speedBenchmarks } from './speed.bench.ts';
import { storeBenchmarks } from './store.bench.ts';
import { workerBenchmarks } from './workers.bench.ts';

const GROUPS: Record<string, () => BenchResult[] | Promise<BenchResult[]>> = {
  events: eventBenchmarks,
  log: logBenchmarks,
  workers: workerBenchmarks,
  collector: collectorBenchmarks,
  speed: speedBenchmarks,
  store: storeBenchmarks,
  serving: servingBenchmarks,
  lake: lakeBenchmarks,
  compaction: compactionBenchmarks,
  batch: batchBenchmarks,
  mttr: mttrBenchmarks,
  catchup: catchupBenchmarks,
};

const filters = process.argv.slice(2);
const machine = `${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
const date = new Date().toISOString();
process.stderr.write(`reckon bench: ${machine}, ${date}\n`);
const all: BenchResult[] = [];
for (const [group, run] of Object.entries(GROUPS)) {
  if (filters.length > 0 && !filters.some((f) => group.includes(f))) continue;
  for (const result of await run()) {
    report(result);
    all.push(withStableName(result));
  }
}
// A full run records its figures in bench/RESULTS.md.
if (filters.length === 0) {
  const rows = all.map(
    (r) =>
      `| ${r.name} | ${r.description ?? ''} | ${r.unit} | ${r.value.toLocaleString('en-US')} | ${r.baseline.toLocaleString('en-US')} | ${r.ratio} |`,
  );
  const text = [
    '# Benchmark results',
    '',
    `Written by \`npm run bench\` on ${date}: ${machine}.`,
    'Each value is measured against its baseline in the same run (see bench/*.bench.ts for what each baseline is).',
    '',
    '| name | description | unit | value | baseline | ratio |',
    '|---|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
  writeFileSync(new URL('./RESULTS.md', import.meta.url), text);
}
