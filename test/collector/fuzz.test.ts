import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { listRejected } from '../../src/collector/index.ts';
import { click, closeLog, collectorApp, emission } from '../support/collector.ts';

const RUNS = Number(process.env.FUZZ_RUNS ?? 100_000);
const WARM_UP = Math.min(10_000, Math.floor(RUNS / 10));

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
/** Heap in use after a full collection: what is really retained. */
function retainedHeap(): number {
  gc();
  return process.memoryUsage().heapUsed;
}

const validLine = fc.oneof(
  fc.nat(1000).map((i) => JSON.stringify(emission(`em-${i}`))),
  fc.nat(1000).map((i) => JSON.stringify(click(`cl-${i}`, `em-${i}`))),
);
/** A valid line with one character deleted, replaced or inserted. */
const mutatedLine = fc
  .tuple(validLine, fc.nat(), fc.constantFrom('del', 'set', 'ins'), fc.string({ maxLength: 1 }))
  .map(([line, at, op, ch]) => {
    const i = at % line.length;
    if (op === 'del') return line.slice(0, i) + line.slice(i + 1);
    if (op === 'set') return line.slice(0, i) + ch + line.slice(i + 1);
    return line.slice(0, i) + ch + line.slice(i);
  });
const lineText = fc.oneof(
  { weight: 4, arbitrary: validLine },
  { weight: 4, arbitrary: mutatedLine },
  { weight: 2, arbitrary: fc.json() },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 80 }) },
  { weight: 1, arbitrary: fc.constantFrom('', '   ', '{}', '[]', 'null', '"x"', '{"type":"click"}') },
  { weight: 1, arbitrary: fc.nat(3).map((n) => 'x'.repeat(4000 + n * 100)) },
);
const lineBytes = fc.oneof(
  { weight: 9, arbitrary: lineText.map((t) => Buffer.from(t)) },
  // Bytes that are often not UTF-8.
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 60 }).map((b) => Buffer.from(b).filter((x) => x !== 0x0a)) },
);
const ndjsonBody = fc
  .tuple(fc.array(lineBytes, { maxLength: 12 }), fc.constantFrom('\n', '\r\n'), fc.boolean())
  .map(([lines, eol, trailing]) => {
    const sep = Buffer.from(eol);
    const parts = lines.flatMap((l, i) => (i === 0 ? [l] : [sep, l]));
    if (trailing) parts.push(sep);
    return Buffer.concat(parts);
  });
const jsonBody = fc.oneof(
  fc
    .array(
      fc.oneof(
        validLine.map((l) => JSON.parse(l) as unknown),
        fc.jsonValue(),
      ),
      { maxLength: 12 },
    )
    .map((a) => Buffer.from(JSON.stringify(a))),
  fc.json().map((j) => Buffer.from(j)),
  mutatedLine.map((l) => Buffer.from(`[${l}]`)),
);
const rawBody = fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b));
const contentType = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.constantFrom(
      'application/x-ndjson',
      'application/json',
      'application/jsonl',
      'application/x-ndjson; charset=utf-8',
      'application/json;charset=latin1',
      'APPLICATION/JSON',
    ),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom('', 'text/plain', 'multipart/form-data; boundary=x', 'application/octet-stream'),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }).filter((s) => /^[\x20-\x7e]*$/.test(s)) },
);
const encoding = fc.constantFrom(
  'identity',
  'identity',
  'identity',
  'gzip',
  'gzip',
  'broken-gzip',
  'deflate',
  'GZIP',
  ' gzip ',
);

const request = fc
  .record({ body: fc.oneof(ndjsonBody, jsonBody, rawBody), contentType, encoding })
  .map(({ body, contentType: type, encoding: enc }) => {
    const headers: Record<string, string> = type === '' ? {} : { 'content-type': type };
    let payload = body;
    if (enc === 'gzip' || enc === 'GZIP' || enc === ' gzip ') payload = gzipSync(body);
    if (enc === 'broken-gzip') payload = gzipSync(body).subarray(0, Math.max(1, Math.floor(body.length / 2)));
    if (enc !== 'identity') headers['content-encoding'] = enc === 'broken-gzip' ? 'gzip' : enc;
    return { headers, payload };
  });

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
