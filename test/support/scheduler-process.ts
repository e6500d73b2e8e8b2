/**
 * Test helper: a scheduler child script (`scheduler-pg-child.ts`, `scheduler-kill-child.ts`) in
 * its own node process, with its output kept for failure messages.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { waitFor } from './wait.ts';

const TSX = import.meta.resolve('tsx');

/** A running child script. */
export interface SchedulerProcess {
  child: ChildProcess;
  pid: number;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** Resolves with the exit code (or signal) once it has exited. */
  exited: Promise<number | NodeJS.Signals>;
  /** SIGTERM (a clean stop) and waits up to `deadlineMs` for the exit; SIGKILL after that. */
  stop(deadlineMs?: number): Promise<number | NodeJS.Signals>;
  /** SIGKILL and waits for the exit. */
  kill(): Promise<number | NodeJS.Signals>;
}

/** Spawns `node --import tsx <script> ...args` and waits until it prints `ready`. */
export async function spawnScheduler(script: URL, args: readonly string[]): Promise<SchedulerProcess> {
  const child = spawn(process.execPath, ['--import', TSX, script.pathname, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | NodeJS.Signals>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'SIGKILL')),
  );
  let gone = false;
  void exited.then(() => (gone = true));
  const kill = async () => {
    if (!gone) child.kill('SIGKILL');
    return exited;
  };
  const p: SchedulerProcess = {
    child,
    pid: child.pid as number,
    output: () => out,
    exited,
    kill,
    async stop(deadlineMs = 10_000) {
      if (!gone) child.kill('SIGTERM');
      try {
        await waitFor(`process ${child.pid} to exit after SIGTERM`, () => gone, deadlineMs);
      } catch (e) {
        await kill();
        throw e;
      }
      return exited;
    },
  };
  try {
    await waitFor(`process ${child.pid} to start`, () => gone || out.includes('ready\n'), 30_000);
    if (gone) throw new Error(`process ${child.pid} exited before it was ready:\n${out}`);
  } catch (e) {
    await kill();
    throw e;
  }
  return p;
}
