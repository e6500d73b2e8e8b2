/**
 * The Confluent Schema Registry REST subset that Kafka clients and tools use, over reckon's
 * {@link SchemaRegistry}: register, look up and fetch schemas, list subjects and versions, test
 * compatibility, read and set compatibility levels. Errors answer as Confluent's do:
 * `{error_code, message}` with the matching HTTP status.
 */
import type {
  FastifyError,
  FastifyInstance,
  FastifyPluginAsync,
  FastifyReply,
  FastifyRequest,
  onRequestAsyncHookHandler,
} from 'fastify';
import { parseSchemaVersion, type SchemaRegistry, SchemaRegistryError, registryHttpStatus } from '../events/index.ts';

/** The media type Confluent answers with. */
export const SCHEMA_REGISTRY_MEDIA_TYPE = 'application/vnd.schemaregistry.v1+json';

const ACCEPTED_MEDIA_TYPES = [SCHEMA_REGISTRY_MEDIA_TYPE, 'application/vnd.schemaregistry+json', 'application/json'];

/** An async onRequest hook that admits a request or answers it (token checks). */
export type RegistryAccessHook = onRequestAsyncHookHandler;

/** Options of {@link schemaRegistryRoutes}. */
export interface SchemaRegistryRoutesOptions {
  registry: SchemaRegistry;
  /** Runs before every GET. */
  readAccess?: RegistryAccessHook;
  /** Runs before every POST and PUT. */
  writeAccess?: RegistryAccessHook;
}

type Params = Record<string, string>;

function invalidSchemaRequest(message: string): SchemaRegistryError {
  return new SchemaRegistryError('RECKON_REGISTRY_INVALID_SCHEMA', message);
}

/** The schema of a `{"schema": "...", "schemaType"?: "AVRO"}` body. */
function schemaOf(body: unknown): string | object {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw invalidSchemaRequest('the request body must be a JSON object like {"schema": "<Avro schema as JSON text>"}');
  }
  const { schema, schemaType, references } = body as Record<string, unknown>;
  if (schemaType !== undefined && schemaType !== null && String(schemaType).toUpperCase() !== 'AVRO') {
    throw invalidSchemaRequest(
      `schemaType ${JSON.stringify(schemaType)} is not supported: reckon's registry holds AVRO schemas only`,
    );
  }
  if (Array.isArray(references) && references.length > 0) {
    throw invalidSchemaRequest('schema references are not supported: send the schema with its named types inline');
  }
  // Confluent expects the schema as JSON text; an embedded JSON object is accepted as well.
  if (typeof schema === 'string' || (schema !== null && typeof schema === 'object')) return schema;
  throw invalidSchemaRequest('the request body has no "schema": send {"schema": "<Avro schema as JSON text>"}');
}

function compatibilityOf(body: unknown): unknown {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return body;
  const b = body as Record<string, unknown>;
  return b.compatibility ?? b.compatibilityLevel;
}

function schemaId(text: string | undefined): number {
  const id = text !== undefined && /^[0-9]{1,10}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(id)) {
    throw new SchemaRegistryError('RECKON_REGISTRY_SCHEMA_NOT_FOUND', `schema ${JSON.stringify(text)} not found`);
  }
  return id;
}

function errorReply(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  reply.type(SCHEMA_REGISTRY_MEDIA_TYPE);
  if (error instanceof SchemaRegistryError) {
    return reply
      .code(registryHttpStatus(error.errorCode))
      .send({ error_code: error.errorCode, message: error.message });
  }
  if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return reply.code(415).send({
      error_code: 415,
      message: `unsupported content type ${JSON.stringify(request.headers['content-type'] ?? '')}: send ${ACCEPTED_MEDIA_TYPES.join(', ')}`,
    });
  }
  const status = error.statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    // Fastify's own errors about the request: unreadable or empty JSON, oversized bodies.
    return reply.code(status).send({ error_code: status, message: error.message });
  }
  request.log.error({ err: error }, 'schema registry request failed');
  return reply.code(500).send({ error_code: 50001, message: 'the schema registry failed: see the server log' });
}

/**
 * Fastify plugin with the Confluent-compatible registry endpoints under `/schemas`, `/subjects`,
 * `/compatibility` and `/config`. Register it without fastify-plugin: its body parsers and error
 * handler stay inside its own scope.
 */
export const schemaRegistryRoutes: FastifyPluginAsync<SchemaRegistryRoutesOptions> = async (
  app: FastifyInstance,
  options: SchemaRegistryRoutesOptions,
) => {
  const { registry } = options;
  const read = options.readAccess === undefined ? {} : { onRequest: options.readAccess };
  const write = options.writeAccess === undefined ? {} : { onRequest: options.writeAccess };

  // Confluent's clients send these media types; application/json is fastify's default already.
  app.addContentTypeParser(
    ACCEPTED_MEDIA_TYPES.filter((t) => t !== 'application/json'),
    { parseAs: 'string' },
    app.getDefaultJsonParser('error', 'error'),
  );
  app.addHook('onRequest', async (_request, reply) => {
    reply.type(SCHEMA_REGISTRY_MEDIA_TYPE);
  });
  app.setErrorHandler(errorReply);

  app.get('/schemas/types', read, async () => ['AVRO']);

  app.get('/schemas/ids/:id', read, async (request) => {
    const { id } = request.params as Params;
    return { schema: await registry.schemaById(schemaId(id)) };
  });

  app.get('/schemas/ids/:id/schema', read, async (request) => {
    const { id } = request.params as Params;
    return registry.schemaById(schemaId(id));
  });

  app.get('/subjects', read, async () => registry.subjects());

  app.get('/subjects/:subject/versions', read, async (request) => {
    const { subject } = request.params as Params;
    return registry.versions(subject as string);
  });

  app.post('/subjects/:subject/versions', write, async (request) => {
    const { subject } = request.params as Params;
    const { id } = await registry.register(subject as string, schemaOf(request.body));
    return { id };
  });

  // Lookups and compatibility checks change nothing: the read token suffices (serializers that
  // do not auto-register call them).
  app.post('/subjects/:subject', read, async (request) => {
    const { subject } = request.params as Params;
    const found = await registry.lookup(subject as string, schemaOf(request.body));
    return { subject: found.subject, version: found.version, id: found.id, schema: found.schema };
  });

  app.get('/subjects/:subject/versions/:version', read, async (request) => {
    const { subject, version } = request.params as Params;
    const found = await registry.getVersion(subject as string, parseSchemaVersion(version as string));
    return { subject: found.subject, version: found.version, id: found.id, schema: found.schema };
  });

  app.get('/subjects/:subject/versions/:version/schema', read, async (request) => {
    const { subject, version } = request.params as Params;
    return (await registry.getVersion(subject as string, parseSchemaVersion(version as string))).schema;
  });

  const compatibility = async (request: FastifyRequest) => {
    const { subject, version } = request.params as Params;
    const { verbose } = request.query as Params;
    const against = version === undefined ? 'latest' : parseSchemaVersion(version);
    const result = await registry.checkCompatibility(subject as string, schemaOf(request.body), against);
    return verbose === 'true'
      ? { is_compatible: result.isCompatible, messages: result.messages }
      : { is_compatible: result.isCompatible };
  };
  app.post('/compatibility/subjects/:subject/versions/:version', read, compatibility);
  app.post('/compatibility/subjects/:subject/versions', read, compatibility);

  app.get('/config', read, async () => ({ compatibilityLevel: await registry.getConfig(null) }));

  app.put('/config', write, async (request) => ({
    compatibility: await registry.setConfig(null, compatibilityOf(request.body)),
  }));

  app.get('/config/:subject', read, async (request) => {
    const { subject } = request.params as Params;
    const { defaultToGlobal } = request.query as Params;
    return {
      compatibilityLevel: await registry.getConfig(subject as string, { defaultToGlobal: defaultToGlobal === 'true' }),
    };
  });

  app.put('/config/:subject', write, async (request) => {
    const { subject } = request.params as Params;
    return { compatibility: await registry.setConfig(subject as string, compatibilityOf(request.body)) };
  });
};
