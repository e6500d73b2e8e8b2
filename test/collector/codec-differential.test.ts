import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { BatchSink, encodedEvents, type TopicPartitions } from '../../src/collector/ingest.ts';
import { encodeBody } from '../../src/collector/parse-pool.ts';
import { isBodyProblem, type PreparedBatch, prepareJson, prepareNdjson } from '../../src/collector/index.ts';
import { type Log, openEmbeddedLog } from '../../src/log/index.ts';
import { DEFAULT_SIMULATION, NO_FAULTS, simulate } from '../../src/sim/index.ts';
import { readAll } from '../log/contract.ts';
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

describe("ingest codec: events laid out as the log's batches", () => {
  const PARTITIONS: TopicPartitions = { emissions: 4, clicks: 3 };
  const BODIES = Number(process.env.CODEC_BATCH_BODIES ?? 2000);

  async function contents(log: Log) {
    const out: unknown[] = [];
    for (const [topic, n] of [
      ['emissions', PARTITIONS.emissions],
      ['clicks', PARTITIONS.clicks],
    ] as const)
      for (let p = 0; p < n; p++)
        for (const r of await readAll(log, topic, p))
          out.push([topic, p, r.offset, r.key?.toString(), r.value.toString('hex'), r.timestamp]);
    return out;
  }

  it(`gives the log what appending the records would, for ${BODIES} generated bodies (NDJSON and JSON), and nothing of a body refused whole`, async (t) => {
    const dirs = [mkdtempSync(join(tmpdir(), 'reckon-codec-')), mkdtempSync(join(tmpdir(), 'reckon-codec-'))];
    const logs = await Promise.all(dirs.map((dir) => openEmbeddedLog({ dir, fsync: 'none', retentionIntervalMs: 0 })));
    const [encoded, plain] = [logs[0]!, logs[1]!];
    try {
      for (const log of logs)
        for (const [name, partitions] of Object.entries(PARTITIONS)) await log.createTopic({ name, partitions });
      const sink = new BatchSink(PARTITIONS);
      let accepted = 0;
      // Mostly valid lines (a simulated day's), so that the batches are full.
      const { lines: simulated } = simulate({ ...DEFAULT_SIMULATION, seed: 3, emissions: 1000, faults: NO_FAULTS });
      const valid = fc.constantFrom(...simulated.slice(0, 3000));
      const mostlyValid = fc.array(fc.oneof({ weight: 4, arbitrary: valid }, { weight: 1, arbitrary: anyLine }), {
        minLength: 1,
        maxLength: 40,
      });
      const bodies = fc.sample(mostlyValid, { numRuns: BODIES, seed: 20261208 });
      for (const [i, ls] of bodies.entries()) {
        const json = i % 10 === 9;
        const bytes = Buffer.from(json ? `[${ls.filter((l) => l.trim() !== '').join(',')}]` : ls.join('\n'));
        const kind = json ? 'json' : 'ndjson';
        // Every fifth body is refused whole (too many events) part-way: the next must not carry its events.
        const limits = i % 5 === 4 ? { ...LIMITS, maxEvents: 1 } : LIMITS;
        const records = json ? prepareJson(bytes, IDS, limits) : prepareNdjson(bytes, IDS, limits);
        const batches = encodeBody(kind, bytes, IDS, limits, sink);
        if (isBodyProblem(records) || isBodyProblem(batches)) {
          assert.deepEqual(batches, records);
          continue;
        }
        const rejected = (r: typeof records.rejected) =>
          r.map((x) => [x.line, x.kind, x.reason, x.raw.toString('hex')]);
        assert.deepEqual(rejected(batches.rejected), rejected(records.rejected));
        const emissions = encodedEvents(batches.bytes, batches.emissions);
        const clicks = encodedEvents(batches.bytes, batches.clicks);
        assert.equal(emissions.count, records.emissions.length);
        assert.equal(clicks.count, records.clicks.length);
        accepted += emissions.count + clicks.count;
        await Promise.all([
          encoded.appendEncoded!('emissions', emissions.batches),
          encoded.appendEncoded!('clicks', clicks.batches),
          plain.append('emissions', records.emissions),
          plain.append('clicks', records.clicks),
        ]);
      }
      assert.ok(accepted > BODIES * 2, `${accepted} events accepted`);
      assert.deepEqual(await contents(encoded), await contents(plain));
      t.diagnostic(`${bodies.length} bodies, ${accepted} events accepted`);
    } finally {
      for (const log of logs) await log.close();
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    }
  });
});
