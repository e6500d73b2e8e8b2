/**
 * Sealed hours and late arrivals: an hour is sealed once the clock is past its end plus the
 * allowed lateness and the lake holds everything appended before that moment; events archived
 * for a sealed hour afterwards are recorded as late arrivals, and the seal survives a restart.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type Click, encodeClick, encodeEmission } from '../../src/events/index.ts';
import { Archiver, isHourSealed, lateArrivals, sealedHours } from '../../src/lake/index.ts';
import { HourSealer } from '../../src/lake/sealing.ts';
import { type Log, openEmbeddedLog, type RecordInput } from '../../src/log/index.ts';
import { plainDecoder } from '../support/speed.ts';
import { waitFor } from '../support/wait.ts';
import { lakeCaughtUp, PARTITIONS, TOPICS } from './lake-support.ts';

const HOUR = 3_600_000;
const DAY0 = Date.UTC(2026, 10, 21);
const at = (hour: number, minute = 0) => DAY0 + hour * HOUR + minute * 60_000;

let seq = 0;
function emission(ts: number): RecordInput {
  const id = `em-${seq++}`;
  return {
    key: id,
    value: encodeEmission(1, {
      type: 'emission',
      id,
      ts,
      placement: 'home-top',
      offers: [{ offerId: 'of-1', clickCost: 350_000n }],
    }),
    timestamp: ts,
  };
}

function click(ts: number): RecordInput {
  const c: Click = {
    type: 'click',
    id: `cl-${seq++}`,
    ts,
    emissionId: 'em-0',
    offerId: 'of-1',
    userId: 'u-1',
    ip: '203.0.113.7',
  };
  return { key: c.emissionId, value: encodeClick(2, c), timestamp: ts };
}

async function setUp(name: string): Promise<{ lakeDir: string; log: Log }> {
  const dir = mkdtempSync(join(tmpdir(), `reckon-lake-${name}-`));
  const log = await openEmbeddedLog({ dir: join(dir, 'log'), retentionIntervalMs: 0 });
  for (const topic of TOPICS) await log.createTopic({ name: topic, partitions: PARTITIONS });
  return { lakeDir: join(dir, 'lake'), log };
}

describe('HourSealer', () => {
  it('seals a due hour only once the archiver has reached the log ends read after it became due', async () => {
    const lakeDir = join(mkdtempSync(join(tmpdir(), 'reckon-lake-sealer-')), 'lake');
    const sealer = await HourSealer.open(lakeDir, HOUR);
    let ends = 10;
    let consumed = 0;
    const inputs = {
      logEnds: async () => ({ emissions: [ends] }),
      consumed: () => ({ emissions: [consumed] }),
      earliestDataHour: async () => at(1),
    };
    // 03:10: hours 00 and 01 are due (ended an hour ago); the data starts at 01.
    assert.deepEqual(await sealer.pass(at(3, 10), inputs), [], 'not sealed while 10 records are not in the lake');
    // Records appended after the hours became due do not hold them back.
    ends = 25;
    consumed = 9;
    assert.deepEqual(await sealer.pass(at(3, 20), inputs), []);
    consumed = 10;
    const sealed = await sealer.pass(at(3, 30), inputs);
    assert.deepEqual(
      sealed.map((s) => [s.date, s.hour, s.sealedAt, s.ends]),
      [['2026-11-21', 1, at(3, 30), { emissions: [10] }]],
    );
    assert.ok(sealer.isSealed(at(0)) && sealer.isSealed(at(1)) && !sealer.isSealed(at(2)));
    // 04:00: hour 02 is due; a new snapshot (25) must be reached.
    assert.deepEqual(await sealer.pass(at(4), inputs), []);
    consumed = 25;
    assert.deepEqual(
      (await sealer.pass(at(4, 1), inputs)).map((s) => s.hour),
      [2],
    );
    await sealer.close();
    assert.deepEqual(
      (await sealedHours(lakeDir)).map((s) => s.hour),
      [1, 2],
    );
    assert.equal(await isHourSealed(lakeDir, at(0, 30)), true, 'hours before the first line are sealed too');
    assert.equal(await isHourSealed(lakeDir, at(2, 59)), true);
    assert.equal(await isHourSealed(lakeDir, at(3)), false);
  });
});

describe('Archiver sealing', () => {
  it('seals hours with an injected clock, records late arrivals for sealed hours, and keeps both across a restart', async () => {
    const { lakeDir, log } = await setUp('seal');
    let now = at(5, 30);
    const start = async () => {
      const a = new Archiver({ log, lakeDir, decoder: plainDecoder, flushIntervalMs: 20, now: () => now });
      await a.start();
      return a;
    };
    try {
      await log.append('emissions', [at(0, 5), at(1, 10), at(2, 59), at(3, 30), at(4, 45), at(5, 20)].map(emission));
      await log.append('clicks', [at(1, 11), at(4, 46)].map(click));
      let archiver = await start();
      // 05:30 with an hour of lateness: 00..03 are due; sealed once the lake holds the log.
      await waitFor('hours 00..03 to be sealed', async () => (await sealedHours(lakeDir)).length === 4, 10_000);
      assert.deepEqual(
        (await sealedHours(lakeDir)).map((s) => `${s.date} ${s.hour}`),
        ['2026-11-21 0', '2026-11-21 1', '2026-11-21 2', '2026-11-21 3'],
      );
      assert.equal(await isHourSealed(lakeDir, at(3)), true);
      assert.equal(await isHourSealed(lakeDir, at(4)), false);
      assert.deepEqual(await lateArrivals(lakeDir), [], 'nothing archived after its hour was sealed');

      // Two clicks and an emission for sealed hour 01, one emission for open hour 05.
      now = at(5, 40);
      await log.append('emissions', [emission(at(1, 30)), emission(at(5, 35))]);
      await log.append('clicks', [click(at(1, 31)), click(at(1, 32))]);
      await waitFor('the lake to hold the log', () => lakeCaughtUp(lakeDir, log), 10_000);
      // Recorded by the sealer's next pass over the manifests, after the flushes committed.
      await waitFor(
        'the late arrivals recorded',
        async () => (await lateArrivals(lakeDir)).reduce((n, l) => n + l.count, 0) >= 3,
        10_000,
      );
      const late = await lateArrivals(lakeDir);
      const counts: Record<string, number> = {};
      for (const l of late) {
        assert.deepEqual(
          [l.date, l.hour, l.hourStartMs, l.firstSeenAt, l.at],
          ['2026-11-21', 1, at(1), at(5, 40), at(5, 40)],
        );
        counts[l.topic] = (counts[l.topic] ?? 0) + l.count;
      }
      assert.deepEqual(counts, { emissions: 1, clicks: 2 }, 'the events for sealed hour 01, none for open hour 05');
      for (const l of late) assert.ok(l.to >= l.from && l.partition >= 0 && l.partition < PARTITIONS);
      // The figure counts a pass's late rows once the pass has also saved its cursors.
      await waitFor('the late rows counted', () => archiver.figures.lateRows >= 3, 10_000);
      assert.equal(archiver.figures.lateRows, 3);
      assert.deepEqual(await lateArrivals(lakeDir, at(5, 41)), [], 'none recorded after 05:41');
      await archiver.stop();

      // After a restart: the seal holds, the clock moves on, hour 04 is sealed, 05 is not.
      now = at(6, 10);
      archiver = await start();
      await waitFor('hour 04 to be sealed', () => isHourSealed(lakeDir, at(4)), 10_000);
      assert.equal(await isHourSealed(lakeDir, at(5)), false);
      assert.deepEqual(
        (await sealedHours(lakeDir)).map((s) => s.hour),
        [0, 1, 2, 3, 4],
      );
      await log.append('emissions', [emission(at(2, 1))]);
      await waitFor('a late arrival for hour 02', async () =>
        (await lateArrivals(lakeDir, at(6))).some((l) => l.hour === 2 && l.count === 1),
      );
      await archiver.stop();
    } finally {
      await log.close();
    }
  });
});
