import Fastify, { type FastifyInstance } from 'fastify';
import { checkBindAddress, type ReckonConfig } from '../config/index.ts';
import { VERSION } from './version.ts';

/** Parts of the pipeline that `reckon start` does not run yet, said plainly at start and on /healthz. */
export const NOT_BUILT_YET = [
  'collector (POST /v1/events)',
  'log',
  'speed layer',
  'archiver and lake',
  'batch recalculation',
  'serving API (GET /v1/stats)',
  'scheduler',
  'metrics and dashboard',
  'demo traffic',
];

/** Builds the HTTP server of `reckon start`. */
export function buildServer(): FastifyInstance {
  const app = Fastify({ logger: false });
  app.get('/healthz', async () => ({ status: 'ok', version: VERSION, notBuiltYet: NOT_BUILT_YET }));
  return app;
}

/** Runs `reckon start` until SIGINT or SIGTERM. */
export async function start(
  config: ReckonConfig,
  out: NodeJS.WritableStream = process.stdout,
): Promise<FastifyInstance> {
  checkBindAddress(config);
  const app = buildServer();
  await app.listen({ port: config.port, host: config.host });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  out.write(`reckon ${VERSION} listening on http://${host}:${port}\n`);
  out.write(`  running:       GET /healthz\n`);
  out.write(`  not built yet: ${NOT_BUILT_YET.join(', ')}\n`);
  if (config.demo)
    out.write('  --demo: simulated traffic is not built yet; use `reckon simulate` to generate events\n');
  const stop = (signal: string): void => {
    out.write(`reckon: ${signal} received, stopping\n`);
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  return app;
}
