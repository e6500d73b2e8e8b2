import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { listRejected } from '../../src/collector/index.ts';
import { closeLog, collectorApp } from '../support/collector.ts';
import { request } from '../support/fuzz-requests.ts';

const RUNS = Number(process.env.FUZZ_RUNS ?? 100_000);
const WARM_UP = Math.min(10_000, Math.floor(RUNS / 10));

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
/** Heap in use after a full collection: what is really retained. */
function retainedHeap(): number {
  gc();
  return process.memoryUsage().heapUsed;
}

describe('collector fuzzing', () => {
  it(`survives ${RUNS} random and malformed bodies, headers and encodings: never a 5xx, bounded memory, every rejected line kept`, async (t) => {
    const { app, log } = await collectorApp({ fsync: 'none', limits: { maxBodyBytes: 64 * 1024 } });
    // requestId -> the lines the answer said were rejected (0 for a whole unreadable body).
    const expected = new Map<string, number[]>();
    const statuses = new Map<number, number>();
    let heapAtWarmUp = 0;
    let runs = 0;
    try {
      await fc.assert(
        fc.asyncProperty(request, async ({ headers, payload }) => {
          const res = await app.inject({ method: 'POST', url: '/v1/events', headers, payload });
          statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
          assert.ok([200, 400, 413, 415].includes(res.statusCode), `status ${res.statusCode}: ${res.body}`);
          const answer = res.json() as {
            requestId?: string;
            rejected?: { line: number; reason: string }[];
            message?: string;
          };
          if (res.statusCode === 200) {
            assert.ok(answer.requestId !== undefined);
            const lines = (answer.rejected ?? []).map((r) => r.line);
            for (const r of answer.rejected ?? []) assert.ok(r.reason.length > 0, 'a rejection has a reason');
            if (lines.length > 0) expected.set(answer.requestId, lines);
          } else {
            assert.ok((answer.message ?? '').length > 10, `a ${res.statusCode} says what is wrong`);
            if (res.statusCode === 400) expected.set(answer.requestId as string, [0]);
          }
          if (++runs === WARM_UP) heapAtWarmUp = retainedHeap();
        }),
        { numRuns: RUNS, seed: 20261124, endOnFailure: true },
      );
      const heapGrowth = retainedHeap() - heapAtWarmUp;
      // The map of expectations is the only state that grows; the collector keeps nothing per request.
      assert.ok(heapGrowth < 64 * 1024 * 1024, `heap grew ${Math.round(heapGrowth / 2 ** 20)} MiB after warm-up`);
      const kept = new Map<string, number[]>();
      for (const r of await listRejected(log)) {
        const lines = kept.get(r.requestId) ?? [];
        lines.push(r.line);
        kept.set(r.requestId, lines);
      }
      assert.equal(kept.size, expected.size, 'requests with rejections: dead-letter store vs answers');
      for (const [id, lines] of expected) assert.deepEqual(kept.get(id), lines, `request ${id}`);
      const rejectedLines = [...expected.values()].reduce((n, l) => n + l.length, 0);
      t.diagnostic(
        `${runs} requests; statuses ${JSON.stringify(Object.fromEntries(statuses))}; ${rejectedLines} rejected lines or bodies, all kept; retained heap growth after ${WARM_UP} requests ${Math.round(heapGrowth / 2 ** 20)} MiB`,
      );
    } finally {
      await app.close();
      await closeLog(log);
    }
  });
});
