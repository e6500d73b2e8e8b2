/**
 * A parse thread of the collector: turns request bodies into Avro records off the HTTP thread.
 * Every record's bytes go back in one transferred buffer, with (start, end, timestamp) per record.
 */
import { parentPort } from 'node:worker_threads';
import { type BodyProblem, isBodyProblem, type PreparedBatch, prepareJson, prepareNdjson } from './ingest.ts';
import type { ParseRequest, ParseResponse, PackedRecords } from './parse-pool.ts';

function pack(records: PreparedBatch['emissions'], into: Buffer, at: number): { packed: PackedRecords; end: number } {
  const keys: string[] = new Array(records.length);
  const meta = new Float64Array(records.length * 3);
  let pos = at;
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    keys[i] = r.key as string;
    r.value.copy(into, pos);
    meta[i * 3] = pos;
    meta[i * 3 + 1] = pos + r.value.length;
    meta[i * 3 + 2] = r.timestamp ?? 0;
    pos += r.value.length;
  }
  return { packed: { keys, meta }, end: pos };
}

parentPort?.on('message', (request: ParseRequest) => {
  const body = Buffer.from(request.body.buffer, request.body.byteOffset, request.body.byteLength);
  let result: PreparedBatch | BodyProblem;
  try {
    result =
      request.kind === 'ndjson'
        ? prepareNdjson(body, request.ids, request.limits)
        : prepareJson(body, request.ids, request.limits);
  } catch (e) {
    const parseError = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    parentPort?.postMessage({ id: request.id, parseError } satisfies ParseResponse);
    return;
  }
  if (isBodyProblem(result)) {
    parentPort?.postMessage({ id: request.id, problem: result } satisfies ParseResponse);
    return;
  }
  let total = 0;
  for (const r of result.emissions) total += r.value.length;
  for (const r of result.clicks) total += r.value.length;
  const bytes = Buffer.allocUnsafeSlow(total);
  const emissions = pack(result.emissions, bytes, 0);
  const clicks = pack(result.clicks, bytes, emissions.end);
  const rejected = result.rejected.map((r) => ({ ...r, raw: new Uint8Array(r.raw) }));
  const response: ParseResponse = {
    id: request.id,
    bytes: bytes.buffer as ArrayBuffer,
    emissions: emissions.packed,
    clicks: clicks.packed,
    rejected,
  };
  parentPort?.postMessage(response, [bytes.buffer as ArrayBuffer]);
});
