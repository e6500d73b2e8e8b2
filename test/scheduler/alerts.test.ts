import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { AlertDispatcher, logAlertSink, webhookAlertSink } from '../../src/scheduler/index.ts';
import { openSqliteSchedulerStore } from '../../src/store/index.ts';

/** A webhook on loopback answering `statuses` in turn (then 200), recording each request. */
async function webhook(
  statuses: number[],
): Promise<{ url: string; bodies: { key: string; body: Record<string, unknown> }[]; server: Server }> {
  const bodies: { key: string; body: Record<string, unknown> }[] = [];
  let i = 0;
  const server = createServer((req: IncomingMessage, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      bodies.push({ key: String(req.headers['idempotency-key']), body: JSON.parse(text) as Record<string, unknown> });
      res.statusCode = statuses[i++] ?? 200;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return { url: `http://127.0.0.1:${port}/alerts`, bodies, server };
}

const alert = (key: string) => ({
  key,
  kind: 'task_failed',
  source: 'scheduler',
  message: `failed ${key}`,
  details: { key },
});

describe('alert delivery', () => {
  it('retries a webhook answering 503 with back-off and delivers each alert once to every sink', async () => {
    const store = await openSqliteSchedulerStore(join(mkdtempSync(join(tmpdir(), 'reckon-alerts-')), 's.sqlite'));
    const hook = await webhook([503, 503]);
    try {
      await store.raiseAlert(alert('a1'), 1);
      await store.raiseAlert(alert('a1'), 2);
      await store.raiseAlert(alert('a2'), 3);
      const lines: string[] = [];
      const d = new AlertDispatcher({
        store,
        sinks: [logAlertSink((l) => lines.push(l)), webhookAlertSink(hook.url, { attempts: 4, backoffMs: 10 })],
        owner: 'd',
      });
      assert.equal(await d.deliverDue(), 2, 'two alerts: the repeated key raised one');
      assert.equal(await d.deliverDue(), 0);
      assert.deepEqual(
        hook.bodies.map((b) => b.key),
        ['a1', 'a1', 'a1', 'a2'],
        'a1 tried three times (503, 503, 200), a2 once',
      );
      assert.equal(hook.bodies[0]?.body.message, 'failed a1');
      assert.equal(lines.length, 2);
      const stored = await store.listAlerts();
      assert.deepEqual(
        stored.map((a) => [a.key, a.state]),
        [
          ['a1', 'delivered'],
          ['a2', 'delivered'],
        ],
      );
    } finally {
      hook.server.close();
      await store.close();
    }
  });

  it('gives up on a webhook after its bounded tries, records why, and does not deliver it again', async () => {
    const store = await openSqliteSchedulerStore(join(mkdtempSync(join(tmpdir(), 'reckon-alerts-')), 's.sqlite'));
    const hook = await webhook([500, 500, 500, 500, 500]);
    try {
      await store.raiseAlert(alert('down'), 1);
      const d = new AlertDispatcher({
        store,
        sinks: [webhookAlertSink(hook.url, { attempts: 3, backoffMs: 5 })],
        owner: 'd',
      });
      assert.equal(await d.deliverDue(), 1);
      assert.equal(await d.deliverDue(), 0);
      assert.equal(hook.bodies.length, 3);
      const [a] = await store.listAlerts();
      assert.equal(a?.state, 'failed');
      assert.match(a?.lastError ?? '', /webhook http:\/\/127\.0\.0\.1:\d+\/alerts refused alert down: HTTP 500/);
    } finally {
      hook.server.close();
      await store.close();
    }
  });

  it('takes over an alert whose dispatcher died mid-delivery once its lease ends', async () => {
    const store = await openSqliteSchedulerStore(join(mkdtempSync(join(tmpdir(), 'reckon-alerts-')), 's.sqlite'));
    try {
      await store.raiseAlert(alert('orphan'), 0);
      const [leased] = await store.claimAlerts('dead', 1000, 10, 60_000);
      assert.equal(leased?.key, 'orphan');
      assert.deepEqual(await store.claimAlerts('other', 30_000, 10, 60_000), [], 'not while the lease holds');
      const lines: string[] = [];
      const d = new AlertDispatcher({
        store,
        sinks: [logAlertSink((l) => lines.push(l))],
        owner: 'other',
        clock: () => 61_001,
      });
      assert.equal(await d.deliverDue(), 1);
      assert.equal(lines.length, 1);
      await store.completeAlert(leased?.id ?? 0, 'dead', 70_000, { delivered: true });
      assert.equal((await store.listAlerts())[0]?.deliveredAt, 61_001, 'the dead lease cannot complete it');
    } finally {
      await store.close();
    }
  });
});
