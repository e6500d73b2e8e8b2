import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openEmbeddedLog } from '../../src/log/index.ts';
import { ensureGroupTopics, WorkerSupervisor } from '../../src/workers/index.ts';
import { waitFor } from '../support/wait.ts';

const TSX = import.meta.resolve('tsx');
const CONSUMER = new URL('../support/group-consumer.ts', import.meta.url).pathname;

describe('WorkerSupervisor', () => {
  it('scales worker processes out while the backlog grows, back in when it is gone, and replaces a dead one', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'reckon-super-'));
    const log = await openEmbeddedLog({ dir, retentionIntervalMs: 0 });
    await log.createTopic({ name: 'events', partitions: 4 });
    await ensureGroupTopics(log, 'g');
    const events: string[] = [];
    const supervisor = new WorkerSupervisor({
      log,
      group: 'g',
      topics: ['events'],
      min: 1,
      max: 3,
      intervalMs: 300,
      growthSamples: 3,
      spawnWorker: () =>
        spawn(process.execPath, ['--import', TSX, CONSUMER, 'embedded', dir, '20'], { stdio: 'ignore' }),
      onEvent: (m) => events.push(m),
    });
    supervisor.start();
    let producing = true;
    let next = 0;
    const producer = (async () => {
      // 400 records/s against a slow worker (20 ms a record): the backlog grows.
      while (producing) {
        await log.append(
          'events',
          Array.from({ length: 40 }, () => ({ partition: next % 4, value: Buffer.from(String(next++)) })),
        );
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    try {
      await waitFor('a scale-out', () => supervisor.size > 1, 30_000, 50);
      producing = false;
      await producer;
      await waitFor(
        'the backlog to drain and a scale-in back to one worker',
        () => supervisor.size === 1 && events.some((e) => e.includes('scaling in')),
        60_000,
        50,
      );
      const [worker] = [
        ...(supervisor as unknown as { workers: Set<import('node:child_process').ChildProcess> }).workers,
      ];
      worker?.kill('SIGKILL');
      await waitFor(
        'a replacement worker',
        () => events.some((e) => e.includes('died')) && supervisor.size === 1,
        10_000,
        50,
      );
      t.diagnostic(events.join(' | '));
    } finally {
      producing = false;
      await producer;
      await supervisor.stop();
      await log.close();
    }
    assert.ok(events.some((e) => /scaling out to [23] workers/.test(e)));
  });
});
