import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openEmbeddedLog } from '../../src/log/index.ts';
import { SeededRandom } from '../../src/sim/index.ts';
import { listDeadLetters } from '../../src/workers/index.ts';
import { waitFor } from '../support/wait.ts';

const TSX = import.meta.resolve('tsx');
const CONSUMER = new URL('../support/worker-consumer.ts', import.meta.url).pathname;
const RECORDS = 4000;

describe('worker runtime under SIGKILL', () => {
  it('processes every record at least once and dead-letters exactly the poison ones, across repeated kills', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'reckon-wkill-'));
    const processedFile = join(dir, 'processed.txt');
    // This process is the writer (as the collector is in the pipeline); consumers are readers.
    const log = await openEmbeddedLog({ dir: join(dir, 'log'), retentionIntervalMs: 0 });
    await log.createTopic({ name: 'events', partitions: 4 });
    await log.append(
      'events',
      Array.from({ length: RECORDS }, (_, i) => ({ partition: i % 4, value: Buffer.from(String(i)) })),
    );
    const rng = new SeededRandom(4);
    let kills = 0;
    let finished = false;
    for (let run = 0; run < 60 && !finished; run++) {
      const child = spawn(process.execPath, ['--import', TSX, CONSUMER, join(dir, 'log'), processedFile], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let ready = false;
      child.stdout?.on('data', (c: Buffer) => {
        if (c.toString().includes('ready')) ready = true;
      });
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      await waitFor('the consumer to start', () => ready, 20_000);
      // Let it work for a while, then kill it mid-stream; after a few kills let the last run finish.
      const done = async () => {
        const committed = await log.committedOffsets('g', 'events');
        return [0, 1, 2, 3].every((p) => committed.get(p) === RECORDS / 4);
      };
      if (kills < 8) {
        await new Promise((r) => setTimeout(r, 50 + rng.int(250)));
        finished = await done();
        child.kill('SIGKILL');
        kills++;
      } else {
        await waitFor('the consumer to finish', done, 60_000, 50);
        finished = true;
        child.kill('SIGTERM');
        assert.equal(await exited, 0, 'SIGTERM stops the consumer gracefully');
      }
      await exited;
    }
    assert.ok(finished, 'the group caught up');
    assert.ok(kills >= 8, `killed ${kills} times`);
    const processed = existsSync(processedFile)
      ? readFileSync(processedFile, 'utf8').trim().split('\n').map(Number)
      : [];
    const poison = Array.from({ length: RECORDS }, (_, i) => i).filter((i) => i % 97 === 0);
    const once = new Set(processed);
    for (let i = 0; i < RECORDS; i++) if (i % 97 !== 0) assert.ok(once.has(i), `record ${i} was processed`);
    const letters = await listDeadLetters(log, 'g');
    await log.close();
    const dead = letters.map((l) => Number(l.value.toString())).sort((a, b) => a - b);
    assert.deepEqual(dead, poison, 'the dead-letter topic holds exactly the records that failed permanently');
    t.diagnostic(
      `${kills} kills, ${processed.length} processings of ${RECORDS - poison.length} good records (${processed.length - once.size} redeliveries), ${dead.length} dead letters`,
    );
  });
});
