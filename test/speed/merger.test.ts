import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { StreamMerger } from '../../src/speed/index.ts';

/**
 * Drives a merger the way the worker runtime does: each stream offers its head when it has one
 * (records arrive in random interleavings), a refused head is offered again later.
 */
function mergeAll(streams: number[][], arrivals: number[], idleAtEnd: boolean): { out: number[]; stuck: boolean } {
  const names = streams.map((_, i) => `dc${i}`);
  const merger = new StreamMerger(names);
  const fetched = streams.map(() => 0); // how many records of each stream have reached its queue
  const taken = streams.map(() => 0);
  const out: number[] = [];
  const offerAll = () => {
    let moved = true;
    while (moved) {
      moved = false;
      streams.forEach((s, i) => {
        while (taken[i]! < fetched[i]!) {
          const ts = s[taken[i]!]!;
          if (!merger.mayTake(names[i]!, ts)) break;
          merger.taken(names[i]!, ts);
          out.push(ts);
          taken[i]!++;
          moved = true;
        }
      });
    }
  };
  for (const i of arrivals) {
    if (fetched[i]! < streams[i]!.length) fetched[i]!++;
    offerAll();
  }
  streams.forEach((s, i) => (fetched[i] = s.length));
  offerAll();
  // At the end of input every stream goes idle once read to its end.
  if (idleAtEnd) {
    for (let round = 0; round < streams.length; round++) {
      streams.forEach((s, i) => {
        if (taken[i] === s.length) merger.setIdle(names[i]!, true);
      });
      offerAll();
    }
  }
  return { out, stuck: out.length < streams.reduce((n, s) => n + s.length, 0) };
}

describe('StreamMerger', () => {
  it('merges sorted streams into one sorted stream whatever order their records arrive in, holding nothing back once the others are idle', () => {
    const sorted = fc.array(fc.integer({ min: 0, max: 1000 }), { maxLength: 30 }).map((a) => a.sort((x, y) => x - y));
    fc.assert(
      fc.property(
        fc.array(sorted, { minLength: 2, maxLength: 4 }),
        fc.array(fc.nat(3), { maxLength: 150 }),
        (streams, arrivals) => {
          const { out, stuck } = mergeAll(
            streams,
            arrivals.map((a) => a % streams.length),
            true,
          );
          assert.equal(stuck, false);
          assert.deepEqual(
            out,
            streams.flat().sort((x, y) => x - y),
          );
        },
      ),
      { numRuns: 500 },
    );
  });

  it('holds a head while another stream that is not idle could still deliver an earlier event', () => {
    const merger = new StreamMerger(['dc1', 'dc2']);
    assert.equal(merger.mayTake('dc1', 100), false, 'dc2 has said nothing yet');
    assert.equal(merger.mayTake('dc2', 50), true, 'dc2 is earlier');
    merger.taken('dc2', 50);
    assert.equal(merger.mayTake('dc1', 100), false, 'dc2 may still deliver something before 100');
    merger.setIdle('dc2', true);
    assert.equal(merger.mayTake('dc1', 100), true, 'an idle stream does not hold the others back');
    merger.taken('dc1', 100);
    merger.setIdle('dc2', false);
    assert.equal(merger.mayTake('dc2', 60), true, 'a late event of a stream behind goes at once');
    assert.equal(merger.figures.held, 2);
    assert.throws(() => new StreamMerger(['only']), /at least two streams/);
  });
});
