import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import { isBodyProblem, listRejected, MAX_JSON_DEPTH, ParsePool, prepareJson } from '../../src/collector/index.ts';
import { closeLog, collectorApp, emission, ndjson, TEST_SCHEMA_IDS } from '../support/collector.ts';

const JSON_TYPE = { 'content-type': 'application/json' };
const NDJSON = { 'content-type': 'application/x-ndjson' };
const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

/**
 * Sends a request the way a client that writes the whole body before it reads does (Python's
 * urllib): every byte written and flushed first, and only then the answer read.
 */
function writeAllThenRead(port: number, head: string, body: Buffer, chunked: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    socket.on('data', (c: Buffer) => (answer += c.toString()));
    socket.on('error', reject);
    socket.on('close', () => resolve(answer));
    socket.on('connect', () => {
      socket.pause();
      socket.write(head);
      const piece = 256 * 1024;
      for (let at = 0; at < body.length; at += piece) {
        const part = body.subarray(at, at + piece);
        socket.write(
          chunked ? Buffer.concat([Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n')]) : part,
        );
      }
      if (chunked) socket.write('0\r\n\r\n');
      // Wait until the kernel took every byte, then read.
      socket.write('', () => socket.resume());
    });
  });
}

describe('collector: poison bodies', () => {
  it('answers a body nested too deep for any event with 400 naming why, keeps it, and never 503 (inline and in a parse thread)', async () => {
    const { app, log } = await collectorApp({ limits: { maxBodyBytes: 1024 * 1024, maxLineBytes: 512 * 1024 } });
    try {
      const deep = await app.inject({
        method: 'POST',
        url: '/v1/events',
        headers: JSON_TYPE,
        payload: nested(200_000),
      });
      assert.equal(deep.statusCode, 400, deep.body);
      assert.equal(deep.json().error, 'RECKON_INGEST_UNREADABLE_BODY');
      assert.match(
        deep.json().message,
        new RegExp(`nests deeper than ${MAX_JSON_DEPTH + 1} levels \\(at byte ${MAX_JSON_DEPTH + 2}\\)`),
      );
      const deepObject = await app.inject({
        method: 'POST',
        url: '/v1/events',
        headers: JSON_TYPE,
        payload: '[' + '{"a":'.repeat(50_000) + '1' + '}'.repeat(50_000) + ']',
      });
      assert.equal(deepObject.statusCode, 400, deepObject.body);
      const scalar = await app.inject({ method: 'POST', url: '/v1/events', headers: JSON_TYPE, payload: '42' });
      assert.equal(scalar.statusCode, 400);
      assert.match(scalar.json().message, /it is a JSON number, neither an event object nor an array of them/);
      const text = await app.inject({ method: 'POST', url: '/v1/events', headers: JSON_TYPE, payload: '"hello"' });
      assert.match(text.json().message, /it is a JSON string/);
      // A deep NDJSON line is one rejected line among good ones; brackets inside strings do not count.
      const lines = `${JSON.stringify(emission('em-1'))}\n${nested(100_000)}\n${JSON.stringify({ ...emission('em-2'), placement: '[['.repeat(40) })}\n`;
      const mixed = await app.inject({ method: 'POST', url: '/v1/events', headers: NDJSON, payload: lines });
      assert.equal(mixed.statusCode, 200, mixed.body);
      assert.equal(mixed.json().accepted, 2);
      assert.deepEqual(mixed.json().rejected, [
        {
          line: 2,
          reason: `$: the line nests deeper than ${MAX_JSON_DEPTH} levels (at byte ${MAX_JSON_DEPTH + 1}), and an event nests 3 (the event, its offers, an offer)`,
        },
      ]);
      const kept = await listRejected(log);
      assert.deepEqual(
        kept.map((k) => [k.requestId, k.kind, k.raw.length, k.truncated]),
        [
          // Whole bodies are kept up to 64 KiB, and marked as cut.
          [deep.json().requestId, 'unreadable_body', 65_536, true],
          [deepObject.json().requestId, 'unreadable_body', 65_536, true],
          [scalar.json().requestId, 'unreadable_body', 2, false],
          [text.json().requestId, 'unreadable_body', 7, false],
          [mixed.json().requestId, 'invalid_json', 200_000, false],
        ],
      );
      assert.ok(kept.every((k) => k.reason.length > 0));
    } finally {
      await app.close();
      await closeLog(log);
    }
    // The same answer from a parse thread as inline.
    const pool = new ParsePool(1);
    try {
      const limits = { maxLineBytes: 4096, maxEvents: 1000 };
      const body = Buffer.from(nested(200_000));
      const inline = prepareJson(body, TEST_SCHEMA_IDS, limits);
      const sent = Buffer.from(body);
      const threaded = await pool.prepare('json', sent, TEST_SCHEMA_IDS, limits);
      assert.ok(isBodyProblem(threaded));
      const { body: back, ...problem } = threaded;
      assert.deepEqual(problem, inline);
      assert.equal(sent.length, 0, 'the body was moved to the thread, not copied');
      assert.deepEqual(back, body, 'and it came back with the problem, to be kept with its reason');
    } finally {
      await pool.close();
    }
  });

  it('answers 413 to a client that writes a too-large body in full before reading, declared or chunked, and stays healthy', async () => {
    const { app, log } = await collectorApp({ limits: { maxBodyBytes: 1024 * 1024 } });
    try {
      await app.listen({ host: '127.0.0.1', port: 0 });
      const port = (app.server.address() as { port: number }).port;
      const body = Buffer.from(ndjson(Array.from({ length: 60_000 }, (_, i) => emission(`em-${i}`))));
      assert.ok(body.length > 8 * 1024 * 1024, `${body.length} bytes: well over the 1 MiB limit`);
      const declared = await writeAllThenRead(
        port,
        `POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: ${body.length}\r\n\r\n`,
        body,
        false,
      );
      assert.match(declared, /^HTTP\/1\.1 413 /);
      assert.match(declared, /larger than 1048576 bytes \(ingestMaxBodyBytes\)/);
      const chunked = await writeAllThenRead(
        port,
        'POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n',
        body,
        true,
      );
      assert.match(chunked, /^HTTP\/1\.1 413 /);
      // The server still takes events.
      const ok = await fetch(`http://127.0.0.1:${port}/v1/events`, {
        method: 'POST',
        headers: NDJSON,
        body: ndjson([emission('em-after')]),
      });
      assert.equal(ok.status, 200);
      assert.equal(((await ok.json()) as { accepted: number }).accepted, 1);
    } finally {
      await app.close();
      await closeLog(log);
    }
  });
});
