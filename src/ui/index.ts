/**
 * The dashboard: static pages under `/ui/` (plain browser modules, no build step) that read the
 * JSON API, and uPlot's files under `/ui/vendor/`. Every file is read once, when the plugin is
 * registered, into a fixed table: a request can only ever get one of those files, never a path
 * it made up. The pages carry no data and need no token; the API they call does.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync } from 'fastify';

/** A file the dashboard serves. */
export interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** The pages' own content only: no inline scripts, nothing from another origin. */
const CONTENT_SECURITY_POLICY =
  "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/** Files of uPlot that the pages load, by the name they have under `/ui/vendor/`. */
const VENDOR_FILES = ['uPlot.iife.min.js', 'uPlot.min.css'];

/**
 * The folder of the pages' files: beside this module when the build copied it (dist/ui/assets),
 * else the source folder (running dist/ built by a plain `tsc`, which copies no other files).
 */
export function assetsDirectory(): string {
  const here = fileURLToPath(new URL('./assets/', import.meta.url));
  if (existsSync(here)) return here;
  const source = fileURLToPath(new URL('../../src/ui/assets/', import.meta.url));
  if (existsSync(source)) return source;
  throw new Error(`reckon ui: the dashboard's files are missing (looked in ${here} and ${source}); run npm run build`);
}

function asset(body: Buffer, file: string): Asset {
  const type = TYPES[extname(file)] ?? 'application/octet-stream';
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
}

function readTree(dir: string, into: Map<string, Asset>, root = dir): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) readTree(path, into, root);
    else if (entry.isFile()) into.set(relative(root, path).split(sep).join('/'), asset(readFileSync(path), path));
  }
}

/** Every file the dashboard serves, by its path under `/ui/`. */
export function dashboardAssets(): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  readTree(assetsDirectory(), assets);
  const require = createRequire(import.meta.url);
  for (const name of VENDOR_FILES) {
    const path = require.resolve(`uplot/dist/${name}`);
    assets.set(`vendor/${name}`, asset(readFileSync(path), path));
  }
  return assets;
}

/** Serves the dashboard: `/` and `/ui` redirect to `/ui/`, which is the single page; its files are under `/ui/`. */
export const uiRoutes: FastifyPluginAsync<Record<never, never>> = async (app) => {
  const assets = dashboardAssets();
  app.get('/', async (_request, reply) => reply.redirect('/ui/', 302));
  app.get('/ui', async (_request, reply) => reply.redirect('/ui/', 302));
  app.get<{ Params: { '*': string } }>('/ui/*', async (request, reply) => {
    const name = request.params['*'] === '' ? 'index.html' : request.params['*'];
    const found = assets.get(name);
    if (found === undefined)
      return reply
        .code(404)
        .send({ error: 'not found', message: `the dashboard has no file ${name}: open /ui/ for the dashboard` });
    // Revalidated on every load, so that a new version of reckon is never shown with old scripts.
    reply
      .header('cache-control', 'no-cache')
      .header('etag', found.etag)
      .header('x-content-type-options', 'nosniff')
      .header('content-security-policy', CONTENT_SECURITY_POLICY);
    if (request.headers['if-none-match'] === found.etag) return reply.code(304).send();
    return reply.type(found.type).send(found.body);
  });
};
