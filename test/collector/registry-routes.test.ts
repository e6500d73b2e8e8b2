/**
 * The Confluent-compatible registry API on a real HTTP server, driven by an independent client
 * (@kafkajs/confluent-schema-registry) and by raw requests.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SchemaRegistry as ConfluentClient, SchemaType } from '@kafkajs/confluent-schema-registry';
import Fastify, { type FastifyInstance } from 'fastify';
import { schemaRegistryRoutes } from '../../src/collector/registry-routes.ts';
import {
  CLICK_SCHEMA,
  type Click,
  decodeClick,
  decodeEmission,
  EMISSION_SCHEMA,
  type Emission,
  encodeClick,
  encodeEmission,
  SchemaRegistry,
  type SchemaStore,
} from '../../src/events/index.ts';
import { openSqliteSchemaStore } from '../../src/store/index.ts';

const MEDIA_TYPE = 'application/vnd.schemaregistry.v1+json';

const CLICK_V2 = {
  ...CLICK_SCHEMA,
  fields: [...CLICK_SCHEMA.fields, { name: 'campaign', type: ['null', 'string'], default: null }],
};
const click: Click = {
  type: 'click',
  id: 'cl-1',
  ts: Date.UTC(2026, 10, 21, 10, 0, 5, 120),
  emissionId: 'em-1',
  offerId: 'of-1',
  userId: 'u-9',
  ip: '203.0.113.7',
  dc: 'dc1',
};
/** The click as an Avro value (what the client encodes and decodes). */
const { type: _type, ...clickValue } = click;

let dir: string;
let store: SchemaStore;
let registry: SchemaRegistry;
let app: FastifyInstance;
let base: string;
let client: ConfluentClient;

/** A raw request; returns status, content type and parsed JSON body. */
async function call(
  method: string,
  path: string,
  body?: unknown,
  contentType = MEDIA_TYPE,
): Promise<{ status: number; type: string | null; json: Record<string, unknown> & unknown[] }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': contentType },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return {
    status: res.status,
    type: res.headers.get('content-type'),
    json: text === '' ? undefined : JSON.parse(text),
  };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'reckon-registry-routes-'));
  store = await openSqliteSchemaStore(join(dir, 'reckon.sqlite'));
  registry = new SchemaRegistry(store);
  app = Fastify({ logger: false });
  await app.register(schemaRegistryRoutes, { registry });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  assert.ok(typeof address === 'object' && address !== null);
  base = `http://127.0.0.1:${address.port}`;
  client = new ConfluentClient({ host: base, retry: { retries: 0 } });
});

after(async () => {
  await app?.close();
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('schema registry routes with the Confluent client', () => {
  let v1: number;

  it("registers reckon's click schema, and values encoded by either side decode on the other", async () => {
    ({ id: v1 } = await client.register(
      { type: SchemaType.AVRO, schema: JSON.stringify(CLICK_SCHEMA) },
      { subject: 'clicks-value' },
    ));
    assert.equal((await registry.getVersion('clicks-value', 'latest')).id, v1);

    const fromClient = await client.encode(v1, clickValue);
    assert.deepEqual({ ...(await client.decode(fromClient)) }, clickValue);
    assert.deepEqual(await registry.decode(fromClient, decodeClick), click);

    // A fresh client knows nothing cached: it fetches the schema by id from reckon.
    const fresh = new ConfluentClient({ host: base, retry: { retries: 0 } });
    assert.deepEqual({ ...(await fresh.decode(encodeClick(v1, click))) }, clickValue);
    // The client's first registration set the subject's level, as Confluent's registry would keep it.
    assert.deepEqual((await call('GET', '/config/clicks-value')).json, { compatibilityLevel: 'BACKWARD' });
  });

  it("carries decimal money as Avro bytes the client reads, and reckon reads the client's bytes back", async () => {
    const { id } = await client.register(
      { type: SchemaType.AVRO, schema: JSON.stringify(EMISSION_SCHEMA) },
      { subject: 'emissions-value' },
    );
    const emission: Emission = {
      type: 'emission',
      id: 'em-1',
      ts: Date.UTC(2026, 10, 21, 10),
      placement: 'home-top',
      offers: [{ offerId: 'of-1', clickCost: 350_000n }],
    };
    // The client has no decimal logical type: it sees the two's complement bytes of the micros.
    const seen = await client.decode(encodeEmission(id, emission));
    assert.deepEqual(seen.offers[0].clickCost, Buffer.from([0x05, 0x57, 0x30]));
    const written = await client.encode(id, { ...seen, dc: 'dc2' });
    assert.deepEqual(await registry.decode(written, decodeEmission), { ...emission, dc: 'dc2' });
  });

  it('evolves clicks-value: a v2 with an optional field gets a new id, and reckon decodes what the client writes with it', async () => {
    const { id: v2 } = await client.register(
      { type: SchemaType.AVRO, schema: JSON.stringify(CLICK_V2) },
      { subject: 'clicks-value' },
    );
    assert.notEqual(v2, v1);
    assert.deepEqual((await call('GET', '/subjects/clicks-value/versions')).json, [1, 2]);
    const message = await client.encode(v2, { ...clickValue, campaign: 'spring-sale' });
    assert.deepEqual(await registry.decode(message, decodeClick), click);
    assert.equal(await client.getLatestSchemaId('clicks-value'), v2);
  });

  it('refuses incompatible changes with 409 and a message that says why', async () => {
    const tsAsString = {
      ...CLICK_SCHEMA,
      fields: CLICK_SCHEMA.fields.map((f) => (f.name === 'ts' ? { name: 'ts', type: 'string' } : f)),
    };
    await assert.rejects(
      client.register({ type: SchemaType.AVRO, schema: JSON.stringify(tsAsString) }, { subject: 'clicks-value' }),
      (err: Error & { status?: number }) => {
        assert.equal(err.status, 409);
        assert.match(err.message, /cannot read "long" as "string" \(at reckon\.events\.Click\.ts\)/);
        return true;
      },
    );
    const requiredCountry = { ...CLICK_V2, fields: [...CLICK_V2.fields, { name: 'country', type: 'string' }] };
    const res = await call('POST', '/subjects/clicks-value/versions', { schema: JSON.stringify(requiredCountry) });
    assert.equal(res.status, 409);
    assert.equal(res.type?.split(';')[0], MEDIA_TYPE);
    assert.equal(res.json.error_code, 409);
    assert.match(
      String(res.json.message),
      /subject "clicks-value" \(compatibility BACKWARD\): BACKWARD: the new schema cannot read data written with version 2: no matching field for default-less reckon\.events\.Click\.country/,
    );
    assert.deepEqual((await call('GET', '/subjects/clicks-value/versions')).json, [1, 2]);
  });

  it('tests compatibility without registering, with messages when verbose', async () => {
    const requiredCountry = { ...CLICK_V2, fields: [...CLICK_V2.fields, { name: 'country', type: 'string' }] };
    const body = { schema: JSON.stringify(requiredCountry) };
    assert.deepEqual((await call('POST', '/compatibility/subjects/clicks-value/versions/latest', body)).json, {
      is_compatible: false,
    });
    const verbose = await call('POST', '/compatibility/subjects/clicks-value/versions/1?verbose=true', body);
    assert.equal(verbose.json.is_compatible, false);
    assert.match(String((verbose.json.messages as string[])[0]), /version 1: no matching field for default-less/);
    const ok = await call('POST', '/compatibility/subjects/clicks-value/versions/latest', {
      schema: JSON.stringify(CLICK_SCHEMA),
    });
    assert.deepEqual(ok.json, { is_compatible: true });
  });

  it('looks schemas up, lists subjects and versions, and serves schemas by id', async () => {
    const lookup = await call('POST', '/subjects/clicks-value', { schema: JSON.stringify(CLICK_SCHEMA) });
    assert.equal(lookup.status, 200);
    assert.deepEqual([lookup.json.subject, lookup.json.version, lookup.json.id], ['clicks-value', 1, v1]);
    assert.equal(
      await client.getRegistryIdBySchema('clicks-value', {
        type: SchemaType.AVRO,
        schema: JSON.stringify(CLICK_SCHEMA),
      }),
      v1,
    );
    assert.deepEqual((await call('GET', '/subjects')).json, ['clicks-value', 'emissions-value']);
    const latest = await call('GET', '/subjects/clicks-value/versions/latest');
    assert.equal(latest.type?.split(';')[0], MEDIA_TYPE);
    assert.deepEqual([latest.json.subject, latest.json.version], ['clicks-value', 2]);
    const first = await call('GET', '/subjects/clicks-value/versions/1');
    assert.equal(first.json.id, v1);
    const raw = await call('GET', '/subjects/clicks-value/versions/1/schema');
    assert.deepEqual(raw.json, JSON.parse(String(first.json.schema)));
    assert.equal((raw.json as unknown as { name: string }).name, 'reckon.events.Click');
    assert.deepEqual((await call('GET', `/schemas/ids/${v1}`)).json, { schema: first.json.schema });
    assert.equal(await client.getRegistryId('clicks-value', 1), v1);
    assert.deepEqual((await call('GET', '/schemas/types')).json, ['AVRO']);
  });

  it('answers 404s with Confluent error codes', async () => {
    const cases: [string, number][] = [
      ['/subjects/nope/versions', 40401],
      ['/subjects/nope/versions/latest', 40401],
      ['/subjects/clicks-value/versions/99', 40402],
      ['/schemas/ids/99999', 40403],
      ['/schemas/ids/abc', 40403],
      ['/config/never-configured', 40408],
    ];
    for (const [path, code] of cases) {
      const res = await call('GET', path);
      assert.equal(res.status, 404, path);
      assert.equal(res.type?.split(';')[0], MEDIA_TYPE, path);
      assert.equal(res.json.error_code, code, path);
      assert.equal(typeof res.json.message, 'string', path);
    }
    const notThere = await call('POST', '/subjects/clicks-value', {
      schema: '{"type":"record","name":"Nope","fields":[]}',
    });
    assert.deepEqual([notThere.status, notThere.json.error_code], [404, 40403]);
    const badVersion = await call('GET', '/subjects/clicks-value/versions/0');
    assert.deepEqual([badVersion.status, badVersion.json.error_code], [422, 42202]);
  });

  it('answers garbage with 4xx and {error_code, message}, never a 500', async () => {
    const cases: { body: unknown; contentType?: string; status: number; code: number; message: RegExp }[] = [
      { body: '{"schema":', status: 400, code: 400, message: /JSON/ },
      { body: '', contentType: 'application/json', status: 400, code: 400, message: /empty/i },
      { body: '[1, 2]', status: 422, code: 42201, message: /JSON object/ },
      { body: { schema: '{not json' }, status: 422, code: 42201, message: /not valid JSON/ },
      { body: { schema: '{"type":"record","fields":[]}' }, status: 422, code: 42201, message: /missing name/ },
      { body: { schema: 42 }, status: 422, code: 42201, message: /no "schema"/ },
      { body: { schema: 'syntax = "proto3";', schemaType: 'PROTOBUF' }, status: 422, code: 42201, message: /AVRO/ },
      { body: '<schema/>', contentType: 'application/xml', status: 415, code: 415, message: /application\/xml/ },
      {
        body: { schema: '"string"' },
        contentType: 'application/vnd.schemaregistry+json',
        status: 200,
        code: 0,
        message: /./,
      },
      {
        body: { schema: '"string"' },
        contentType: 'application/json; charset=utf-8',
        status: 200,
        code: 0,
        message: /./,
      },
    ];
    for (const c of cases) {
      const res = await call('POST', '/subjects/garbage-value/versions', c.body, c.contentType);
      const what = `${c.contentType ?? MEDIA_TYPE} ${JSON.stringify(c.body)}`;
      assert.equal(res.status, c.status, what);
      if (c.status === 200) continue;
      assert.equal(res.json.error_code, c.code, what);
      assert.match(String(res.json.message), c.message, what);
    }
    const badLevel = await call('PUT', '/config', { compatibility: 'SIDEWAYS' });
    assert.deepEqual([badLevel.status, badLevel.json.error_code], [422, 42203]);
    const noBody = await call('PUT', '/config/clicks-value', '{}');
    assert.deepEqual([noBody.status, noBody.json.error_code], [422, 42203]);
  });

  it('reads and sets compatibility globally and per subject', async () => {
    assert.deepEqual((await call('GET', '/config')).json, { compatibilityLevel: 'BACKWARD' });
    assert.deepEqual((await call('PUT', '/config', { compatibility: 'FULL' })).json, { compatibility: 'FULL' });
    assert.deepEqual((await call('GET', '/config')).json, { compatibilityLevel: 'FULL' });
    assert.deepEqual((await call('PUT', '/config/orders-value', { compatibility: 'none' })).json, {
      compatibility: 'NONE',
    });
    assert.deepEqual((await call('GET', '/config/orders-value')).json, { compatibilityLevel: 'NONE' });
    assert.deepEqual((await call('GET', '/config/other-value?defaultToGlobal=true')).json, {
      compatibilityLevel: 'FULL',
    });
    // The subject's own level wins over the global one when registering.
    await call('POST', '/subjects/orders-value/versions', { schema: '{"type":"record","name":"O","fields":[]}' });
    const changed = await call('POST', '/subjects/orders-value/versions', {
      schema: '{"type":"record","name":"O","fields":[{"name":"x","type":"int"}]}',
    });
    assert.equal(changed.status, 200);
    assert.deepEqual((await call('PUT', '/config', { compatibility: 'BACKWARD' })).json, { compatibility: 'BACKWARD' });
  });
});

describe('schema registry routes access hooks', () => {
  it('runs readAccess before reads, lookups and compatibility checks, and writeAccess before registrations and config changes', async () => {
    const guarded = Fastify({ logger: false });
    const seen: string[] = [];
    await guarded.register(schemaRegistryRoutes, {
      registry,
      readAccess: async (request, reply) => {
        seen.push(`read ${request.method}`);
        if (request.headers.authorization !== 'Bearer reader')
          await reply.code(401).send({ error_code: 401, message: 'read token needed' });
      },
      writeAccess: async (request, reply) => {
        seen.push(`write ${request.method}`);
        if (request.headers.authorization !== 'Bearer admin')
          await reply.code(403).send({ error_code: 403, message: 'admin token needed' });
      },
    });
    try {
      const get = (auth?: string) =>
        guarded.inject({ method: 'GET', url: '/subjects', headers: auth ? { authorization: auth } : {} });
      const put = (auth?: string) =>
        guarded.inject({
          method: 'PUT',
          url: '/config/guarded-value',
          headers: { 'content-type': MEDIA_TYPE, ...(auth ? { authorization: auth } : {}) },
          payload: JSON.stringify({ compatibility: 'FULL' }),
        });
      assert.equal((await get()).statusCode, 401);
      assert.equal((await get('Bearer reader')).statusCode, 200);
      assert.equal((await put('Bearer reader')).statusCode, 403);
      assert.equal(await registry.getConfig('guarded-value', { defaultToGlobal: true }), 'BACKWARD', 'nothing changed');
      assert.equal((await put('Bearer admin')).statusCode, 200);
      assert.equal(await registry.getConfig('guarded-value'), 'FULL');
      const lookup = await guarded.inject({
        method: 'POST',
        url: '/subjects/guarded-value',
        headers: { 'content-type': MEDIA_TYPE, authorization: 'Bearer reader' },
        payload: JSON.stringify({ schema: '"string"' }),
      });
      assert.equal(lookup.statusCode, 404, 'a lookup passes with the read token (and finds no such subject)');
      assert.deepEqual(seen, ['read GET', 'read GET', 'write PUT', 'write PUT', 'read POST']);
    } finally {
      await guarded.close();
    }
  });
});

describe('schema registry routes when the store fails', () => {
  it('answers 500 with error_code 50001 and keeps the store error out of the answer', async () => {
    const failing: SchemaStore = {
      ...store,
      subjects: async () => {
        throw new Error('connect ECONNREFUSED 10.0.0.9:5432');
      },
    };
    const broken = Fastify({ logger: false });
    await broken.register(schemaRegistryRoutes, { registry: new SchemaRegistry(failing) });
    try {
      const res = await broken.inject({ method: 'GET', url: '/subjects' });
      assert.equal(res.statusCode, 500);
      const body = res.json() as { error_code: number; message: string };
      assert.equal(body.error_code, 50001);
      assert.doesNotMatch(body.message, /ECONNREFUSED/);
    } finally {
      await broken.close();
    }
  });
});
