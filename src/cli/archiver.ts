/**
 * `reckon archiver`: runs the archiver (log -> Parquet lake under `<data>/lake`) in this process;
 * `reckon start` runs it for you, supervised. Exits when orphaned (`--supervised`).
 */
import { join, resolve } from 'node:path';
import type { ReckonConfig } from '../config/index.ts';
import { registryDecoder, SchemaRegistry } from '../events/index.ts';
import { Archiver } from '../lake/index.ts';
import { publishStatus } from '../workers/index.ts';
import { exitWhenOrphaned, openLog, openStores, statusDirOf, stopOnSigterm } from './process.ts';

/** Runs the archiver until SIGTERM (or, when `supervised`, until the process that started it is gone). */
export async function runArchiver(config: ReckonConfig, supervised: boolean | number = false): Promise<void> {
  if (supervised !== false) exitWhenOrphaned(supervised === true ? undefined : supervised);
  const log = await openLog(config, 'reader');
  const { schemas, stats } = await openStores(config);
  const archiver = new Archiver({
    log,
    lakeDir: join(resolve(config.dataDir), 'lake'),
    decoder: registryDecoder(new SchemaRegistry(schemas)),
    allowedLatenessMs: config.allowedLatenessMs,
    // On Kafka, archiver processes (sharing the lake directory) split the partitions as one group.
    groupMembership: config.kafkaBrokers.length > 0,
    onFatal: (e) => {
      process.stderr.write(`reckon archiver: ${e.message}; exiting so that it restarts from the manifests\n`);
      process.exit(1);
    },
  });
  await archiver.start();
  publishStatus(statusDirOf(config), 'archiver', () => archiver.metrics());
  stopOnSigterm(archiver, [stats, schemas, log]);
}
