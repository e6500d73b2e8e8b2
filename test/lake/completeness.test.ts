/**
 * Lake input completeness: an interval's input is complete once every hour of it is sealed and
 * the lake holds everything the log held when the check began; a whole past day posted at once
 * is not complete until the archiver has landed it, even though its hours were sealed before.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { encodeEmission } from '../../src/events/index.ts';
import { Archiver, awaitLakeInput, describeHours, lakeInputState, readLogEnds } from '../../src/lake/index.ts';
import { openEmbeddedLog, type RecordInput } from '../../src/log/index.ts';
import { plainDecoder } from '../support/speed.ts';
import { waitFor } from '../support/wait.ts';
import { PARTITIONS, TOPICS } from './lake-support.ts';

const HOUR = 3_600_000;
const DAY0 = Date.UTC(2026, 10, 2);

let seq = 0;
function emission(ts: number): RecordInput {
  const id = `em-${seq++}`;
  return {
    key: id,
    value: encodeEmission(1, { type: 'emission', id, ts, placement: 'p', offers: [{ offerId: 'o', clickCost: 1n }] }),
    timestamp: ts,
  };
}

describe('lake input completeness', () => {
  it('names hours as ranges', () => {
    assert.equal(
      describeHours([DAY0, DAY0 + HOUR, DAY0 + 2 * HOUR, DAY0 + 5 * HOUR]),
      '2026-11-02T00:00Z..2026-11-02T02:00Z (3 hours), 2026-11-02T05:00Z',
    );
  });

  it('is incomplete while hours are unsealed or the log is not landed, and says which; complete once both hold', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'reckon-lake-input-'));
    const lakeDir = join(dir, 'lake');
    const log = await openEmbeddedLog({ dir: join(dir, 'log'), retentionIntervalMs: 0 });
    for (const topic of TOPICS) await log.createTopic({ name: topic, partitions: PARTITIONS });
    // The clock of the archiver: 2026-11-03 00:30, so the day's hours up to 22:00 are due (an hour of lateness).
    let now = DAY0 + 24 * HOUR + 30 * 60_000;
    const day = { lakeDir, from: DAY0, to: DAY0 + 24 * HOUR };
    try {
      // Nothing sealed, nothing in the log.
      const empty = await lakeInputState({ ...day, ends: await readLogEnds(log, TOPICS), now });
      assert.equal(empty.complete, false);
      assert.equal(empty.unsealedHours.length, 24);
      assert.match(
        empty.waitingFor,
        /hours 2026-11-02T00:00Z\.\.2026-11-02T23:00Z \(24 hours\) are not sealed \(no hour of the lake is sealed yet\)/,
      );

      const archiver = new Archiver({ log, lakeDir, decoder: plainDecoder, flushIntervalMs: 20, now: () => now });
      await archiver.start();
      try {
        await waitFor(
          'hours up to 22:00 sealed',
          async () => {
            const s = await lakeInputState({ ...day, ends: await readLogEnds(log, TOPICS), now });
            return s.unsealedHours.length === 1;
          },
          10_000,
        );
        const lastHour = await lakeInputState({ ...day, ends: await readLogEnds(log, TOPICS), now });
        assert.deepEqual(lastHour.unsealedHours, [DAY0 + 23 * HOUR]);
        assert.match(lastHour.waitingFor, /seals after its allowed lateness, at 2026-11-03T01:00:00.000Z/);
        // An hour later, 23:00 seals too: the day is complete.
        now += HOUR;
        await waitFor(
          'the whole day sealed',
          async () => (await lakeInputState({ ...day, ends: {}, now })).complete,
          10_000,
        );

        // The whole day posted at once after its seal: the records are in the log, not in the lake yet.
        await archiver.stop();
        await log.append(
          'emissions',
          [1, 5, 13, 23].map((h) => emission(DAY0 + h * HOUR + 60_000)),
        );
        const ends = await readLogEnds(log, TOPICS);
        const behind = await lakeInputState({ ...day, ends, now });
        assert.equal(
          behind.complete,
          false,
          'sealed hours are not complete while the log holds records the lake does not',
        );
        assert.deepEqual(behind.unsealedHours, []);
        assert.equal(
          behind.backlog.reduce((n, b) => n + (b.log - b.lake), 0),
          4,
        );
        assert.match(
          behind.waitingFor,
          /the archiver has not landed 4 record\(s\) of the log yet \(emissions\/\d offsets/,
        );
        const waited = await awaitLakeInput({ log, topics: TOPICS, ...day, waitMs: 300, pollMs: 50 });
        assert.equal(waited.complete, false, 'no archiver runs: waiting does not make it complete');
      } finally {
        await archiver.stop();
      }
      const again = new Archiver({ log, lakeDir, decoder: plainDecoder, flushIntervalMs: 20, now: () => now });
      await again.start();
      try {
        const landed = await awaitLakeInput({ log, topics: TOPICS, ...day, waitMs: 10_000, pollMs: 50 });
        assert.equal(landed.complete, true, landed.waitingFor);
        assert.equal(landed.waitingFor, '');
      } finally {
        await again.stop();
      }
    } finally {
      await log.close();
    }
  });
});
