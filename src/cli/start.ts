import { join, resolve } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import {
  accessHook,
  CLICKS_TOPIC,
  collectorRoutes,
  EMISSIONS_TOPIC,
  ensureCollectorTopics,
  ParsePool,
  schemaRegistryRoutes,
} from '../collector/index.ts';
import { checkBindAddress, type ReckonConfig } from '../config/index.ts';
import { CLICK_SCHEMA, EMISSION_SCHEMA, SchemaRegistry } from '../events/index.ts';
import { type Log, openLog } from '../log/index.ts';
import { openPostgresSchemaStore, openSqliteSchemaStore } from '../store/index.ts';
import { VERSION } from './version.ts';

/** Parts of the pipeline that `reckon start` does not run yet, said plainly at start and on /healthz. */
export const NOT_BUILT_YET = [
  'speed layer',
  'archiver and lake',
  'batch recalculation',
  'serving API (GET /v1/stats)',
  'scheduler',
  'dashboard',
  'demo traffic',
];

/** A running pipeline: its HTTP server and what it holds open. */
export interface Pipeline {
  app: FastifyInstance;
  log: Log;
  registry: SchemaRegistry;
  /** Stops serving, then closes the log and the database. */
  close(): Promise<void>;
}

/** Subjects of the event schemas, as Confluent's TopicNameStrategy names them. */
export const subjectOf = (topic: string): string => `${topic}-value`;

/**
 * Opens the log and the registry, registers the event schemas, creates the topics and builds the
 * HTTP server (not listening yet): the collector, the schema registry, /healthz.
 */
export async function buildPipeline(config: ReckonConfig): Promise<Pipeline> {
  const log = await openLog(config);
  const store =
    config.postgresUrl !== undefined
      ? await openPostgresSchemaStore(config.postgresUrl)
      : await openSqliteSchemaStore(join(resolve(config.dataDir), 'reckon.sqlite'));
  const registry = new SchemaRegistry(store);
  const app = Fastify({ logger: false, forceCloseConnections: true });
  const parsePool = new ParsePool(config.ingestParseThreads);
  const close = async (): Promise<void> => {
    await app.close();
    await parsePool.close();
    await log.close();
    await store.close();
  };
  try {
    const schemaIds = {
      emission: (await registry.register(subjectOf(EMISSIONS_TOPIC), EMISSION_SCHEMA)).id,
      click: (await registry.register(subjectOf(CLICKS_TOPIC), CLICK_SCHEMA)).id,
    };
    await ensureCollectorTopics(log, config.topicPartitions);
    app.get('/healthz', async () => ({ status: 'ok', version: VERSION, notBuiltYet: NOT_BUILT_YET }));
    await app.register(collectorRoutes, {
      log,
      schemaIds,
      tokens: config,
      parsePool,
      limits: {
        maxBodyBytes: config.ingestMaxBodyBytes,
        maxLineBytes: config.ingestMaxLineBytes,
        maxEvents: config.ingestMaxEvents,
        maxInFlightBytes: config.ingestMaxInFlightBytes,
      },
    });
    await app.register(schemaRegistryRoutes, {
      registry,
      readAccess: accessHook('read', config),
      writeAccess: accessHook('admin', config),
    });
    await app.ready();
  } catch (e) {
    await close().catch(() => undefined);
    throw e;
  }
  return { app, log, registry, close };
}

/** Runs `reckon start` until SIGINT or SIGTERM. */
export async function start(config: ReckonConfig, out: NodeJS.WritableStream = process.stdout): Promise<Pipeline> {
  checkBindAddress(config);
  const pipeline = await buildPipeline(config);
  const { app } = pipeline;
  await app.listen({ port: config.port, host: config.host });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  out.write(`reckon ${VERSION} listening on http://${host}:${port}\n`);
  out.write(
    `  log:           ${pipeline.log.kind}${config.kafkaBrokers.length > 0 ? '' : ` (${resolve(config.dataDir, 'log')})`}\n`,
  );
  out.write(
    `  running:       POST /v1/events, schema registry (/subjects, /schemas, /config, /compatibility), /healthz, /readyz, /metrics\n`,
  );
  out.write(`  not built yet: ${NOT_BUILT_YET.join(', ')}\n`);
  if (config.demo)
    out.write('  --demo: simulated traffic is not built yet; use `reckon simulate` and `curl` to send events\n');
  const stop = (signal: string): void => {
    out.write(`reckon: ${signal} received, stopping\n`);
    pipeline.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  return pipeline;
}
