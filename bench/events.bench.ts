/** Event contract benchmarks: JSON validation and Avro encoding, each against plain JSON. */
import {
  AvroOutput,
  type Click,
  decodeClick,
  decodeEmission,
  type Emission,
  encodeClick,
  encodeEmission,
  eventToWire,
  EventTranscoder,
  parseEventLine,
  type ReckonEvent,
} from '../src/events/index.ts';
import { DEFAULT_SIMULATION, NO_FAULTS, simulate } from '../src/sim/index.ts';
import { type BenchResult, compare } from './harness.ts';

/** Runs the event benchmarks. */
export function eventBenchmarks(): BenchResult[] {
  const { lines } = simulate({
    ...DEFAULT_SIMULATION,
    seed: 42,
    emissions: 20_000,
    faults: NO_FAULTS,
  });
  const events: ReckonEvent[] = [];
  for (const line of lines) {
    const r = parseEventLine(line);
    if (r.ok) events.push(r.event);
  }
  let sink = 0;
  const results: BenchResult[] = [];

  results.push(
    compare(
      'event JSON parse+validate',
      'events/s',
      () => {
        for (const line of lines) if (parseEventLine(line).ok) sink++;
      },
      () => {
        for (const line of lines) if (JSON.parse(line) !== null) sink++;
      },
      lines.length,
    ),
  );

  const wire = events.map(eventToWire);
  const encodeOne = (e: ReckonEvent): Buffer => (e.type === 'emission' ? encodeEmission(1, e) : encodeClick(2, e));
  results.push(
    compare(
      'Avro encode (Confluent framed)',
      'events/s',
      () => {
        for (const e of events) sink += encodeOne(e).length;
      },
      () => {
        for (const w of wire) sink += JSON.stringify(w).length;
      },
      events.length,
    ),
  );

  const encoded = events.map(encodeOne);
  const texts = wire.map((w) => JSON.stringify(w));
  const types = events.map((e) => e.type);
  results.push(
    compare(
      'Avro decode (Confluent framed)',
      'events/s',
      () => {
        for (let i = 0; i < encoded.length; i++) {
          const buf = encoded[i] as Buffer;
          const e: Emission | Click = types[i] === 'emission' ? decodeEmission(buf) : decodeClick(buf);
          sink += e.ts;
        }
      },
      () => {
        for (const t of texts) sink += (JSON.parse(t) as { id: string }).id.length;
      },
      events.length,
    ),
  );

  // The ingest hot path: one pass from JSON bytes to Avro, against parse + validate + encode.
  const body = Buffer.from(lines.join('\n'));
  const starts: number[] = [];
  const ends: number[] = [];
  for (let at = 0; at < body.length;) {
    let end = body.indexOf(0x0a, at);
    if (end < 0) end = body.length;
    starts.push(at);
    ends.push(end);
    at = end + 1;
  }
  const transcoder = new EventTranscoder({ emission: 1, click: 2 });
  const transcode = () => {
    const out = new AvroOutput(body.length);
    for (let i = 0; i < starts.length; i++)
      if (transcoder.transcode(body, starts[i] as number, ends[i] as number, out) !== undefined) sink++;
  };
  // Against JSON.parse of the same lines: what turning a line into anything at all costs.
  results.push(
    compare(
      'JSON line to Avro, single-pass transcoder, vs JSON.parse',
      'events/s',
      transcode,
      () => {
        for (const line of lines) if (JSON.parse(line) !== null) sink++;
      },
      lines.length,
    ),
  );
  // And against the general path it replaces (parse, validate, encode).
  results.push(
    compare(
      'JSON line to Avro, single-pass transcoder, vs the general path',
      'events/s',
      transcode,
      () => {
        for (const line of lines) {
          const r = parseEventLine(line);
          if (r.ok) sink += encodeOne(r.event).length;
        }
      },
      lines.length,
    ),
  );
  if (sink === -1) process.stdout.write('');
  return results;
}
