/**
 * The `SchemaStore` contract: one suite, run against every implementation (SQLite, and a real
 * PostgreSQL cluster started by the test).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { SchemaStore } from '../../src/events/index.ts';

/** How the suite gets stores of one implementation. */
export interface SchemaStoreHarness {
  /** Creates an empty database and returns what `open` needs to reach it. */
  createDatabase(): Promise<string>;
  /** Opens a store on a database (again): a reopen must see everything committed before. */
  open(database: string): Promise<SchemaStore>;
  teardown(): Promise<void>;
}

/** A distinct schema text and its fingerprint (the store treats both as opaque). */
export function schemaText(name: string): { text: string; fingerprint: string } {
  const text = JSON.stringify({ type: 'record', name, fields: [{ name: 'id', type: 'string' }] });
  return { text, fingerprint: createHash('sha256').update(text).digest('hex') };
}

/** Runs the contract against one implementation; `extra` adds implementation-specific tests inside the suite. */
export function schemaStoreContract(
  name: string,
  harness: () => Promise<SchemaStoreHarness>,
  extra?: (h: () => SchemaStoreHarness) => void,
): void {
  describe(`SchemaStore contract: ${name}`, () => {
    let h: SchemaStoreHarness;
    const opened: SchemaStore[] = [];
    const open = async (database: string) => {
      const store = await h.open(database);
      opened.push(store);
      return store;
    };
    before(async () => {
      h = await harness();
    });
    after(async () => {
      for (const s of opened) await s.close();
      await h?.teardown();
    });

    it('keeps schemas, versions and compatibility levels across close and reopen', async () => {
      const db = await h.createDatabase();
      const first = await open(db);
      const a = schemaText('A');
      const b = schemaText('B');
      const ra = await first.insertVersion('orders-value', a.text, a.fingerprint, 0);
      const rb = await first.insertVersion('orders-value', b.text, b.fingerprint, 1);
      assert.equal(ra.status, 'inserted');
      assert.equal(rb.status, 'inserted');
      await first.setCompatibility(null, 'FULL');
      await first.setCompatibility('orders-value', 'NONE');
      const before = await first.versions('orders-value');
      await first.close();

      const again = await open(db);
      assert.deepEqual(await again.versions('orders-value'), before);
      assert.deepEqual(await again.subjects(), ['orders-value']);
      assert.equal(await again.schemaById(before[0]!.id), a.text);
      assert.equal(await again.findSchemaId(b.fingerprint), before[1]!.id);
      assert.equal(await again.compatibility(null), 'FULL');
      assert.equal(await again.compatibility('orders-value'), 'NONE');
      // The next version continues where the committed ones stopped.
      const c = schemaText('C');
      assert.deepEqual(await again.insertVersion('orders-value', c.text, c.fingerprint, 2), {
        status: 'inserted',
        id: (await again.findSchemaId(c.fingerprint))!,
        version: 3,
      });
    });

    it('gives one schema the same id under every subject, and different schemas different ids', async () => {
      const store = await open(await h.createDatabase());
      const a = schemaText('Shared');
      const b = schemaText('Other');
      const first = await store.insertVersion('x-value', a.text, a.fingerprint, 0);
      const second = await store.insertVersion('y-value', a.text, a.fingerprint, 0);
      const other = await store.insertVersion('y-value', b.text, b.fingerprint, 1);
      assert.ok(first.status === 'inserted' && second.status === 'inserted' && other.status === 'inserted');
      assert.equal(second.id, first.id);
      assert.notEqual(other.id, first.id);
      assert.equal(await store.findSchemaId(a.fingerprint), first.id);
      assert.equal(await store.schemaById(first.id), a.text);
      assert.equal(await store.schemaById(other.id + 1000), undefined);
      assert.equal(await store.findSchemaId('0'.repeat(64)), undefined);
    });

    it('numbers versions 1, 2, 3 ... per subject and lists them ascending', async () => {
      const store = await open(await h.createDatabase());
      const texts = ['V1', 'V2', 'V3'].map(schemaText);
      for (const [i, t] of texts.entries()) {
        const r = await store.insertVersion('events-value', t.text, t.fingerprint, i);
        assert.equal(r.status === 'inserted' && r.version, i + 1);
      }
      const all = await store.versions('events-value');
      assert.deepEqual(
        all.map((v) => [v.subject, v.version, v.schema]),
        texts.map((t, i) => ['events-value', i + 1, t.text]),
      );
      assert.deepEqual(await store.version('events-value', 2), all[1]);
      assert.deepEqual(await store.latest('events-value'), all[2]);
      assert.equal(await store.version('events-value', 4), undefined);
      assert.equal(await store.latest('nothing-here'), undefined);
      assert.deepEqual(await store.versions('nothing-here'), []);
      await store.insertVersion('a-first', texts[0]!.text, texts[0]!.fingerprint, 0);
      assert.deepEqual(await store.subjects(), ['a-first', 'events-value']);
    });

    it('lets exactly one of two concurrent inserts with the same expected version win', async () => {
      const store = await open(await h.createDatabase());
      const a = schemaText('RaceA');
      const b = schemaText('RaceB');
      const results = await Promise.all([
        store.insertVersion('race-value', a.text, a.fingerprint, 0),
        store.insertVersion('race-value', b.text, b.fingerprint, 0),
      ]);
      assert.deepEqual(results.map((r) => r.status).sort(), ['conflict', 'inserted']);
      const versions = await store.versions('race-value');
      assert.equal(versions.length, 1);
      const loser = results[0]!.status === 'conflict' ? a : b;
      const winner = loser === a ? b : a;
      assert.equal(versions[0]!.schema, winner.text);
      // The loser's transaction left nothing behind, not even its schema row.
      assert.equal(await store.findSchemaId(loser.fingerprint), undefined);
    });

    it('answers conflict for a stale expected version and for a schema the subject already holds', async () => {
      const store = await open(await h.createDatabase());
      const a = schemaText('StaleA');
      const b = schemaText('StaleB');
      assert.equal((await store.insertVersion('s-value', a.text, a.fingerprint, 0)).status, 'inserted');
      assert.equal((await store.insertVersion('s-value', b.text, b.fingerprint, 0)).status, 'conflict');
      assert.equal((await store.insertVersion('s-value', b.text, b.fingerprint, 5)).status, 'conflict');
      assert.equal((await store.insertVersion('s-value', a.text, a.fingerprint, 1)).status, 'conflict');
      assert.deepEqual(
        (await store.versions('s-value')).map((v) => v.version),
        [1],
      );
    });

    it('keeps a global compatibility level and per-subject levels apart', async () => {
      const store = await open(await h.createDatabase());
      assert.equal(await store.compatibility(null), undefined);
      assert.equal(await store.compatibility('clicks-value'), undefined);
      await store.setCompatibility(null, 'FORWARD');
      assert.equal(await store.compatibility(null), 'FORWARD');
      assert.equal(await store.compatibility('clicks-value'), undefined, 'a subject does not inherit in the store');
      await store.setCompatibility('clicks-value', 'FULL_TRANSITIVE');
      await store.setCompatibility('emissions-value', 'NONE');
      await store.setCompatibility('clicks-value', 'BACKWARD_TRANSITIVE');
      assert.equal(await store.compatibility('clicks-value'), 'BACKWARD_TRANSITIVE');
      assert.equal(await store.compatibility('emissions-value'), 'NONE');
      assert.equal(await store.compatibility(null), 'FORWARD');
      await store.setCompatibility(null, 'NONE');
      assert.equal(await store.compatibility(null), 'NONE');
      assert.equal(await store.compatibility('clicks-value'), 'BACKWARD_TRANSITIVE');
    });

    extra?.(() => h);
  });
}
