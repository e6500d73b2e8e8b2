/**
 * `reckon speed`: the speed layer as its own process (started and supervised by `reckon start`):
 * the log as a reader, the serving store, the registry for decoding. Exits non-zero when its
 * deltas cannot be written, so that the supervisor restarts it and it replays from the log.
 */
import { join, resolve } from 'node:path';
import { type ReckonConfig, statsRulesOf } from '../config/index.ts';
import { registryDecoder, SchemaRegistry, type SchemaStore } from '../events/index.ts';
import { openLog } from '../log/index.ts';
import { SpeedLayer } from '../speed/index.ts';
import { publishStatus } from '../workers/index.ts';
import { openPostgresSchemaStore, openSqliteSchemaStore } from '../store/index.ts';
import {
  openPostgresStatsStore,
  openSqliteStatsStore,
  openStatsWriterThread,
  type StatsStore,
} from '../stats/index.ts';

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

/** Runs the speed layer until SIGTERM (or, when `supervised`, until the process that started it is gone). */
export async function runSpeed(config: ReckonConfig, supervised: boolean | number = false): Promise<void> {
  if (supervised !== false) exitWhenOrphaned(supervised === true ? undefined : supervised);
  const log = await openLog(config, 'reader');
  const schemas =
    config.postgresUrl !== undefined
      ? await openPostgresSchemaStore(config.postgresUrl)
      : await openSqliteSchemaStore(join(resolve(config.dataDir), 'reckon.sqlite'));
  // The store writes and compacts on a thread of its own while this one decodes and counts.
  const stats = await openStatsWriterThread(
    config.postgresUrl !== undefined
      ? { kind: 'postgres', url: config.postgresUrl }
      : { kind: 'sqlite', path: join(resolve(config.dataDir), 'reckon.sqlite') },
  );
  const speed = new SpeedLayer({
    log,
    sink: stats,
    flushSpacing: 0,
    decoder: registryDecoder(new SchemaRegistry(schemas)),
    rules: statsRulesOf(config),
    allowedLatenessMs: config.allowedLatenessMs,
    // On Kafka, speed processes share the partitions as one consumer group.
    groupMembership: config.kafkaBrokers.length > 0,
    ...(config.dataCenters.length > 0
      ? {
          emissionsTopics: config.dataCenters.map((dc) => `emissions.${dc}`),
          clicksTopics: config.dataCenters.map((dc) => `clicks.${dc}`),
        }
      : {}),
    onFatal: (e) => {
      process.stderr.write(`reckon speed: ${e.message}; exiting so that it restarts and replays\n`);
      process.exit(1);
    },
  });
  await speed.start();
  publishStatus(statusDirOf(config), 'speed', () => speed.metrics());
  stopOnSigterm(speed, [stats, schemas, log]);
}
