/**
 * The check every recalculation of the product runs first (`reckon batch`, `reckon recalc`, the
 * scheduler's tasks): the interval's lake input complete, against the configured log's ends.
 * The log is opened on first use (as a reader), so commands that never recalculate never open it.
 */
import { join, resolve } from 'node:path';
import type { InputCheck } from '../batch/index.ts';
import { CLICKS_TOPIC, EMISSIONS_TOPIC } from '../collector/index.ts';
import type { ReckonConfig } from '../config/index.ts';
import { awaitLakeInput, type LogEndsReader } from '../lake/index.ts';
import type { Log } from '../log/index.ts';
import { openLog } from './process.ts';

/** The topics the archiver lands in the lake. */
export const LAKE_INPUT_TOPICS: readonly string[] = [EMISSIONS_TOPIC, CLICKS_TOPIC];

/** The configured log's ends, opened on first use; `close()` closes it if it was opened. */
export function lazyLogEnds(config: ReckonConfig): LogEndsReader & { close(): Promise<void> } {
  let opening: Promise<Log> | undefined;
  const log = () => (opening ??= openLog(config, 'reader'));
  return {
    partitionCount: async (topic) => (await log()).partitionCount(topic),
    latestOffset: async (topic, partition) => (await log()).latestOffset(topic, partition),
    async close() {
      if (opening !== undefined) await (await opening).close();
    },
  };
}

/** An input check over the configured lake and log that waits up to `waitMs` for the archiver. */
export function lakeInputCheck(config: ReckonConfig, log: LogEndsReader, waitMs: number): InputCheck {
  return (from, to, signal) =>
    awaitLakeInput({
      lakeDir: join(resolve(config.dataDir), 'lake'),
      log,
      topics: LAKE_INPUT_TOPICS,
      from,
      to,
      waitMs,
      allowedLatenessMs: config.allowedLatenessMs,
      ...(signal !== undefined ? { signal } : {}),
    });
}
