import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { figuresLine, runChaos } from './harness.ts';

describe('whole-system resilience (short runs)', () => {
  it('keeps every promise while the collector, speed layer, archiver and scheduler are SIGKILLed and the log disk fills', async (t) => {
    const f = await runChaos({ seed: 1, emissions: 3000, kills: 6, diskFull: true });
    t.diagnostic(figuresLine(f));
    assert.equal(f.lost, 0);
    assert.equal(f.lakeDuplicates, 0);
    assert.equal(f.mismatchedRows, 0);
    assert.ok(f.kills + f.diskFull >= 5, 'the faults happened');
    assert.ok(f.acked > 0);
  });

  it('keeps every promise on Kafka and PostgreSQL with two processes per role, while members are SIGKILLed and the brokers freeze', async (t) => {
    const f = await runChaos({ seed: 1, mode: 'distributed', emissions: 3000, kills: 6, diskFull: true });
    t.diagnostic(figuresLine(f));
    assert.equal(f.mode, 'distributed');
    assert.equal(f.lost, 0);
    assert.equal(f.lakeDuplicates, 0);
    assert.equal(f.mismatchedRows, 0);
    assert.ok(f.kills + f.diskFull >= 5, 'the faults happened');
    assert.ok(f.acked > 0);
  });
});
