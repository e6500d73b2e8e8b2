/**
 * What every reckon process does to run: open the configured log and stores, publish its status
 * under the data directory, exit when orphaned, stop on SIGTERM. The verbs (`speed`, `archiver`,
 * `scheduler`, `start`, …) are built on these.
 */
import { join, resolve } from 'node:path';
import type { ReckonConfig } from '../config/index.ts';
import type { SchemaStore } from '../events/index.ts';
import { KafkaLog, type Log, openEmbeddedLog } from '../log/index.ts';
import { openPostgresSchemaStore, openSqliteSchemaStore } from '../store/index.ts';
import { openPostgresStatsStore, openSqliteStatsStore, type StatsStore } from '../stats/index.ts';

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

/** The relational stores of the configured mode: SQLite under the data directory, or PostgreSQL. */
export async function openStores(config: ReckonConfig): Promise<{ schemas: SchemaStore; stats: StatsStore }> {
  if (config.postgresUrl !== undefined) {
    return {
      schemas: await openPostgresSchemaStore(config.postgresUrl),
      stats: await openPostgresStatsStore(config.postgresUrl),
    };
  }
  const file = join(resolve(config.dataDir), 'reckon.sqlite');
  return { schemas: await openSqliteSchemaStore(file), stats: await openSqliteStatsStore(file) };
}

/** Where supervised processes publish their status files (`<dataDir>/status`). */
export const statusDirOf = (config: ReckonConfig): string => join(resolve(config.dataDir), 'status');

/** Exits when the process that started this one is gone (a supervisor killed with SIGKILL cannot stop its workers). */
export function exitWhenOrphaned(supervisorPid?: number): void {
  // The supervisor names itself: it may already be gone when this process gets here, and then
  // `process.ppid` would be whoever adopted the orphan.
  const parent = supervisorPid ?? process.ppid;
  if (process.ppid !== parent) process.exit(0);
  setInterval(() => {
    if (process.ppid !== parent) process.exit(0);
  }, 250).unref();
}

/** On SIGTERM: stops `worker`, closes `resources` in order, and exits (1 if any of it failed). */
export function stopOnSigterm(worker: { stop(): Promise<void> }, resources: { close(): Promise<void> }[]): void {
  process.once('SIGTERM', () => {
    worker
      .stop()
      .then(async () => {
        for (const r of resources) await r.close();
      })
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  });
}
