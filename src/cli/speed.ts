/**
 * `reckon speed`: the speed layer as its own process (started and supervised by `reckon start`):
 * the log as a reader, the serving store, the registry for decoding. Exits non-zero when its
 * deltas cannot be written, so that the supervisor restarts it and it replays from the log.
 */
import { join, resolve } from 'node:path';
import { type ReckonConfig, statsRulesOf } from '../config/index.ts';
import { registryDecoder, SchemaRegistry } from '../events/index.ts';
import { SpeedLayer } from '../speed/index.ts';
import { publishStatus } from '../workers/index.ts';
import { openPostgresSchemaStore, openSqliteSchemaStore } from '../store/index.ts';
import { openStatsWriterThread } from '../stats/index.ts';
import { exitWhenOrphaned, openLog, statusDirOf, stopOnSigterm } from './process.ts';

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
