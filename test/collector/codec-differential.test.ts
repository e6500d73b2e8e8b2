import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isBodyProblem, type PreparedBatch, prepareNdjson } from '../../src/collector/index.ts';
import { line, mutated } from '../support/event-lines.ts';

const IDS = { emission: 7, click: 9 };
const LIMITS = { maxLineBytes: 600, maxEvents: 100 };
const LINES = Number(process.env.CODEC_LINES ?? 100_000);

/** Everything an answer and the log get from a body: records (key, bytes, time) and rejections. */
function plain(batch: ReturnType<typeof prepareNdjson>) {
  if (isBodyProblem(batch)) return batch;
  const records = (rs: PreparedBatch['emissions']) =>
    rs.map((r) => [r.key, Buffer.from(r.value).toString('hex'), r.timestamp]);
  return {
    emissions: records(batch.emissions),
    clicks: records(batch.clicks),
    rejected: batch.rejected.map((r) => [r.line, r.kind, r.reason, Buffer.from(r.raw).toString('hex')]),
  };
}

const anyLine = fc.oneof(
  { weight: 5, arbitrary: line },
  { weight: 4, arbitrary: mutated },
  { weight: 1, arbitrary: fc.constantFrom('', '   ', '\r', 'x'.repeat(700), '{}', '[[[[[[[[]]]]]]]]') },
);
const body = fc.array(anyLine, { minLength: 1, maxLength: 20 });

describe('ingest codec: the fast path against the general path', () => {
  it(`answers ${LINES}+ generated valid and invalid lines exactly as the general path: same accepted lines, same bytes, same rejections`, (t) => {
    let lines = 0;
    let bodies = 0;
    let accepted = 0;
    fc.assert(
      fc.property(body, (ls) => {
        const bytes = Buffer.from(ls.join('\n'));
        const fast = plain(prepareNdjson(bytes, IDS, LIMITS));
        const general = plain(prepareNdjson(bytes, IDS, LIMITS, { fastPath: false }));
        assert.deepEqual(fast, general);
        lines += ls.length;
        bodies++;
        if (!('status' in fast)) accepted += fast.emissions.length + fast.clicks.length;
      }),
      { numRuns: Math.ceil(LINES / 5), seed: 20261207 },
    );
    assert.ok(lines >= LINES, `${lines} lines generated`);
    assert.ok(accepted > lines / 20, `${accepted} of ${lines} lines accepted: the valid side is exercised`);
    t.diagnostic(`${bodies} bodies, ${lines} lines, ${accepted} accepted`);
  });
});
