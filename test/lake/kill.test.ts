/**
 * The archiver's process is SIGKILLed at random moments while events are streamed into the log;
 * afterwards the lake holds every record of every partition exactly once (each (log_partition,
 * log_offset) once, with the record's content, in its hour) and no temporary file.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FLUSH_CRASH_AT, FLUSH_STEPS } from '../../src/lake/archiver.ts';
import { isHourSealed, readManifest } from '../../src/lake/index.ts';
import { openEmbeddedLog } from '../../src/log/index.ts';
import { DEFAULT_SIMULATION, SeededRandom, simulate } from '../../src/sim/index.ts';
import { appendLines } from '../support/speed.ts';
import { waitFor } from '../support/wait.ts';
import { assertLakeEqualsLog, lakeCaughtUp, listFiles, PARTITIONS, TOPICS } from './lake-support.ts';

const KILLS = 20;
const TSX = import.meta.resolve('tsx');
const WORKER = new URL('./archiver-worker.ts', import.meta.url).pathname;

/** What a killed archiver left for the next start to clean up. */
async function leftBehind(lakeDir: string): Promise<{ tmp: boolean; uncommitted: boolean }> {
  const tmp = listFiles(join(lakeDir, '_tmp')).length > 0;
  let uncommitted = false;
  for (const topic of TOPICS) {
    for (let p = 0; p < PARTITIONS; p++) {
      let pending: { to: number; files: string[] };
      try {
        pending = JSON.parse(readFileSync(join(lakeDir, '_manifests', topic, `${p}.pending.json`), 'utf8'));
      } catch {
        continue;
      }
      const last = (await readManifest(lakeDir, topic, p)).pop();
      if ((last === undefined || last.to < pending.to) && pending.files.some((f) => existsSync(join(lakeDir, f))))
        uncommitted = true;
    }
  }
  return { tmp, uncommitted };
}

/** A log with the lake's topics, where a lake directory goes, and simulated traffic to stream. */
async function lakeSetUp(name: string, seed: number, emissions: number) {
  const dir = mkdtempSync(join(tmpdir(), `reckon-lake-${name}-`));
  const logDir = join(dir, 'log');
  const lakeDir = join(dir, 'lake');
  const log = await openEmbeddedLog({ dir: logDir, retentionIntervalMs: 0 });
  for (const topic of TOPICS) await log.createTopic({ name: topic, partitions: PARTITIONS });
  return { logDir, lakeDir, log, sim: simulate({ ...DEFAULT_SIMULATION, seed, emissions }) };
}

describe('Archiver under SIGKILL', () => {
  it(`archives every record exactly once across ${KILLS} SIGKILLs of its process during a stream`, async (t) => {
    const { logDir, lakeDir, log, sim } = await lakeSetUp('kill', 11, 6_000);
    const rng = new SeededRandom(21);
    const per = Math.ceil(sim.lines.length / KILLS);
    let appended = 0;
    let kills = 0;
    let killedWhileWriting = 0;
    let killedBeforeCommit = 0;
    try {
      for (;;) {
        const child = spawn(process.execPath, ['--import', TSX, WORKER, logDir, lakeDir], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        const exited = new Promise((r) => child.once('exit', r));
        let ready = false;
        child.stdout?.on('data', (c: Buffer) => {
          if (c.toString().includes('ready')) ready = true;
        });
        await waitFor('the archiver process to start', () => ready, 30_000);
        if (kills < KILLS) {
          // Stream a chunk in small appends while it archives, and kill it somewhere in between.
          const chunk = sim.lines.slice(appended, appended + per);
          appended += chunk.length;
          const streaming = appendLines(log, chunk, 50);
          await new Promise((r) => setTimeout(r, rng.int(200)));
          child.kill('SIGKILL');
          kills++;
          await Promise.all([exited, streaming]);
          const left = await leftBehind(lakeDir);
          if (left.tmp) killedWhileWriting++;
          if (left.uncommitted) killedBeforeCommit++;
          continue;
        }
        await appendLines(log, sim.lines.slice(appended));
        await waitFor('the archiver to catch up', () => lakeCaughtUp(lakeDir, log), 30_000, 20);
        child.kill('SIGTERM');
        await exited;
        break;
      }
      await assertLakeEqualsLog(lakeDir, log);
      let flushes = 0;
      for (const topic of TOPICS)
        for (let p = 0; p < PARTITIONS; p++) flushes += (await readManifest(lakeDir, topic, p)).length;
      assert.ok(kills >= KILLS);
      t.diagnostic(
        `${kills} SIGKILLs (${killedWhileWriting} left temporary files, ${killedBeforeCommit} left renamed files ` +
          `without a manifest line); ${sim.lines.length} lines streamed; ${flushes} flushes committed`,
      );
    } finally {
      await log.close();
    }
  });

  it(`archives every record exactly once across ${KILLS + 1} SIGKILLs at seeded steps of its flushes`, async (t) => {
    const { logDir, lakeDir, log, sim } = await lakeSetUp('flush-kill', 12, 6_000);
    const rng = new SeededRandom(22);
    const kills = KILLS + 1;
    const per = Math.ceil(sim.lines.length / kills);
    let appended = 0;
    const steps: string[] = [];
    try {
      for (let i = 0; i <= kills; i++) {
        // Every step of the flush protocol in turn, each time at a seeded n-th flush.
        const step = i < kills ? `${FLUSH_STEPS[i % FLUSH_STEPS.length]}:${1 + rng.int(3)}` : '';
        const child = spawn(process.execPath, ['--import', TSX, WORKER, logDir, lakeDir], {
          stdio: ['ignore', 'pipe', 'inherit'],
          env: { ...process.env, [FLUSH_CRASH_AT]: step },
        });
        const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_code, signal) => r(signal)));
        let ready = false;
        child.stdout?.on('data', (c: Buffer) => {
          if (c.toString().includes('ready')) ready = true;
        });
        await waitFor('the archiver process to start', () => ready, 30_000);
        if (i < kills) {
          const chunk = sim.lines.slice(appended, appended + per);
          appended += chunk.length;
          await appendLines(log, chunk, 50);
          // It kills itself at the step; more records make it flush again if need be.
          const signal = await Promise.race([
            exited,
            new Promise<'alive'>((r) => setTimeout(() => r('alive'), 20_000)),
          ]);
          assert.equal(signal, 'SIGKILL', `the archiver reached flush step ${step}`);
          steps.push(step);
          continue;
        }
        await appendLines(log, sim.lines.slice(appended));
        await waitFor('the archiver to catch up', () => lakeCaughtUp(lakeDir, log), 30_000, 20);
        child.kill('SIGTERM');
        await exited;
      }
      await assertLakeEqualsLog(lakeDir, log);
      t.diagnostic(`killed at flush steps ${steps.join(', ')}; ${sim.lines.length} lines streamed`);
    } finally {
      await log.close();
    }
  });

  it('two archivers of one group share the partitions: SIGKILLs and hand-overs leave every record once, and hours sealed', async (t) => {
    const { logDir, lakeDir, log, sim } = await lakeSetUp('group', 12, 4_000);
    const rng = new SeededRandom(22);
    const rounds = 8;
    const per = Math.ceil(sim.lines.length / rounds);
    const start = (name: string) => {
      const child = spawn(process.execPath, ['--import', TSX, WORKER, logDir, lakeDir, 'group'], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let ready = false;
      child.stdout?.on('data', (c: Buffer) => {
        if (c.toString().includes('ready')) ready = true;
      });
      return { name, child, exited: new Promise((r) => child.once('exit', r)), ready: () => ready };
    };
    const members = [start('a'), start('b')];
    try {
      for (const m of members) await waitFor(`archiver ${m.name} to start`, m.ready, 30_000);
      let appended = 0;
      for (let round = 0; round < rounds; round++) {
        const chunk = sim.lines.slice(appended, appended + per);
        appended += chunk.length;
        const streaming = appendLines(log, chunk, 50);
        await new Promise((r) => setTimeout(r, 100 + rng.int(300)));
        // Kill one member; the other takes its partitions (a lease of a dead pid is taken over at once).
        const i = rng.int(2);
        const victim = members[i] as (typeof members)[number];
        victim.child.kill('SIGKILL');
        await Promise.all([victim.exited, streaming]);
        members[i] = start(victim.name);
        await waitFor(`archiver ${victim.name} to restart`, (members[i] as (typeof members)[number]).ready, 30_000);
      }
      await appendLines(log, sim.lines.slice(appended));
      await waitFor('the group to catch up', () => lakeCaughtUp(lakeDir, log), 60_000, 50);
      const earliest = sim.events.reduce((m, e) => Math.min(m, e.ts), Number.POSITIVE_INFINITY);
      await waitFor('the first hour sealed', () => isHourSealed(lakeDir, earliest), 30_000, 50);
      await assertLakeEqualsLog(lakeDir, log);
      t.diagnostic(`${rounds} SIGKILLs of one of two archivers; ${sim.lines.length} lines`);
    } finally {
      for (const m of members) m.child.kill('SIGKILL');
      await Promise.all(members.map((m) => m.exited));
      await log.close();
    }
  });
});
