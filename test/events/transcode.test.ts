import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { line, mutated } from '../support/event-lines.ts';
import { AvroOutput, encodeClick, encodeEmission, EventTranscoder, parseEventLine } from '../../src/events/index.ts';

const IDS = { emission: 7, click: 9 };

/** The general path: parse, validate, encode. */
function general(line: string): { bytes: Buffer; key: string; ts: number } | undefined {
  const r = parseEventLine(line);
  if (!r.ok) return undefined;
  const e = r.event;
  return e.type === 'emission'
    ? { bytes: encodeEmission(IDS.emission, e), key: e.id, ts: e.ts }
    : { bytes: encodeClick(IDS.click, e), key: e.emissionId, ts: e.ts };
}

function fast(line: string): { bytes: Buffer; key: string; ts: number } | undefined {
  const src = Buffer.from(`xx${line}yy`); // an offset inside a larger buffer, as in a request body
  const out = new AvroOutput(4);
  out.pos = 3; // and not at the start of the output
  const r = new EventTranscoder(IDS).transcode(src, 2, src.length - 2, out);
  return r === undefined
    ? undefined
    : {
        bytes: Buffer.from(out.buf.subarray(r.start, r.end)),
        key: src.toString('latin1', r.keyStart, r.keyEnd),
        ts: r.ts,
      };
}

describe('EventTranscoder', () => {
  it('accepts a line only when the general path accepts it, with byte-identical Avro, key and time (property)', () => {
    let accepted = 0;
    fc.assert(
      fc.property(fc.oneof(line, mutated), (l) => {
        const f = fast(l);
        const g = general(l);
        if (f !== undefined) {
          accepted++;
          assert.ok(g !== undefined, `the transcoder accepted a line the general path rejects: ${l}`);
          assert.deepEqual(f, g);
        }
      }),
      { numRuns: 20_000, seed: 424242 },
    );
    assert.ok(accepted > 1_000, `the transcoder took ${accepted} lines`);
  });

  it('takes ordinary ASCII event lines itself', () => {
    const lines = [
      '{"type":"emission","id":"em-1","ts":"2026-11-21T10:00:00.000Z","placement":"home-top","dc":"dc1","offers":[{"offerId":"of-1","clickCost":"0.35"},{"offerId":"of-2","clickCost":"1.20"}]}',
      '{"type":"click","id":"cl-1","ts":"2026-11-21T10:00:05.120Z","emissionId":"em-1","offerId":"of-1","userId":"u-9","ip":"203.0.113.7","dc":"dc1"}',
      '{ "offers": [ { "clickCost": "12", "offerId": "x" } ], "placement": "p", "ts": 1732183200000, "id": "e", "type": "emission" }',
    ];
    for (const l of lines) {
      const f = fast(l);
      assert.ok(f !== undefined, l);
      assert.deepEqual(f, general(l));
    }
  });

  it('leaves to the general path what it cannot decide cheaply: escapes, non-ASCII, repeated fields, errors', () => {
    for (const l of [
      '{"type":"click","id":"c\\u0031","ts":1,"emissionId":"e","offerId":"o","userId":"u","ip":"::1"}',
      '{"type":"click","id":"é","ts":1,"emissionId":"e","offerId":"o","userId":"u","ip":"::1"}',
      '{"type":"click","id":"c","id":"d","ts":1,"emissionId":"e","offerId":"o","userId":"u","ip":"::1"}',
      '{"type":"click","id":"c","ts":1,"emissionId":"e","offerId":"o","userId":"u","ip":"::1","extra":1}',
      '{"type":"emission","id":"e","ts":1,"placement":"p","offers":[{"offerId":"a","clickCost":"1"},{"offerId":"a","clickCost":"2"}]}',
      '{"type":"click","id":"c","ts":1,"emissionId":"e","offerId":"o","userId":"u","ip":"::1"} x',
    ]) {
      assert.equal(fast(l), undefined, l);
    }
  });
});
