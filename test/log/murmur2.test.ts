import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import kafkajs from 'kafkajs';
import { murmur2, partitionForKey } from '../../src/log/index.ts';

describe("Kafka's default partitioner", () => {
  it("matches the murmur2 vectors of Apache Kafka's own tests", () => {
    const vectors: Record<string, number> = {
      '21': -973932308,
      foobar: -790332482,
      'a-little-bit-long-string': -985981536,
      'a-little-bit-longer-string': -1486304829,
      lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8: -58897971,
      abc: 479470107,
    };
    for (const [key, hash] of Object.entries(vectors)) assert.equal(murmur2(Buffer.from(key)), hash, key);
  });

  it("picks the same partition as kafkajs's Java-compatible DefaultPartitioner for any key", () => {
    const partitioner = kafkajs.Partitioners.DefaultPartitioner();
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 64 }), fc.integer({ min: 1, max: 64 }), (key, n) => {
        const partitionMetadata = Array.from({ length: n }, (_, i) => ({
          partitionId: i,
          leader: 0,
          replicas: [0],
          isr: [0],
          partitionErrorCode: 0,
        }));
        assert.equal(
          partitionForKey(key, n),
          partitioner({ topic: 't', partitionMetadata, message: { key, value: null } }),
        );
      }),
    );
  });
});
