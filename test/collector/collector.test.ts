import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import {
  CLICKS_TOPIC,
  EMISSIONS_TOPIC,
  isBodyProblem,
  listRejected,
  ParsePool,
  prepareNdjson,
} from '../../src/collector/index.ts';
import { decodeClick, decodeEmission } from '../../src/events/index.ts';
import { type Log, openEmbeddedLog, partitionForKey } from '../../src/log/index.ts';
import {
  click,
  closeLog,
  collectorApp,
  emission,
  ndjson,
  TEST_SCHEMA_IDS,
  topicRecords,
} from '../support/collector.ts';

const NDJSON = { 'content-type': 'application/x-ndjson' };
const JSON_TYPE = { 'content-type': 'application/json' };

describe('collector: POST /v1/events', () => {
  it('makes NDJSON events durable on their topics, keyed by emission, and lists each bad line with its reason', async () => {
    const { app, log } = await collectorApp();
    try {
      const body =
        ndjson([emission('em-1'), click('cl-1', 'em-1')]) +
        '{"type":"click","id":"cl-2"}\n' +
        '\n' +
        'not json at all\n' +
        JSON.stringify({ ...emission('em-2'), offers: [{ offerId: 'of-1', clickCost: '0.1234567' }] }) +
        '\r\n' +
        JSON.stringify(click('cl-3', 'em-2'));
      const res = await app.inject({ method: 'POST', url: '/v1/events', headers: NDJSON, payload: body });
      assert.equal(res.statusCode, 200, res.body);
      const answer = res.json() as {
        accepted: number;
        rejected: { line: number; reason: string }[];
        requestId: string;
      };
      assert.equal(answer.accepted, 3);
      assert.deepEqual(
        answer.rejected.map((r) => r.line),
        [3, 5, 6],
      );
      assert.match(answer.rejected[0]?.reason ?? '', /^ts: is required|^emissionId: is required|^ts: /);
      assert.match(answer.rejected[1]?.reason ?? '', /not valid JSON/);
      assert.match(answer.rejected[2]?.reason ?? '', /offers\[0\]\.clickCost: has more than 6 fraction digits/);

      const emissions = await topicRecords(log, EMISSIONS_TOPIC);
      const clicks = await topicRecords(log, CLICKS_TOPIC);
      assert.deepEqual(
        emissions.map((r) => decodeEmission(r.value).id),
        ['em-1'],
      );
      assert.deepEqual(clicks.map((r) => decodeClick(r.value).id).sort(), ['cl-1', 'cl-3']);
      // A click lands on its emission's partition: its key is the emission id.
      const cl1 = clicks.find((r) => decodeClick(r.value).id === 'cl-1');
      assert.equal(cl1?.key?.toString(), 'em-1');
      assert.equal(cl1?.partition, emissions[0]?.partition);
      assert.equal(cl1?.partition, partitionForKey('em-1', 4));
      assert.equal(emissions[0]?.timestamp, Date.parse('2026-11-21T10:00:00.000Z'));

      const kept = await listRejected(log);
      assert.deepEqual(
        kept.map((k) => [k.requestId, k.line, k.kind]),
        [
          [answer.requestId, 3, 'invalid_event'],
          [answer.requestId, 5, 'invalid_json'],
          [answer.requestId, 6, 'invalid_event'],
        ],
      );
      assert.equal(kept[1]?.raw.toString(), 'not json at all');
      assert.equal(kept[1]?.reason, answer.rejected[1]?.reason);
    } finally {
      await app.close();
      await closeLog(log);
    }
  });

  it('takes a JSON array (or one object), gzip-compressed or not', async () => {
    const { app, log } = await collectorApp();
    try {
      const items = [emission('em-1'), click('cl-1', 'em-1'), { type: 'view' }];
      const plain = await app.inject({
        method: 'POST',
        url: '/v1/events',
        headers: JSON_TYPE,
        payload: JSON.stringify(items),
      });
      assert.equal(plain.statusCode, 200);
      assert.equal(plain.json().accepted, 2);
      assert.deepEqual(
        plain.json().rejected.map((r: { line: number }) => r.line),
        [3],
      );
      const zipped = await app.inject({
        method: 'POST',
        url: '/v1/events',
        headers: { ...NDJSON, 'content-encoding': 'gzip' },
        payload: gzipSync(ndjson([emission('em-2'), click('cl-2', 'em-2')])),
      });
      assert.equal(zipped.statusCode, 200, zipped.body);
      assert.equal(zipped.json().accepted, 2);
      const one = await app.inject({
        method: 'POST',
        url: '/v1/events',
        headers: JSON_TYPE,
        payload: JSON.stringify(emission('em-3')),
      });
      assert.equal(one.json().accepted, 1);
      assert.equal((await topicRecords(log, EMISSIONS_TOPIC)).length, 3);
      assert.equal((await topicRecords(log, CLICKS_TOPIC)).length, 2);
    } finally {
      await app.close();
      await closeLog(log);
    }
  });

  it('refuses unreadable bodies with 400 and keeps them in the dead-letter store', async () => {
    const { app, log } = await collectorApp();
    try {
      const badGzip = await app.inject({
        method: 'POST',
        url: '/v1/events',
        headers: { ...NDJSON, 'content-encoding': 'gzip' },
        payload: Buffer.from('this is not gzip'),
      });
      assert.equal(badGzip.statusCode, 400);
      assert.match(badGzip.json().message, /not readable gzip/);
      const badArray = await app.inject({
        method: 'POST',
        url: '/v1/events',
        headers: JSON_TYPE,
        payload: '[{"type":',
      });
      assert.equal(badArray.statusCode, 400);
      assert.match(badArray.json().message, /not a JSON array of events/);
      const kept = await listRejected(log);
      assert.deepEqual(
        kept.map((k) => [k.requestId, k.line, k.kind, k.raw.toString()]),
        [
          [badGzip.json().requestId, 0, 'unreadable_body', 'this is not gzip'],
          [badArray.json().requestId, 0, 'unreadable_body', '[{"type":'],
        ],
      );
    } finally {
      await app.close();
      await closeLog(log);
    }
  });

  it('enforces its limits with clear errors: body size, gzip bombs, line length, events per request, media type, encoding', async () => {
    const { app, log } = await collectorApp({ limits: { maxBodyBytes: 64 * 1024, maxLineBytes: 1024, maxEvents: 10 } });
    const post = (payload: string | Buffer, headers: Record<string, string> = NDJSON) =>
      app.inject({ method: 'POST', url: '/v1/events', headers, payload });
    try {
      const big = await post('x'.repeat(70 * 1024));
      assert.equal(big.statusCode, 413);
      assert.match(big.json().message, /larger than 65536 bytes \(ingestMaxBodyBytes\)/);
      const bomb = await post(gzipSync(Buffer.alloc(10 * 1024 * 1024, 0x20)), {
        ...NDJSON,
        'content-encoding': 'gzip',
      });
      assert.equal(bomb.statusCode, 413);
      assert.match(bomb.json().message, /decompressed body is larger than 65536/);
      const long = await post(ndjson([emission('em-1'), { ...emission('em-2'), placement: 'p'.repeat(2000) }]));
      assert.equal(long.statusCode, 200);
      assert.equal(long.json().accepted, 1);
      assert.match(long.json().rejected[0].reason, /line is \d+ bytes long; at most 1024/);
      const many = await post(ndjson(Array.from({ length: 11 }, (_, i) => emission(`em-${i}`))));
      assert.equal(many.statusCode, 413);
      assert.match(many.json().message, /at most 10 per request/);
      const xml = await post('<events/>', { 'content-type': 'application/xml' });
      assert.equal(xml.statusCode, 415);
      assert.match(xml.json().message, /"application\/xml" is not accepted: send application\/x-ndjson/);
      const br = await post('abc', { ...NDJSON, 'content-encoding': 'br' });
      assert.equal(br.statusCode, 415);
      assert.match(br.json().message, /Content-Encoding "br" is not supported/);
      // Nothing of the refused requests was appended; the long line is kept, cut at the line limit.
      assert.equal((await topicRecords(log, EMISSIONS_TOPIC)).length, 1);
      const kept = await listRejected(log);
      assert.deepEqual(
        kept.map((k) => [k.kind, k.raw.length, k.truncated]),
        [['line_too_long', 1024, true]],
      );
    } finally {
      await app.close();
      await closeLog(log);
    }
  });

  it('answers 503 with Retry-After when the requests in flight reach their byte limit, instead of growing memory', async () => {
    const inner = await collectorApp();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    // A log whose appends wait for the gate: the first request stays in flight.
    const slow: Log = Object.create(inner.log, {
      append: { value: async (...args: Parameters<Log['append']>) => (await gate, inner.log.append(...args)) },
    }) as Log;
    const { app } = await collectorApp({ log: slow, limits: { maxInFlightBytes: 128 * 1024 } });
    try {
      const body = ndjson(Array.from({ length: 500 }, (_, i) => emission(`em-${i}`, '2026-11-21T10:00:00.000Z')));
      const first = app.inject({ method: 'POST', url: '/v1/events', headers: NDJSON, payload: body });
      await new Promise((r) => setImmediate(r));
      const second = await app.inject({ method: 'POST', url: '/v1/events', headers: NDJSON, payload: body });
      assert.equal(second.statusCode, 503);
      assert.equal(second.headers['retry-after'], '1');
      assert.match(second.json().message, /limit is 131072 \(ingestMaxInFlightBytes\); retry after 1 s/);
      release();
      assert.equal((await first).statusCode, 200);
      const third = await app.inject({ method: 'POST', url: '/v1/events', headers: NDJSON, payload: body });
      assert.equal(third.statusCode, 200, 'capacity is given back when a request ends');
    } finally {
      release();
      await app.close();
      await inner.app.close();
      await closeLog(inner.log);
    }
  });

  it('answers 503 with Retry-After, acknowledging nothing, when the log cannot take the events', async () => {
    const { app, log } = await collectorApp();
    await closeLog(log);
    try {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/events',
        headers: NDJSON,
        payload: ndjson([emission('e')]),
      });
      assert.equal(res.statusCode, 503);
      assert.equal(res.headers['retry-after'], '1');
      assert.match(
        res.json().message,
        /the log did not take the events \(the log is closed\); nothing was acknowledged/,
      );
      const ready = await app.inject({ method: 'GET', url: '/readyz' });
      assert.equal(ready.statusCode, 503);
      assert.match(ready.json().reason, /closed/);
    } finally {
      await app.close();
    }
  });

  it('checks bearer tokens by scope: 401 without or with an unknown token, 403 with another scope, admin works everywhere', async () => {
    const tokens = {
      ingestToken: 'ingest-token-0123456789',
      readToken: 'read-token-0123456789ab',
      adminToken: 'admin-token-0123456789a',
    };
    const { app, log } = await collectorApp({ tokens });
    const post = (authorization?: string) =>
      app.inject({
        method: 'POST',
        url: '/v1/events',
        headers: authorization === undefined ? NDJSON : { ...NDJSON, authorization },
        payload: ndjson([emission('em-1')]),
      });
    try {
      const none = await post();
      assert.equal(none.statusCode, 401);
      assert.match(String(none.headers['www-authenticate']), /Bearer/);
      assert.match(none.json().message, /needs the ingest token/);
      assert.equal((await post('Bearer wrong-token-0123456789')).statusCode, 401);
      const read = await post(`Bearer ${tokens.readToken}`);
      assert.equal(read.statusCode, 403);
      assert.match(read.json().message, /not for ingest/);
      assert.equal((await post(`Bearer ${tokens.ingestToken}`)).statusCode, 200);
      assert.equal((await post(`bearer ${tokens.adminToken}`)).statusCode, 200);
      assert.equal((await app.inject({ method: 'GET', url: '/metrics' })).statusCode, 401);
      assert.equal(
        (await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${tokens.readToken}` } }))
          .statusCode,
        200,
      );
      assert.equal((await topicRecords(log, EMISSIONS_TOPIC)).length, 2);
    } finally {
      await app.close();
      await closeLog(log);
    }
  });

  it('reports readiness and its own figures on /readyz and /metrics', async () => {
    const { app, log } = await collectorApp();
    try {
      const ready = await app.inject({ method: 'GET', url: '/readyz' });
      assert.equal(ready.statusCode, 200);
      assert.deepEqual(ready.json(), { status: 'ready', log: 'embedded' });
      await app.inject({
        method: 'POST',
        url: '/v1/events',
        headers: NDJSON,
        payload: ndjson([emission('em-1'), click('cl-1', 'em-1')]) + 'nope\n',
      });
      const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
      assert.match(text, /reckon_collector_events_accepted_total\{type="emission"\} 1/);
      assert.match(text, /reckon_collector_events_accepted_total\{type="click"\} 1/);
      assert.match(text, /reckon_collector_events_rejected_total\{reason="invalid_json"\} 1/);
      assert.match(text, /reckon_collector_requests_total\{status="200"\} 1/);
      assert.match(text, /reckon_collector_request_duration_seconds_count 1/);
    } finally {
      await app.close();
      await closeLog(log);
    }
  });
});

describe('collector parse threads', () => {
  it('parse the same records and rejections in a thread as on the HTTP thread, and refuse over-large bodies the same way', async () => {
    const pool = new ParsePool(1);
    try {
      const lines = Array.from({ length: 400 }, (_, i) =>
        JSON.stringify(i % 2 === 0 ? emission(`em-${i}`) : click(`cl-${i}`, `em-${i - 1}`)),
      );
      lines.splice(7, 0, 'garbage', JSON.stringify({ ...emission('é-unicode'), placement: 'Zürich' }));
      const body = Buffer.from(lines.join('\n'));
      assert.ok(body.length > 32 * 1024, 'large enough to go to a thread');
      const limits = { maxLineBytes: 4096, maxEvents: 1000 };
      const inline = prepareNdjson(body, TEST_SCHEMA_IDS, limits);
      // A copy: the pool moves the body it is given to the thread.
      const threaded = await pool.prepare('ndjson', Buffer.from(body), TEST_SCHEMA_IDS, limits);
      const plain = (b: typeof inline) => {
        assert.ok(!isBodyProblem(b));
        const records = (rs: typeof b.emissions) =>
          rs.map((r) => [r.key, Buffer.from(r.value).toString('hex'), r.timestamp]);
        return {
          emissions: records(b.emissions),
          clicks: records(b.clicks),
          rejected: b.rejected.map((r) => [r.line, r.kind, r.reason, Buffer.from(r.raw).toString()]),
        };
      };
      assert.deepEqual(plain(threaded), plain(inline));
      assert.equal(plain(threaded).emissions.length, 201);
      const big = Buffer.from(ndjson(Array.from({ length: 1001 }, (_, i) => emission(`em-${i}`))));
      const refused = await pool.prepare('ndjson', Buffer.from(big), TEST_SCHEMA_IDS, limits);
      assert.ok(isBodyProblem(refused));
      const { body: back, ...problem } = refused;
      assert.deepEqual(problem, prepareNdjson(big, TEST_SCHEMA_IDS, limits));
      assert.deepEqual(back, big);
    } finally {
      await pool.close();
    }
  });
});

describe("collector: the log's own batches", () => {
  /** The log, with the appends it is given counted by topic; without `appendEncoded` when `encoded` is false (as Kafka). */
  function counted(log: Log, encoded: boolean) {
    const calls = { append: [] as string[], appendEncoded: [] as string[] };
    const wrapped = new Proxy(log, {
      get(target, prop) {
        if (prop === 'appendEncoded' && !encoded) return undefined;
        const value: unknown = Reflect.get(target, prop, target);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          if (prop === 'append' || prop === 'appendEncoded') calls[prop].push(args[0] as string);
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    return { wrapped, calls };
  }

  it('lays events out as batches for a log that takes them, records for one that does not, with the same log either way', async () => {
    const events = Array.from({ length: 300 }, (_, i) =>
      i % 3 === 2 ? click(`ck-${i}`, `em-${i - 1}`) : emission(`em-${i}`),
    );
    const body = ndjson([...events.slice(0, 150), { type: 'emission' }, ...events.slice(150)]);
    const contents: unknown[][] = [];
    for (const encoded of [true, false]) {
      const dir = mkdtempSync(join(tmpdir(), 'reckon-collector-enc-'));
      const { wrapped, calls } = counted(await openEmbeddedLog({ dir, retentionIntervalMs: 0 }), encoded);
      const { app, log } = await collectorApp({ log: wrapped });
      try {
        const res = await app.inject({ method: 'POST', url: '/v1/events', headers: NDJSON, payload: body });
        assert.equal(res.statusCode, 200, res.body);
        assert.equal(res.json().accepted, 300);
        assert.equal(res.json().rejected.length, 1);
        const eventTopics = (topics: string[]) =>
          topics.filter((t) => t === EMISSIONS_TOPIC || t === CLICKS_TOPIC).sort();
        if (encoded) {
          assert.deepEqual(eventTopics(calls.appendEncoded), [CLICKS_TOPIC, EMISSIONS_TOPIC]);
          assert.deepEqual(eventTopics(calls.append), [], 'no event went through Log.append');
        } else {
          assert.deepEqual(eventTopics(calls.append), [CLICKS_TOPIC, EMISSIONS_TOPIC]);
        }
        assert.equal((await listRejected(log)).length, 1, 'the bad line is kept either way');
        const records = async (topic: string) =>
          (await topicRecords(log, topic)).map((r) => [
            r.partition,
            r.offset,
            r.key?.toString(),
            r.value.toString('hex'),
            r.timestamp,
          ]);
        contents.push([await records(EMISSIONS_TOPIC), await records(CLICKS_TOPIC)]);
      } finally {
        await app.close();
        await closeLog(log);
      }
    }
    assert.equal((contents[0]![0] as unknown[]).length, 200);
    assert.deepEqual(contents[0], contents[1]);
  });
});
