import { isIP } from 'node:net';
import { ReckonError } from '../events/index.ts';
import type { ReckonConfig } from './config.ts';

/** True for addresses that only this machine can reach. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1' || host === '[::1]') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

/**
 * Enforces the token rule: without all three tokens reckon listens on loopback only, and
 * refuses any other address with an explanation.
 */
export function checkBindAddress(config: ReckonConfig): void {
  if (isLoopback(config.host)) return;
  const missing = [
    config.ingestToken === undefined ? 'RECKON_INGEST_TOKEN' : '',
    config.readToken === undefined ? 'RECKON_READ_TOKEN' : '',
    config.adminToken === undefined ? 'RECKON_ADMIN_TOKEN' : '',
  ].filter((s) => s !== '');
  if (missing.length === 0) return;
  throw new ReckonError(
    'RECKON_UNSAFE_BIND',
    `refusing to listen on ${config.host}: without tokens anyone who can reach that address could write and read data. ` +
      `Set ${missing.join(', ')} (each at least 16 characters), or bind to 127.0.0.1 (--host 127.0.0.1).`,
  );
}
