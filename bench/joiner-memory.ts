/**
 * Child process of the speed benchmarks (run with `--expose-gc`): the heap a {@link SpeedEngine}
 * retains per emission, against the heap of the plain parsed emissions (a Map of id -> the object
 * `JSON.parse` gives). Each figure is the heap growth across building the structure, after full
 * GCs (the JS heap and ArrayBuffer memory), divided by the number of emissions; rounds
 * alternate and the median is kept. Prints one JSON line: {"emissions", "engineBytes",
 * "parsedBytes"}.
 *
 * Emissions look like the simulator's (its offers, prices, placements and id format) with 2 or 3
 * offers each, spread over two hours of event time (what the engine keeps with the default click
 * window and lateness). Each is built as a fresh JSON line and parsed on its own, as the speed
 * layer decodes each record on its own, so the strings an emission brings are its own.
 */
import { type Emission, parseEventLine } from '../src/events/index.ts';
import { DEFAULT_SIMULATION, NO_FAULTS, simulate } from '../src/sim/index.ts';
import { SpeedEngine } from '../src/speed/index.ts';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run this with node --expose-gc');
const fullGc = (): void => {
  for (let i = 0; i < 3; i++) gc();
};

const n = Number(process.argv[2] ?? 500_000);
const rounds = Number(process.argv[3] ?? 3);
const SPAN_MS = 2 * 3_600_000;

// Templates: the simulator's emissions with at least 2 offers.
const templates: { placement: string; offers: { offerId: string; clickCost: string }[] }[] = [];
for (const line of simulate({ ...DEFAULT_SIMULATION, seed: 12, emissions: 20_000, faults: NO_FAULTS }).lines) {
  const wire = JSON.parse(line) as {
    type?: string;
    placement?: string;
    offers?: { offerId: string; clickCost: string }[];
  };
  if (
    wire.type === 'emission' &&
    typeof wire.placement === 'string' &&
    Array.isArray(wire.offers) &&
    wire.offers.length >= 2
  )
    templates.push({ placement: wire.placement, offers: wire.offers });
}
const start = DEFAULT_SIMULATION.start;

/** The i-th emission as a fresh JSON line. */
function emissionLine(i: number): string {
  const t = templates[i % templates.length] as (typeof templates)[number];
  return JSON.stringify({
    type: 'emission',
    id: `em-12-${i}`,
    ts: new Date(start + Math.floor((i * SPAN_MS) / n)).toISOString(),
    placement: t.placement,
    dc: `dc${1 + (i % 3)}`,
    offers: t.offers.slice(0, 2 + (i % 2)),
  });
}

/** The JS heap plus ArrayBuffer backing stores (typed arrays live outside the heap). */
function heapUsed(): number {
  fullGc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** Bytes per emission retained by a SpeedEngine fed `n` emissions (its deltas drained). */
function engineBytes(): number {
  const before = heapUsed();
  const engine = new SpeedEngine(DEFAULT_SIMULATION.rules);
  for (let i = 0; i < n; i++) {
    const r = parseEventLine(emissionLine(i));
    if (!r.ok) throw new Error(`emission ${i}: ${r.field}: ${r.reason}`);
    engine.emission(r.event as Emission);
    if (i % 10_000 === 9_999) engine.drain();
  }
  engine.drain();
  const after = heapUsed();
  // Used after the measurement, so that the engine is alive during it.
  if (engine.state().emissions !== n)
    throw new Error(`the engine holds ${engine.state().emissions} emissions, not ${n}`);
  return (after - before) / n;
}

/** Bytes per emission of a Map of id -> the parsed JSON object. */
function parsedBytes(): number {
  const before = heapUsed();
  const byId = new Map<string, unknown>();
  for (let i = 0; i < n; i++) {
    const e = JSON.parse(emissionLine(i)) as { id: string };
    byId.set(e.id, e);
  }
  const after = heapUsed();
  if (byId.size !== n) throw new Error(`the map holds ${byId.size} emissions, not ${n}`);
  return (after - before) / n;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const engine: number[] = [];
const parsed: number[] = [];
engineBytes(); // warm-up: compiled code and the engine's shapes, outside the measured rounds
for (let r = 0; r < rounds; r++) {
  engine.push(engineBytes());
  parsed.push(parsedBytes());
}
process.stderr.write(
  `joiner memory rounds (bytes per emission): engine ${engine.map(Math.round).join(', ')}; parsed ${parsed.map(Math.round).join(', ')}\n`,
);
process.stdout.write(`${JSON.stringify({ emissions: n, engineBytes: median(engine), parsedBytes: median(parsed) })}\n`);
