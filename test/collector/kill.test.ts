import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CLICKS_TOPIC, EMISSIONS_TOPIC } from '../../src/collector/index.ts';
import { decodeClick, decodeEmission } from '../../src/events/index.ts';
import { openEmbeddedLog } from '../../src/log/index.ts';
import { SeededRandom } from '../../src/sim/index.ts';
import { click, emission, ndjson, topicRecords } from '../support/collector.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const CLI = ['--import', import.meta.resolve('tsx'), join(ROOT, 'src/cli/main.ts')];
const KILLS = 10;
const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('RECKON_')));

/** Starts `reckon start` on a free port; resolves with its URL once it listens. */
function startReckon(dataDir: string): Promise<{ child: ChildProcess; url: string; exited: Promise<unknown> }> {
  const child = spawn(process.execPath, [...CLI, 'start', '--port', '0', '--data', dataDir], {
    env: cleanEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise((r) => child.once('exit', r));
  let seen = '';
  child.stderr?.on('data', (c: Buffer) => (seen += c.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`reckon did not start within 30 s: ${seen}`)), 30_000);
    child.stdout?.on('data', (c: Buffer) => {
      seen += c.toString();
      const m = /listening on (http:\/\/\S+)/.exec(seen);
      if (m !== null) {
        clearTimeout(timer);
        resolve({ child, url: m[1] as string, exited });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`reckon exited with ${code} before listening: ${seen}`));
    });
  });
}

describe('collector under SIGKILL', () => {
  it(`keeps every event of every request answered 200, across ${KILLS} SIGKILLs during a stream of requests`, async (t) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'reckon-ckill-'));
    const rng = new SeededRandom(11);
    const acknowledged = new Set<string>();
    let sent = 0;
    let failed = 0;
    let next = 0;
    for (let round = 0; round <= KILLS; round++) {
      const { child, url, exited } = await startReckon(dataDir);
      let stop = false;
      const client = async (): Promise<void> => {
        while (!stop) {
          const ids: string[] = [];
          const items: unknown[] = [];
          for (let i = 0; i < 100; i++) {
            const n = next++;
            items.push(emission(`em-${n}`), click(`cl-${n}`, `em-${n}`));
            ids.push(`em-${n}`, `cl-${n}`);
          }
          sent++;
          try {
            const res = await fetch(`${url}/v1/events`, {
              method: 'POST',
              headers: { 'content-type': 'application/x-ndjson' },
              body: ndjson(items),
            });
            const answer = (await res.json()) as { accepted?: number };
            if (res.status === 200) {
              assert.equal(answer.accepted, ids.length);
              for (const id of ids) acknowledged.add(id);
            } else failed++;
          } catch {
            failed++; // the connection died with the server: not acknowledged
            return;
          }
        }
      };
      const clients = Array.from({ length: 4 }, client);
      if (round < KILLS) {
        await new Promise((r) => setTimeout(r, 300 + rng.int(700)));
        child.kill('SIGKILL');
      } else {
        await new Promise((r) => setTimeout(r, 500));
        stop = true;
        await Promise.all(clients);
        child.kill('SIGTERM');
      }
      await exited;
      stop = true;
      await Promise.all(clients);
    }
    const log = await openEmbeddedLog({
      dir: join(dataDir, 'log'),
      retentionIntervalMs: 0,
      onWarning: () => undefined,
    });
    const present = new Set<string>();
    for (const r of await topicRecords(log, EMISSIONS_TOPIC)) present.add(decodeEmission(r.value).id);
    for (const r of await topicRecords(log, CLICKS_TOPIC)) present.add(decodeClick(r.value).id);
    await log.close();
    const lost = [...acknowledged].filter((id) => !present.has(id));
    assert.ok(acknowledged.size > 0, 'some requests were acknowledged');
    assert.deepEqual(lost.slice(0, 10), [], `${lost.length} acknowledged events are missing`);
    t.diagnostic(
      `${KILLS} kills; ${sent} requests, ${acknowledged.size} events acknowledged, all present; ${present.size - acknowledged.size} more present from requests cut by a kill; ${failed} requests failed`,
    );
  });
});
