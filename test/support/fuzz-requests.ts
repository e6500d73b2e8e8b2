/**
 * Generated ingest requests for fuzzing the collector: NDJSON and JSON bodies (valid, mutated,
 * random, not UTF-8, nested far too deep), content types and encodings, and hostile headers.
 */
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { click, emission } from './collector.ts';

const validLine = fc.oneof(
  fc.nat(1000).map((i) => JSON.stringify(emission(`em-${i}`))),
  fc.nat(1000).map((i) => JSON.stringify(click(`cl-${i}`, `em-${i}`))),
);
/** A valid line with one character deleted, replaced or inserted. */
const mutatedLine = fc
  .tuple(validLine, fc.nat(), fc.constantFrom('del', 'set', 'ins'), fc.string({ maxLength: 1 }))
  .map(([line, at, op, ch]) => {
    const i = at % line.length;
    if (op === 'del') return line.slice(0, i) + line.slice(i + 1);
    if (op === 'set') return line.slice(0, i) + ch + line.slice(i + 1);
    return line.slice(0, i) + ch + line.slice(i);
  });
const lineText = fc.oneof(
  { weight: 4, arbitrary: validLine },
  { weight: 4, arbitrary: mutatedLine },
  { weight: 2, arbitrary: fc.json() },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 80 }) },
  { weight: 1, arbitrary: fc.constantFrom('', '   ', '{}', '[]', 'null', '"x"', '{"type":"click"}') },
  { weight: 1, arbitrary: fc.nat(3).map((n) => 'x'.repeat(4000 + n * 100)) },
);
const lineBytes = fc.oneof(
  { weight: 9, arbitrary: lineText.map((t) => Buffer.from(t)) },
  // Bytes that are often not UTF-8.
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 60 }).map((b) => Buffer.from(b).filter((x) => x !== 0x0a)) },
);
const ndjsonBody = fc
  .tuple(fc.array(lineBytes, { maxLength: 12 }), fc.constantFrom('\n', '\r\n'), fc.boolean())
  .map(([lines, eol, trailing]) => {
    const sep = Buffer.from(eol);
    const parts = lines.flatMap((l, i) => (i === 0 ? [l] : [sep, l]));
    if (trailing) parts.push(sep);
    return Buffer.concat(parts);
  });
const jsonBody = fc.oneof(
  fc
    .array(
      fc.oneof(
        validLine.map((l) => JSON.parse(l) as unknown),
        fc.jsonValue(),
      ),
      { maxLength: 12 },
    )
    .map((a) => Buffer.from(JSON.stringify(a))),
  fc.json().map((j) => Buffer.from(j)),
  mutatedLine.map((l) => Buffer.from(`[${l}]`)),
);
const rawBody = fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b));
/** JSON nested far deeper than any event: arrays or objects, alone, in an array, or as one NDJSON line. */
const deepBody = fc
  .tuple(
    fc.integer({ min: 2, max: 20_000 }),
    fc.constantFrom('[', '{"a":'),
    fc.constantFrom('alone', 'element', 'line'),
  )
  .map(([depth, open, where]) => {
    const value = open === '[' ? '['.repeat(depth) + ']'.repeat(depth) : open.repeat(depth) + '1' + '}'.repeat(depth);
    if (where === 'element') return Buffer.from(`[${value}]`);
    if (where === 'line') return Buffer.from(`${JSON.stringify(emission('em-deep'))}\n${value}\n`);
    return Buffer.from(value);
  });
const contentType = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.constantFrom(
      'application/x-ndjson',
      'application/json',
      'application/jsonl',
      'application/x-ndjson; charset=utf-8',
      'application/json;charset=latin1',
      'APPLICATION/JSON',
    ),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom('', 'text/plain', 'multipart/form-data; boundary=x', 'application/octet-stream'),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }).filter((s) => /^[\x20-\x7e]*$/.test(s)) },
);
const encoding = fc.constantFrom(
  'identity',
  'identity',
  'identity',
  'gzip',
  'gzip',
  'broken-gzip',
  'deflate',
  'GZIP',
  ' gzip ',
);

/** Headers a hostile or broken client sends besides the ones that matter (names and values an HTTP client can send). */
const token = fc.string({
  unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-_'),
  minLength: 1,
  maxLength: 24,
});
const headerValue = fc.oneof(
  fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 40 }),
  fc.nat(8000).map((n) => 'v'.repeat(n)),
);
const extraHeaders = fc.oneof(
  { weight: 6, arbitrary: fc.constant({}) },
  {
    weight: 2,
    arbitrary: fc.dictionary(
      token.map((t) => `x-${t}`),
      headerValue,
      { maxKeys: 4 },
    ),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      authorization: fc.oneof(
        headerValue,
        headerValue.map((v) => `Bearer ${v}`),
      ),
      accept: headerValue,
      'user-agent': headerValue,
    }),
  },
);

/** One request: headers and body. */
export const request = fc
  .record({ body: fc.oneof(ndjsonBody, jsonBody, rawBody), contentType, encoding })
  .map(({ body, contentType: type, encoding: enc }) => {
    const headers: Record<string, string> = type === '' ? {} : { 'content-type': type };
    let payload = body;
    if (enc === 'gzip' || enc === 'GZIP' || enc === ' gzip ') payload = gzipSync(body);
    if (enc === 'broken-gzip') payload = gzipSync(body).subarray(0, Math.max(1, Math.floor(body.length / 2)));
    if (enc !== 'identity') headers['content-encoding'] = enc === 'broken-gzip' ? 'gzip' : enc;
    return { headers, payload };
  });

/** A request from a hostile client: the requests above, nested-too-deep bodies, and stray headers. */
export const hostileRequest = fc
  .record({
    base: fc.oneof(
      { weight: 9, arbitrary: request },
      {
        weight: 1,
        arbitrary: deepBody.chain((payload) =>
          fc.record({
            headers: fc.constantFrom(
              { 'content-type': 'application/json' },
              { 'content-type': 'application/x-ndjson' },
            ),
            payload: fc.constant(payload),
          }),
        ),
      },
    ),
    extra: extraHeaders,
  })
  .map(({ base, extra }) => ({ headers: { ...extra, ...base.headers }, payload: base.payload }));
