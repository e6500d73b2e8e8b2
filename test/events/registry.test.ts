/** The schema registry's logic (idempotence, validation, compatibility levels, writer lookup) on the SQLite store. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  avroType,
  CLICK_SCHEMA,
  type Click,
  clickType,
  decodeClick,
  decodeEmission,
  EMISSION_SCHEMA,
  type Emission,
  encodeClick,
  encodeEmission,
  frameConfluent,
  parseSchemaVersion,
  ReckonError,
  SchemaRegistry,
  SchemaRegistryError,
  type SchemaStore,
} from '../../src/events/index.ts';
import { openSqliteSchemaStore } from '../../src/store/index.ts';

let dir: string;
let n = 0;
const stores: SchemaStore[] = [];

/** A registry on a fresh SQLite file. */
async function freshRegistry(
  wrap?: (store: SchemaStore) => SchemaStore,
): Promise<{ registry: SchemaRegistry; store: SchemaStore }> {
  const store = await openSqliteSchemaStore(join(dir, `registry-${n++}.sqlite`));
  stores.push(store);
  return { registry: new SchemaRegistry(wrap ? wrap(store) : store), store };
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'reckon-registry-'));
});
after(async () => {
  for (const s of stores) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

type Field = { name: string; type: unknown; default?: unknown };
const record = (fields: Field[], name = 'Order') => ({ type: 'record', name, namespace: 'reckon.test', fields });
const ID: Field = { name: 'id', type: 'string' };
const OPTIONAL_NOTE: Field = { name: 'note', type: ['null', 'string'], default: null };
const REQUIRED_AMOUNT: Field = { name: 'amount', type: 'long' };

/** Asserts that `promise` fails with a registry error of this code, Confluent code and message pattern. */
async function rejectsWith(
  promise: Promise<unknown>,
  code: string,
  errorCode: number,
  message?: RegExp,
): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof SchemaRegistryError, `expected a SchemaRegistryError, got ${String(err)}`);
    assert.ok(err instanceof ReckonError);
    assert.equal(err.code, code);
    assert.equal(err.errorCode, errorCode);
    if (message) assert.match(err.message, message);
    return true;
  });
}

describe('SchemaRegistry', () => {
  it('registers idempotently: the same schema again returns the same id and version', async () => {
    const { registry } = await freshRegistry();
    const first = await registry.register('orders-value', record([ID]));
    assert.deepEqual(first, { id: first.id, version: 1 });
    // Same schema as text, other key order and whitespace, namespace spelled out in the name.
    const again = await registry.register(
      'orders-value',
      '{ "fields": [ {"type": "string", "name": "id"} ], "name": "reckon.test.Order", "type": "record" }',
    );
    assert.deepEqual(again, first);
    assert.deepEqual(await registry.versions('orders-value'), [1]);
    const second = await registry.register('orders-value', record([ID, OPTIONAL_NOTE]));
    assert.deepEqual(second.version, 2);
    assert.notEqual(second.id, first.id);
    // Re-registering an older version does not append it again.
    assert.deepEqual(await registry.register('orders-value', record([ID])), first);
    assert.deepEqual(await registry.versions('orders-value'), [1, 2]);
  });

  it('gives the same schema the same id under another subject', async () => {
    const { registry } = await freshRegistry();
    const a = await registry.register('a-value', record([ID]));
    const b = await registry.register('b-value', record([ID]));
    assert.equal(b.id, a.id);
    assert.equal(b.version, 1);
    assert.deepEqual(await registry.subjects(), ['a-value', 'b-value']);
  });

  it('rejects invalid schemas with 42201 and a message naming the problem', async () => {
    const { registry } = await freshRegistry();
    await rejectsWith(
      registry.register('x-value', record([{ name: 'a', type: 'strng' }])),
      'RECKON_REGISTRY_INVALID_SCHEMA',
      42201,
      /undefined type name: reckon\.test\.strng/,
    );
    await rejectsWith(
      registry.register('x-value', '{"type": "record",'),
      'RECKON_REGISTRY_INVALID_SCHEMA',
      42201,
      /not valid JSON/,
    );
    await rejectsWith(
      registry.register('x-value', { type: 'record', fields: [] }),
      'RECKON_REGISTRY_INVALID_SCHEMA',
      42201,
      /missing name/,
    );
    await rejectsWith(
      registry.register('x-value', record([{ name: 'n', type: 'int', default: 'seven' }])),
      'RECKON_REGISTRY_INVALID_SCHEMA',
      42201,
      /incompatible field default "seven"/,
    );
    await rejectsWith(registry.register('x-value', '  '), 'RECKON_REGISTRY_INVALID_SCHEMA', 42201, /empty/);
    await rejectsWith(registry.register('', record([ID])), 'RECKON_REGISTRY_INVALID_SUBJECT', 42208);
    assert.deepEqual(await registry.subjects(), [], 'nothing was stored');
  });

  it('keeps logical types and their attributes in the stored schema', async () => {
    const { registry } = await freshRegistry();
    const { id } = await registry.register('emissions-value', EMISSION_SCHEMA);
    const stored = await registry.schemaById(id);
    assert.match(stored, /"type":"long","logicalType":"timestamp-millis"/);
    assert.match(stored, /"type":"bytes","logicalType":"decimal","precision":18,"scale":6/);
    // Attribute order does not make another schema.
    const reordered = JSON.parse(stored.replace('"precision":18,"scale":6', '"scale":6,"precision":18'));
    assert.equal((await registry.register('emissions-value', reordered)).id, id);
  });

  describe('compatibility levels', () => {
    it('BACKWARD (the default): adding an optional field with a default passes, adding a required field fails', async () => {
      const { registry } = await freshRegistry();
      await registry.register('orders-value', record([ID]));
      assert.equal((await registry.register('orders-value', record([ID, OPTIONAL_NOTE]))).version, 2);
      await rejectsWith(
        registry.register('orders-value', record([ID, OPTIONAL_NOTE, REQUIRED_AMOUNT])),
        'RECKON_REGISTRY_INCOMPATIBLE',
        409,
        /subject "orders-value" \(compatibility BACKWARD\): BACKWARD: the new schema cannot read data written with version 2: no matching field for default-less reckon\.test\.Order\.amount/,
      );
      assert.deepEqual(await registry.versions('orders-value'), [1, 2], 'the refused schema was not stored');
    });

    it('BACKWARD: a changed field type fails and the message names the field', async () => {
      const { registry } = await freshRegistry();
      await registry.register('orders-value', record([ID, { name: 'ts', type: 'long' }]));
      await rejectsWith(
        registry.register('orders-value', record([ID, { name: 'ts', type: 'string' }])),
        'RECKON_REGISTRY_INCOMPATIBLE',
        409,
        /cannot read "long" as "string" \(at reckon\.test\.Order\.ts\)/,
      );
    });

    it('FORWARD: removing a field without default fails, adding a required field passes', async () => {
      const { registry } = await freshRegistry();
      await registry.setConfig('orders-value', 'FORWARD');
      await registry.register('orders-value', record([ID, REQUIRED_AMOUNT]));
      await rejectsWith(
        registry.register('orders-value', record([ID])),
        'RECKON_REGISTRY_INCOMPATIBLE',
        409,
        /FORWARD: version 1 cannot read data written with the new schema: no matching field for default-less reckon\.test\.Order\.amount/,
      );
      const added = await registry.register(
        'orders-value',
        record([ID, REQUIRED_AMOUNT, { name: 'qty', type: 'int' }]),
      );
      assert.equal(added.version, 2);
    });

    it('FULL: only changes both ways readable pass', async () => {
      const { registry } = await freshRegistry();
      await registry.setConfig('orders-value', 'full');
      await registry.register('orders-value', record([ID, REQUIRED_AMOUNT]));
      assert.equal((await registry.register('orders-value', record([ID, REQUIRED_AMOUNT, OPTIONAL_NOTE]))).version, 2);
      await rejectsWith(
        registry.register('orders-value', record([ID, REQUIRED_AMOUNT, OPTIONAL_NOTE, { name: 'qty', type: 'int' }])),
        'RECKON_REGISTRY_INCOMPATIBLE',
        409,
        /FULL: the new schema cannot read data written with version 2/,
      );
      await rejectsWith(
        registry.register('orders-value', record([ID, OPTIONAL_NOTE])),
        'RECKON_REGISTRY_INCOMPATIBLE',
        409,
        /FULL: version 2 cannot read data written with the new schema/,
      );
    });

    it('NONE: any valid schema passes', async () => {
      const { registry } = await freshRegistry();
      await registry.setConfig(null, 'NONE');
      await registry.register('orders-value', record([ID, { name: 'ts', type: 'long' }]));
      const changed = await registry.register(
        'orders-value',
        record([{ name: 'ts', type: 'string' }, REQUIRED_AMOUNT]),
      );
      assert.equal(changed.version, 2);
    });

    it('BACKWARD_TRANSITIVE checks every earlier version where BACKWARD checks only the latest', async () => {
      const v1 = record([ID, { name: 'x', type: 'string' }]);
      const v2 = record([ID]);
      const v3 = record([ID, { name: 'x', type: 'int', default: 0 }]); // reads v2 data, not v1's string x
      const plain = (await freshRegistry()).registry;
      await plain.register('orders-value', v1);
      await plain.register('orders-value', v2);
      assert.equal((await plain.register('orders-value', v3)).version, 3);

      const transitive = (await freshRegistry()).registry;
      await transitive.setConfig('orders-value', 'BACKWARD_TRANSITIVE');
      await transitive.register('orders-value', v1);
      await transitive.register('orders-value', v2);
      await rejectsWith(
        transitive.register('orders-value', v3),
        'RECKON_REGISTRY_INCOMPATIBLE',
        409,
        /BACKWARD_TRANSITIVE: the new schema cannot read data written with version 1: cannot read "string" as "int" \(at reckon\.test\.Order\.x\)/,
      );
    });

    it('checks compatibility without registering, against the latest or one version', async () => {
      const { registry } = await freshRegistry();
      assert.deepEqual(await registry.checkCompatibility('new-value', record([ID])), {
        isCompatible: true,
        messages: [],
      });
      await registry.register('orders-value', record([ID, REQUIRED_AMOUNT]));
      await registry.register('orders-value', record([ID, REQUIRED_AMOUNT, OPTIONAL_NOTE]));
      const dropAmount = record([ID]);
      assert.deepEqual(await registry.checkCompatibility('orders-value', dropAmount), {
        isCompatible: true,
        messages: [],
      });
      const addQty = record([ID, REQUIRED_AMOUNT, { name: 'qty', type: 'int' }]);
      const result = await registry.checkCompatibility('orders-value', addQty, 1);
      assert.equal(result.isCompatible, false);
      assert.match(
        result.messages.join('\n'),
        /version 1: no matching field for default-less reckon\.test\.Order\.qty/,
      );
      assert.deepEqual(await registry.versions('orders-value'), [1, 2]);
      await rejectsWith(
        registry.checkCompatibility('orders-value', addQty, 9),
        'RECKON_REGISTRY_VERSION_NOT_FOUND',
        40402,
      );
      await rejectsWith(registry.checkCompatibility('missing', addQty, 1), 'RECKON_REGISTRY_SUBJECT_NOT_FOUND', 40401);
    });

    it('re-checks compatibility when another writer added a version meanwhile', async () => {
      let sneak: (() => Promise<void>) | undefined;
      const { registry, store } = await freshRegistry((inner) => ({
        ...inner,
        async insertVersion(...args) {
          const s = sneak;
          sneak = undefined;
          await s?.();
          return inner.insertVersion(...args);
        },
      }));
      const other = new SchemaRegistry(store);
      const intNote: Field = { name: 'note', type: 'int', default: 0 };
      await registry.register('orders-value', record([ID]));
      // Another process registers v2 with `note` as an int just before our insert: our string
      // `note` cannot read what v2 writes, so the retry refuses it.
      sneak = async () => void (await other.register('orders-value', record([ID, intNote])));
      await rejectsWith(
        registry.register('orders-value', record([ID, OPTIONAL_NOTE])),
        'RECKON_REGISTRY_INCOMPATIBLE',
        409,
        /cannot read data written with version 2/,
      );
      // The other process registers the very schema we are registering: the retry finds it.
      const same = record([ID, intNote, { name: 'other', type: 'int', default: 0 }]);
      sneak = async () => void (await other.register('orders-value', same));
      assert.deepEqual(await registry.register('orders-value', same), await other.register('orders-value', same));
      assert.deepEqual(await registry.versions('orders-value'), [1, 2, 3]);
    });

    it('gives up after maxAttempts conflicts with a retriable error', async () => {
      const { registry } = await freshRegistry((inner) => ({
        ...inner,
        insertVersion: async () => ({ status: 'conflict' }),
      }));
      await assert.rejects(registry.register('orders-value', record([ID])), (err: SchemaRegistryError) => {
        assert.equal(err.code, 'RECKON_REGISTRY_BUSY');
        assert.equal(err.retriable, true);
        return true;
      });
    });
  });

  describe('configuration', () => {
    it('answers BACKWARD globally by default, 40408 for a subject without its own level, and 42203 for bad levels', async () => {
      const { registry } = await freshRegistry();
      assert.equal(await registry.getConfig(), 'BACKWARD');
      await rejectsWith(registry.getConfig('orders-value'), 'RECKON_REGISTRY_SUBJECT_CONFIG_NOT_FOUND', 40408);
      assert.equal(await registry.getConfig('orders-value', { defaultToGlobal: true }), 'BACKWARD');
      assert.equal(await registry.setConfig(null, 'forward_transitive'), 'FORWARD_TRANSITIVE');
      assert.equal(await registry.getConfig('orders-value', { defaultToGlobal: true }), 'FORWARD_TRANSITIVE');
      assert.equal(await registry.setConfig('orders-value', 'NONE'), 'NONE');
      assert.equal(await registry.getConfig('orders-value'), 'NONE');
      assert.equal(await registry.getConfig(), 'FORWARD_TRANSITIVE');
      await rejectsWith(
        registry.setConfig(null, 'SIDEWAYS'),
        'RECKON_REGISTRY_INVALID_COMPATIBILITY',
        42203,
        /SIDEWAYS/,
      );
    });
  });

  describe('reads', () => {
    it('gets versions and looks schemas up, with Confluent codes for what is missing', async () => {
      const { registry } = await freshRegistry();
      const v1 = await registry.register('orders-value', record([ID]));
      const v2 = await registry.register('orders-value', record([ID, OPTIONAL_NOTE]));
      const latest = await registry.getVersion('orders-value', 'latest');
      assert.deepEqual([latest.version, latest.id], [2, v2.id]);
      assert.equal((await registry.getVersion('orders-value', 1)).id, v1.id);
      const found = await registry.lookup('orders-value', record([ID]));
      assert.deepEqual([found.subject, found.version, found.id], ['orders-value', 1, v1.id]);
      await rejectsWith(
        registry.lookup('orders-value', record([ID, REQUIRED_AMOUNT])),
        'RECKON_REGISTRY_SCHEMA_NOT_FOUND',
        40403,
      );
      await rejectsWith(registry.lookup('nope', record([ID])), 'RECKON_REGISTRY_SUBJECT_NOT_FOUND', 40401);
      await rejectsWith(registry.getVersion('orders-value', 3), 'RECKON_REGISTRY_VERSION_NOT_FOUND', 40402);
      await rejectsWith(registry.getVersion('nope', 'latest'), 'RECKON_REGISTRY_SUBJECT_NOT_FOUND', 40401);
      await rejectsWith(registry.versions('nope'), 'RECKON_REGISTRY_SUBJECT_NOT_FOUND', 40401);
      await rejectsWith(registry.schemaById(v2.id + 100), 'RECKON_REGISTRY_SCHEMA_NOT_FOUND', 40403);
      assert.equal(parseSchemaVersion('latest'), 'latest');
      assert.equal(parseSchemaVersion('-1'), 'latest');
      assert.equal(parseSchemaVersion('7'), 7);
      for (const bad of ['0', 'x', '1.5', '2147483648']) {
        assert.throws(
          () => parseSchemaVersion(bad),
          (err: SchemaRegistryError) => err.errorCode === 42202,
        );
      }
    });
  });

  describe('writer-type lookup', () => {
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
    const CLICK_V2 = {
      ...CLICK_SCHEMA,
      fields: [...CLICK_SCHEMA.fields, { name: 'campaign', type: ['null', 'string'], default: null }],
    };

    it("decodes a click written with schema v2 (an extra optional field) into reckon's Click", async () => {
      const { registry } = await freshRegistry();
      const v1 = await registry.register('clicks-value', CLICK_SCHEMA);
      const v2 = await registry.register('clicks-value', CLICK_V2);
      assert.equal(v2.version, 2);
      const body = avroType(CLICK_V2).toBuffer({ ...click, campaign: 'spring-sale' });
      const message = frameConfluent(v2.id, body);

      const lookup = registry.writerTypeLookup();
      assert.equal(lookup(v2.id), undefined, 'nothing is loaded before preload');
      assert.throws(() => decodeClick(message, lookup), { code: 'RECKON_AVRO_UNKNOWN_SCHEMA' });
      assert.equal(await registry.preload(v2.id), true);
      assert.deepEqual(decodeClick(message, lookup), click);

      // v1 records decode too, through reckon's own type (no resolver needed).
      assert.equal(await registry.typeFor(v1.id), clickType);
      assert.deepEqual(await registry.decode(encodeClick(v1.id, click), decodeClick), click);
      assert.equal(await registry.preload(v2.id + 100), false);
    });

    it('decodes emissions with decimal money as bigint micros through the registry', async () => {
      const { registry } = await freshRegistry();
      const { id } = await registry.register('emissions-value', EMISSION_SCHEMA);
      const emission: Emission = {
        type: 'emission',
        id: 'em-1',
        ts: Date.UTC(2026, 10, 21, 10),
        placement: 'home-top',
        offers: [
          { offerId: 'of-1', clickCost: 350_000n },
          { offerId: 'of-2', clickCost: 1_200_000n },
        ],
      };
      assert.deepEqual(await registry.decode(encodeEmission(id, emission), decodeEmission), emission);
    });
  });
});
