import { join, resolve } from 'node:path';
import type { ReckonConfig } from '../config/index.ts';
import { openEmbeddedLog } from './embedded.ts';
import { KafkaLog } from './kafka.ts';
import type { Log } from './types.ts';

/**
 * Opens the configured log: Kafka when `kafkaBrokers` is set (distributed mode), else the
 * embedded log under `<dataDir>/log`, as its writer or as a reader process.
 */
export async function openLog(config: ReckonConfig, role: 'writer' | 'reader' = 'writer'): Promise<Log> {
  if (config.kafkaBrokers.length > 0)
    return KafkaLog.connect({
      brokers: config.kafkaBrokers,
      sessionTimeoutMs: config.kafkaSessionTimeoutMs,
      leaderSyncDelayMs: config.kafkaLeaderSyncDelayMs,
    });
  return openEmbeddedLog({
    dir: join(resolve(config.dataDir), 'log'),
    role,
    fsync: config.logFsync,
    lingerMs: config.logLingerMs,
    segmentBytes: config.logSegmentBytes,
  });
}
