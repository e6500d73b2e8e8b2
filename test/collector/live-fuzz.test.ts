import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { listRejected } from '../../src/collector/index.ts';
import { openEmbeddedLog } from '../../src/log/index.ts';
import { CLI, cleanEnv, ROOT, waitForLine } from '../support/cli.ts';
import { hostileRequest } from '../support/fuzz-requests.ts';

const RUNS = Number(process.env.FUZZ_LIVE_RUNS ?? 100_000);
const CONNECTIONS = 16;
const SEED = 20261207;

interface Answer {
  status: number;
  body: string;
}

function send(agent: Agent, port: number, headers: Record<string, string>, payload: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/v1/events',
        agent,
        headers: { ...headers, 'content-length': String(payload.length) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

function rssOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
  return Number(line?.[1] ?? 0) * 1024;
}

describe('collector fuzzing against a live server', () => {
  it(`answers ${RUNS} hostile requests from ${CONNECTIONS} connections with no 5xx but declared overload, keeps every rejection, and stays up and healthy`, async (t) => {
    const data = mkdtempSync(join(tmpdir(), 'reckon-live-fuzz-'));
    const child = spawn(process.execPath, [...CLI, 'collector', '--port', '0', '--data', data], {
      cwd: ROOT,
      env: {
        ...cleanEnv,
        RECKON_INGEST_MAX_BODY_BYTES: String(64 * 1024),
        RECKON_INGEST_PARSE_THREADS: '1',
        RECKON_LOG_FSYNC: 'none',
      },
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
    const expected = new Map<string, number[]>();
    const statuses = new Map<number, number>();
    try {
      const url = (await waitForLine(child, /http:\/\/127\.0\.0\.1:\d+/, 60_000)).trim();
      const port = Number(new URL(url).port);
      let next = 0;
      let rssAtWarmUp = 0;
      const warmUp = Math.min(10_000, Math.floor(RUNS / 10));
      const lane = async () => {
        while (next < RUNS) {
          const from = next;
          next = Math.min(RUNS, next + 100);
          // A fixed seed per block of 100: any failure names a request that can be generated again.
          const block = fc.sample(hostileRequest, { numRuns: next - from, seed: SEED + from });
          for (const [i, { headers, payload }] of block.entries()) {
            const res = await send(agent, port, headers, payload).catch((e: Error) => {
              throw new Error(
                `request ${from + i} (seed ${SEED + from}, #${i}) failed: ${e.message}; headers ${JSON.stringify(headers).slice(0, 300)}, ${payload.length} bytes`,
              );
            });
            statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
            const what = `request ${from + i} (seed ${SEED + from}, #${i}): ${res.status} ${res.body.slice(0, 300)}`;
            let answer: {
              requestId?: string;
              error?: string;
              message?: string;
              rejected?: { line: number; reason: string }[];
            } = {};
            try {
              answer = JSON.parse(res.body) as typeof answer;
            } catch {
              // Answers of Node's HTTP parser itself (431 for headers too large) are not JSON.
            }
            if (res.status >= 500) assert.equal(answer.error, 'RECKON_INGEST_OVERLOADED', what);
            assert.ok(res.status >= 200 && res.status < 600, what);
            if (res.status === 200) {
              assert.ok(answer.requestId !== undefined, what);
              const lines = (answer.rejected ?? []).map((r) => r.line);
              assert.ok(
                (answer.rejected ?? []).every((r) => r.reason.length > 0),
                what,
              );
              if (lines.length > 0) expected.set(answer.requestId, lines);
            } else if (res.status === 400 && answer.requestId !== undefined) {
              expected.set(answer.requestId, [0]);
            }
            if (from + i + 1 === warmUp) rssAtWarmUp = rssOf(child.pid!);
          }
        }
      };
      await Promise.all(Array.from({ length: CONNECTIONS }, lane));
      const rssGrowth = rssOf(child.pid!) - rssAtWarmUp;
      assert.equal(child.exitCode, null, `the server died: ${stderr}`);
      // The body of the report: 200,000 nested brackets is a 400 that names why, not a 503.
      const nested = await send(
        agent,
        port,
        { 'content-type': 'application/json' },
        Buffer.from('['.repeat(30_000) + ']'.repeat(30_000)),
      );
      assert.equal(nested.status, 400, nested.body);
      assert.match(nested.body, /nests deeper than 33 levels/);
      expected.set((JSON.parse(nested.body) as { requestId: string }).requestId, [0]);
      const health = await fetch(`${url}/healthz`);
      assert.equal(health.status, 200);
      assert.ok(rssGrowth < 256 * 1024 * 1024, `RSS grew ${Math.round(rssGrowth / 2 ** 20)} MiB after warm-up`);
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
      // Every rejected line and unreadable body is in the dead-letter store, under its request.
      const log = await openEmbeddedLog({ dir: join(data, 'log'), retentionIntervalMs: 0 });
      try {
        const kept = new Map<string, number[]>();
        for (const r of await listRejected(log)) kept.set(r.requestId, [...(kept.get(r.requestId) ?? []), r.line]);
        assert.equal(kept.size, expected.size, 'requests with rejections: dead-letter store vs answers');
        for (const [id, lines] of expected) assert.deepEqual(kept.get(id), lines, `request ${id}`);
      } finally {
        await log.close();
      }
      t.diagnostic(
        `${RUNS} requests; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}; RSS growth after warm-up ${Math.round(rssGrowth / 2 ** 20)} MiB`,
      );
    } finally {
      agent.destroy();
      child.kill('SIGKILL');
    }
  });
});
