import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ContiguousOffsetTracker } from '../../src/workers/index.ts';

describe('ContiguousOffsetTracker', () => {
  it('commits exactly the highest contiguous finished offset, for any completion order (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1000 }),
        fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 200 }),
        fc.array(fc.nat(), { maxLength: 400 }),
        (start, gaps, picks) => {
          const tracker = new ContiguousOffsetTracker(start);
          const offsets: number[] = [];
          let o = start;
          for (const g of gaps) {
            offsets.push(o);
            tracker.register(o);
            o += g; // offsets may jump (skipped ranges)
          }
          const unfinished = new Set(offsets);
          const order = [...offsets];
          // A random permutation driven by `picks`.
          for (let i = order.length - 1; i > 0; i--) {
            const j = (picks[i] ?? i) % (i + 1);
            [order[i], order[j]] = [order[j] as number, order[i] as number];
          }
          for (const finished of order) {
            tracker.finish(finished);
            unfinished.delete(finished);
            const firstUnfinished = offsets.find((x) => unfinished.has(x));
            const expected = firstUnfinished ?? (offsets[offsets.length - 1] as number) + 1;
            assert.equal(tracker.position(), expected);
            for (const u of unfinished) assert.ok(tracker.position() <= u, 'never past an unfinished record');
          }
          assert.equal(tracker.inFlight, 0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('starts at the committed position and follows skips', () => {
    const t = new ContiguousOffsetTracker(42);
    assert.equal(t.position(), 42);
    t.skipTo(100);
    assert.equal(t.position(), 100);
    t.register(100);
    assert.equal(t.position(), 100);
    t.finish(100);
    assert.equal(t.position(), 101);
    assert.throws(() => t.register(50), /registered after/);
  });
});
