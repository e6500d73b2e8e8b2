/** Test helpers for running the `reckon` command line as child processes. */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';

export const ROOT = new URL('../../', import.meta.url).pathname;
// tsx by absolute URL, so that children may run in any directory.
export const CLI = ['--import', import.meta.resolve('tsx'), join(ROOT, 'src/cli/main.ts')];
export const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('RECKON_')));

/** Runs the CLI and waits for it. */
export function reckon(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [...CLI, ...args], {
    cwd: ROOT,
    env: { ...cleanEnv, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

/** Runs the CLI without blocking this process (a server it talks to may be our child). */
export function reckonAsync(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...CLI, ...args], { cwd: ROOT, env: { ...cleanEnv, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

/** Resolves with the first match of `pattern` in the child's stdout. */
export async function waitForLine(child: ChildProcess, pattern: RegExp, deadlineMs = 20_000): Promise<string> {
  let seen = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no line matching ${pattern} within ${deadlineMs} ms; output: ${seen}`)),
      deadlineMs,
    );
    child.stdout?.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      const m = pattern.exec(seen);
      if (m) {
        clearTimeout(timer);
        resolve(m[0]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before printing ${pattern}; output: ${seen}`));
    });
  });
}

/** The environment of a reckon process whose rules are the simulator's (its blocklist is where blocked clicks come from). */
export function simulatorRulesEnv(rules: {
  ipBlocklist: readonly string[];
  clickWindowMs: number;
  maxClicksPerUserOfferHour: number;
}): Record<string, string> {
  return {
    ...(cleanEnv as Record<string, string>),
    RECKON_FRAUD_IP_BLOCKLIST: rules.ipBlocklist.join(','),
    RECKON_CLICK_WINDOW: `${rules.clickWindowMs}ms`,
    RECKON_FRAUD_MAX_CLICKS_PER_USER_OFFER_HOUR: String(rules.maxClicksPerUserOfferHour),
  };
}

/** Every minute row of [from, to) from a running reckon's GET /v1/stats, following every page. */
export async function minuteRows(url: string, from: string, to: string): Promise<Record<string, unknown>[]> {
  const rows: Record<string, unknown>[] = [];
  let cursor: string | undefined;
  do {
    const page = (await (
      await fetch(
        `${url}/v1/stats?from=${from}&to=${to}&granularity=minute&limit=10000${cursor === undefined ? '' : `&cursor=${encodeURIComponent(cursor)}`}`,
      )
    ).json()) as { rows: Record<string, unknown>[]; nextCursor?: string };
    rows.push(...page.rows);
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return rows;
}
