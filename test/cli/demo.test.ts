import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CLI, cleanEnv, waitForLine } from '../support/cli.ts';
import { waitFor } from '../support/wait.ts';

describe('reckon start --demo', () => {
  it('runs live simulated traffic with faults: the dashboard URL is printed and live numbers show within seconds', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reckon-demo-'));
    const child = spawn(process.execPath, [...CLI, 'start', '--demo', '--port', '0', '--data', join(dir, 'data')], {
      cwd: dir,
      env: cleanEnv,
    });
    try {
      const printed = await waitForLine(child, /listening on (http:\/\/127\.0\.0\.1:\d+)\n {2}dashboard: +\1\/ui\//);
      const url = /http:\/\/127\.0\.0\.1:\d+/.exec(printed)?.[0] as string;
      const page = await fetch(`${url}/ui/`);
      assert.equal(page.status, 200);
      type Part = { id: string; health: string; figures: Record<string, number> };
      const overview = async () => ((await (await fetch(`${url}/v1/overview`)).json()) as { parts: Part[] }).parts;
      await waitFor(
        'traffic accepted, rejected lines kept, and the speed layer following it',
        async () => {
          const parts = await overview();
          const collector = parts.find((p) => p.id === 'collector');
          const speed = parts.find((p) => p.id === 'speed');
          return (
            (collector?.figures.acceptedPerSecond ?? 0) > 50 &&
            (collector?.figures.rejectedKept ?? 0) > 0 &&
            (speed?.figures.eventsPerSecond ?? 0) > 50 &&
            speed?.health === 'ok'
          );
        },
        30_000,
        500,
      );
      const hour = Math.floor(Date.now() / 3_600_000) * 3_600_000;
      const stats = (await (
        await fetch(`${url}/v1/stats?from=${hour - 3_600_000}&to=${hour + 3_600_000}&granularity=hour`)
      ).json()) as { rows: { clicks: number; emissions: number; source: string }[] };
      assert.ok(stats.rows.reduce((n, r) => n + r.emissions, 0) > 0, 'speed rows of this hour');
      assert.ok(stats.rows.every((r) => r.source === 'speed'));
    } finally {
      child.kill('SIGKILL');
    }
  });
});
