/** Event contract benchmarks: JSON validation and Avro encoding, each against plain JSON. */
import {
  type Click,
  decodeClick,
  decodeEmission,
  type Emission,
  encodeClick,
  encodeEmission,
  eventToWire,
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
  if (sink === -1) process.stdout.write('');
  return results;
}
