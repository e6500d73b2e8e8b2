/** The topics the collector writes: created at start when missing. */
import type { Log } from '../log/index.ts';
import { CLICKS_TOPIC, EMISSIONS_TOPIC } from './ingest.ts';
import { ensureRejectedTopic } from './rejected.ts';

/** Creates `emissions` and `clicks` with `partitions` partitions, and the rejected topic, when missing. */
export async function ensureCollectorTopics(log: Log, partitions: number): Promise<void> {
  for (const name of [EMISSIONS_TOPIC, CLICKS_TOPIC]) await log.createTopic({ name, partitions });
  await ensureRejectedTopic(log);
}
