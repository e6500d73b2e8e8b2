/**
 * Bearer tokens with three scopes: `ingest` (POST /v1/events), `read` (statistics, registry
 * reads, metrics) and `admin` (scheduler, registry writes, dead-letter replay). The admin token
 * is accepted for every scope. A scope whose token is not set is open: reckon then listens on
 * loopback only (see checkBindAddress). Tokens are compared in constant time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** A token scope. */
export type Scope = 'ingest' | 'read' | 'admin';

/** The configured tokens. */
export interface Tokens {
  ingestToken?: string | undefined;
  readToken?: string | undefined;
  adminToken?: string | undefined;
}

/** A fastify onRequest hook. */
export type AccessHook = (request: FastifyRequest, reply: FastifyReply) => Promise<void>;

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

function sameToken(given: Buffer, expected: Buffer | undefined): boolean {
  // Digests have equal length, so the comparison time does not depend on the token's length or content.
  return expected !== undefined && timingSafeEqual(given, expected);
}

/** Makes the onRequest hook that admits requests of `scope`. */
export function accessHook(scope: Scope, tokens: Tokens): AccessHook {
  const own = tokens[`${scope}Token`];
  const admin = tokens.adminToken === undefined ? undefined : digest(tokens.adminToken);
  const scopeDigest = own === undefined ? undefined : digest(own);
  const others = (['ingest', 'read', 'admin'] as const)
    .filter((s) => s !== scope)
    .map((s) => tokens[`${s}Token`])
    .filter((t): t is string => t !== undefined)
    .map(digest);
  return async (request, reply) => {
    if (own === undefined) return; // open scope (loopback only)
    const header = request.headers.authorization;
    const m = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (m === null) {
      await reply
        .code(401)
        .header('www-authenticate', `Bearer realm="reckon", scope="${scope}"`)
        .send({
          error: 'unauthorized',
          message: `this endpoint needs the ${scope} token: send "Authorization: Bearer <RECKON_${scope.toUpperCase()}_TOKEN>"`,
        });
      return;
    }
    const given = digest(m[1] as string);
    if (sameToken(given, scopeDigest) || sameToken(given, admin)) return;
    const otherScope = others.some((o) => sameToken(given, o));
    await reply
      .code(otherScope ? 403 : 401)
      .header('www-authenticate', `Bearer realm="reckon", scope="${scope}", error="invalid_token"`)
      .send({
        error: otherScope ? 'forbidden' : 'unauthorized',
        message: otherScope
          ? `this token is valid but not for ${scope}: use the ${scope} (or admin) token`
          : 'the bearer token is not valid for this server',
      });
  };
}
