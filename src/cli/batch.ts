/**
 * `reckon batch --interval 2026-11-21`: recalculates a day (or an hour, `2026-11-21T05`) from the
 * lake and replaces its batch rows in the serving store and the lake, printing the steps and a
 * summary. Safe to rerun: a rerun gives identical rows.
 */
import { join, resolve } from 'node:path';
import { runRecalculation } from '../batch/index.ts';
import { type ReckonConfig, statsRulesOf } from '../config/index.ts';
import { UsageError } from './errors.ts';
import { lakeInputCheck, lazyLogEnds } from './lake-input.ts';
import { openStores } from './process.ts';
import { lakeHourFiles } from '../lake/index.ts';

const HOUR = 3_600_000;
const DAY = 86_400_000;

/** Parses `YYYY-MM-DD` (a UTC day) or `YYYY-MM-DDTHH` (a UTC hour) into [from, to). */
export function parseInterval(text: string): { from: number; to: number } {
  const day = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  const hour = /^(\d{4})-(\d{2})-(\d{2})T(\d{2})(?::00(?::00(?:\.000)?)?)?Z?$/.exec(text);
  const m = day ?? hour;
  if (m === null) {
    throw new UsageError(
      `--interval ${JSON.stringify(text)}: expected a UTC day like 2026-11-21 or an hour like 2026-11-21T05`,
    );
  }
  const [, y, mo, d, h = '0'] = m;
  const from = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h));
  const check = new Date(from).toISOString();
  if (check.slice(0, 10) !== `${y}-${mo}-${d}` || Number(h) > 23) {
    throw new UsageError(`--interval ${JSON.stringify(text)}: no such day or hour`);
  }
  return { from, to: from + (day !== null ? DAY : HOUR) };
}

/**
 * Runs one recalculation of [from, to) with the configured lake and store; returns the summary
 * line. It refuses an interval whose lake input is not complete (after waiting up to `waitMs` for
 * the archiver), unless `force`: then the rows are served marked final=false.
 */
export async function runBatch(
  config: ReckonConfig,
  from: number,
  to: number,
  options: { waitMs?: number; force?: boolean } = {},
): Promise<string> {
  const { schemas, stats } = await openStores(config);
  const log = lazyLogEnds(config);
  try {
    const lakeDir = join(resolve(config.dataDir), 'lake');
    const run = await runRecalculation({
      listHourFiles: lakeHourFiles,
      lakeDir,
      store: stats,
      from,
      to,
      rules: statsRulesOf(config),
      inputCheck: lakeInputCheck(config, log, options.waitMs ?? 30_000),
      force: options.force === true,
      onStep: (name, step, steps) => process.stderr.write(`[${step}/${steps}] ${name}\n`),
    });
    const seconds = (run.computeMs + run.writeMs) / 1000;
    const deviations = run.discrepancies
      .filter((d) => d.speed !== d.batch)
      .map((d) => `${d.column} speed ${d.speed} vs batch ${d.batch}`);
    return (
      (run.complete
        ? ''
        : `forced: the lake input was not complete (${run.incompleteInput}); the rows are served marked final=false\n`) +
      `${deviations.length === 0 ? 'speed equalled batch in every column' : `speed deviated: ${deviations.join('; ')}`}\n` +
      `batch ${new Date(from).toISOString()} .. ${new Date(to).toISOString()}: run ${run.runId}, ` +
      `${run.recordsRead} records read from ${run.files} files (${run.emissions} emissions, ${run.clicks} clicks in the interval), ` +
      `${run.rows} minute rows written in ${seconds.toFixed(2)} s ` +
      `(${Math.round(run.recordsRead / Math.max(seconds, 1e-3)).toLocaleString('en-US')} records/s)`
    );
  } finally {
    await stats.close();
    await schemas.close();
    await log.close();
  }
}
