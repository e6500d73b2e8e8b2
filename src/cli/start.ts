import { spawn } from 'node:child_process';
import { STATUS_CODES } from 'node:http';
import { availableParallelism, setPriority } from 'node:os';
import { join, resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import {
  accessHook,
  CLICKS_TOPIC,
  CollectorMetrics,
  collectorRoutes,
  EMISSIONS_TOPIC,
  ensureCollectorTopics,
  ParsePool,
  schemaRegistryRoutes,
} from '../collector/index.ts';
import { checkBindAddress, type ReckonConfig } from '../config/index.ts';
import { CLICK_SCHEMA, EMISSION_SCHEMA, SchemaRegistry } from '../events/index.ts';
import type { Log } from '../log/index.ts';
import {
  type MonitorSources,
  monitorRoutes,
  overviewSampler,
  type RateSampler,
  registerPipelineMetrics,
} from '../monitor/index.ts';
import { schedulerRoutes } from '../scheduler/index.ts';
import { uiRoutes } from '../ui/index.ts';
import { registerReconciliationMetrics, statsRoutes } from '../serving/index.ts';
import { openStatsThreadPool, type StatsStore } from '../stats/index.ts';
import { WorkerSupervisor } from '../workers/index.ts';
import { openScheduling, type Scheduling } from './scheduler.ts';
import { openLog, openStores, statusDirOf } from './process.ts';
import { VERSION } from './version.ts';

/** Parts of the pipeline that `reckon start` does not run yet, said plainly at start and on /healthz. */
export const NOT_BUILT_YET: string[] = [];

/** A running pipeline: its HTTP server and what it holds open. */
export interface Pipeline {
  app: FastifyInstance;
  log: Log;
  registry: SchemaRegistry;
  stats: StatsStore;
  /** Stops serving, then closes the log and the database. */
  close(): Promise<void>;
}

/** Subjects of the event schemas, as Confluent's TopicNameStrategy names them. */
export const subjectOf = (topic: string): string => `${topic}-value`;

/**
 * Answers a request Node's HTTP parser refused (headers too large, malformed, timed out) and
 * closes its connection. Unlike fastify's default it says `Connection: close`, so that a client
 * keeping connections alive does not send its next request into a closed socket.
 */
function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, message] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'the request headers are larger than this server accepts (16 KiB)']
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'the request was not received in time']
        : [400, `the request is not valid HTTP/1.1 (${error.code ?? error.message})`];
  const body = JSON.stringify({ error: 'RECKON_BAD_HTTP_REQUEST', message });
  if (!socket.writable) return void socket.destroy();
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    () => socket.destroy(),
  );
}

/**
 * Opens the log and the registry, registers the event schemas, creates the topics and builds the
 * HTTP server (not listening yet): the collector, the schema registry, /healthz.
 */
export async function buildPipeline(config: ReckonConfig): Promise<Pipeline> {
  const log = await openLog(config);
  const { schemas, stats } = await openStores(config);
  const registry = new SchemaRegistry(schemas);
  const app = Fastify({ logger: false, forceCloseConnections: true, clientErrorHandler: answerClientError });
  const parsePool = new ParsePool(config.ingestParseThreads);
  let scheduling: Scheduling | undefined;
  let sampler: RateSampler | undefined;
  let queries: StatsStore | undefined;
  const close = async (): Promise<void> => {
    sampler?.stop();
    await app.close();
    await queries?.close();
    await scheduling?.close();
    await parsePool.close();
    await log.close();
    await stats.close();
    await schemas.close();
  };
  try {
    const schemaIds = {
      emission: (await registry.register(subjectOf(EMISSIONS_TOPIC), EMISSION_SCHEMA)).id,
      click: (await registry.register(subjectOf(CLICKS_TOPIC), CLICK_SCHEMA)).id,
    };
    await ensureCollectorTopics(log, config.topicPartitions);
    // Per-DC topics are filled by replication from each DC's own log; the speed layer merges them.
    for (const dc of config.dataCenters) {
      for (const name of [`emissions.${dc}`, `clicks.${dc}`]) {
        await log.createTopic({ name, partitions: config.topicPartitions });
      }
    }
    app.get('/healthz', async () => ({ status: 'ok', version: VERSION, notBuiltYet: NOT_BUILT_YET }));
    // One /metrics: the collector's figures, the reconciliation of speed and batch, and the
    // monitor's (log, consumers, lake, workers, scheduler, anomaly scores).
    const metrics = new CollectorMetrics();
    registerReconciliationMetrics(metrics.registry, stats);
    // The API creates and reads runs; the scheduler process runs them.
    scheduling = await openScheduling(config);
    const sources: MonitorSources = {
      log,
      stats,
      scheduler: scheduling.store,
      lakeDir: join(resolve(config.dataDir), 'lake'),
      statusDir: statusDirOf(config),
      eventTopics:
        config.dataCenters.length > 0
          ? config.dataCenters.flatMap((dc) => [`emissions.${dc}`, `clicks.${dc}`])
          : [EMISSIONS_TOPIC, CLICKS_TOPIC],
    };
    registerPipelineMetrics(metrics.registry, sources);
    sampler = overviewSampler(sources, metrics);
    sampler.start();
    await app.register(collectorRoutes, {
      log,
      schemaIds,
      tokens: config,
      parsePool,
      metrics,
      limits: {
        maxBodyBytes: config.ingestMaxBodyBytes,
        maxLineBytes: config.ingestMaxLineBytes,
        maxEvents: config.ingestMaxEvents,
        maxInFlightBytes: config.ingestMaxInFlightBytes,
      },
    });
    // `GET /v1/stats` reads on threads of their own, as many as cores: concurrent queries run side
    // by side instead of queueing on this thread (measured: query.p99 in bench/RESULTS.md).
    queries = await openStatsThreadPool(
      config.postgresUrl !== undefined
        ? { kind: 'postgres', url: config.postgresUrl }
        : { kind: 'sqlite', path: join(resolve(config.dataDir), 'reckon.sqlite') },
      Math.min(QUERY_THREADS_MAX, availableParallelism()),
    );
    await app.register(statsRoutes, { store: queries, readAccess: accessHook('read', config) });
    await app.register(schedulerRoutes, {
      scheduler: scheduling.scheduler,
      store: scheduling.store,
      adminAccess: accessHook('admin', config),
    });
    await app.register(monitorRoutes, {
      sources,
      sampler,
      readAccess: accessHook('read', config),
      adminAccess: accessHook('admin', config),
    });
    await app.register(uiRoutes);
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
  return { app, log, registry, stats, close };
}

/** Events a second of `reckon start --demo`. */
const DEMO_RATE = 200;
/** Wait before restarting a demo process that died: a back-off, so a failing one does not spin. */
const DEMO_RESTART_MS = 1000;

/** Runs `reckon demo` against this server, restarted (after a second) when it dies. */
function superviseDemo(url: string, config: ReckonConfig, out: NodeJS.WritableStream): { stop(): Promise<void> } {
  let child: ReturnType<typeof spawn> | undefined;
  let stopped = false;
  const run = () => {
    child = spawn(
      process.execPath,
      [
        ...process.execArgv,
        process.argv[1] as string,
        'demo',
        '--url',
        url,
        '--rate',
        String(DEMO_RATE),
        '--supervised',
        String(process.pid),
      ],
      {
        stdio: ['ignore', 'ignore', 'inherit'],
        env: { ...process.env, ...(config.ingestToken ? { RECKON_INGEST_TOKEN: config.ingestToken } : {}) },
      },
    );
    child.once('exit', (code) => {
      if (stopped) return;
      out.write(`reckon demo: exited (${code}); restarting\n`);
      setTimeout(run, DEMO_RESTART_MS).unref();
    });
  };
  run();
  return {
    async stop() {
      stopped = true;
      child?.kill('SIGTERM');
    },
  };
}

/** Most threads answering `GET /v1/stats` (one per core up to this). */
const QUERY_THREADS_MAX = 4;

/** Scheduling priority of the archiver's process (nice value; higher runs later). */
export const ARCHIVER_NICENESS = 15;
/**
 * Scheduling priority of the speed layer's process. On saturated cores the collector (whose
 * answers wait for durability, and whose refusals clients must retry) goes first; the speed
 * layer reads the same events from the durable log a moment later. On cores with room to spare
 * a nice value changes nothing.
 */
export const SPEED_NICENESS = 5;

/** Runs `reckon <verb>` (the speed layer, the archiver) as a supervised process of its own, restarted when it dies. */
function supervise(
  verb: 'speed' | 'archiver' | 'scheduler',
  config: ReckonConfig,
  log: Log,
  out: NodeJS.WritableStream,
): WorkerSupervisor {
  const supervisor = new WorkerSupervisor({
    log,
    group: verb,
    topics: [EMISSIONS_TOPIC, CLICKS_TOPIC],
    min: 1,
    max: 1,
    spawnWorker: () => {
      const child = spawn(
        process.execPath,
        [
          ...process.execArgv,
          process.argv[1] as string,
          verb,
          '--supervised',
          String(process.pid),
          '--data',
          config.dataDir,
        ],
        {
          stdio: ['ignore', 'inherit', 'inherit'],
        },
      );
      // On busy cores the collector goes first, then the speed layer; the archiver is not on the
      // path to fresh statistics and catches up when they idle (the durable log holds its backlog).
      const niceness = verb === 'archiver' ? ARCHIVER_NICENESS : verb === 'speed' ? SPEED_NICENESS : 0;
      if (niceness > 0 && child.pid !== undefined) {
        try {
          setPriority(child.pid, niceness);
        } catch {
          // Not permitted here: it runs at the default priority.
        }
      }
      return child;
    },
    onEvent: (m) => out.write(`reckon ${verb}: ${m}\n`),
  });
  supervisor.start();
  return supervisor;
}

/**
 * Runs `reckon start` until SIGINT or SIGTERM. With `workers: false` (`reckon collector`) only
 * the HTTP server runs: the speed layer and the archiver run elsewhere, on the same log.
 */
export async function start(
  config: ReckonConfig,
  out: NodeJS.WritableStream = process.stdout,
  { workers: withWorkers = true }: { workers?: boolean } = {},
): Promise<Pipeline> {
  checkBindAddress(config);
  const pipeline = await buildPipeline(config);
  const { app } = pipeline;
  await app.listen({ port: config.port, host: config.host });
  const workers: { stop(): Promise<void> }[] = withWorkers
    ? [
        supervise('speed', config, pipeline.log, out),
        supervise('archiver', config, pipeline.log, out),
        supervise('scheduler', config, pipeline.log, out),
      ]
    : [];
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  out.write(`reckon ${VERSION} listening on http://${host}:${port}\n`);
  out.write(`  dashboard:     http://${host}:${port}/ui/\n`);
  out.write(
    `  log:           ${pipeline.log.kind}${config.kafkaBrokers.length > 0 ? '' : ` (${resolve(config.dataDir, 'log')})`}\n`,
  );
  out.write(
    `  running:       POST /v1/events, ${withWorkers ? `speed layer, archiver and scheduler (own processes; lake in ${resolve(config.dataDir, 'lake')})` : 'no speed layer, archiver or scheduler (run `reckon speed`, `reckon archiver` and `reckon scheduler` on the same data)'}, GET /v1/stats, GET /v1/discrepancies, /v1/dags, /v1/alerts, schema registry (/subjects, /schemas, /config, /compatibility), /healthz, /readyz, /metrics\n`,
  );
  if (NOT_BUILT_YET.length > 0) out.write(`  not built yet: ${NOT_BUILT_YET.join(', ')}\n`);
  if (config.demo && withWorkers) {
    workers.push(superviseDemo(`http://${host}:${port}`, config, out));
    out.write(`  --demo:        live simulated traffic with faults (reckon demo, ${DEMO_RATE} events/s)\n`);
  }
  const stop = (signal: string): void => {
    out.write(`reckon: ${signal} received, stopping\n`);
    Promise.all(workers.map((w) => w.stop()))
      .then(() => pipeline.close())
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  return pipeline;
}
