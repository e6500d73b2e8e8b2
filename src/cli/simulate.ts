import { type Command, Option } from 'commander';
import { parseRfc3339 } from '../events/index.ts';
import {
  DEFAULT_FAULTS,
  DEFAULT_SIMULATION,
  expectedStatistics,
  FAULT_NAMES,
  type FaultRates,
  NO_FAULTS,
  type SimulationOptions,
  simulate,
  writeSimulation,
} from '../sim/index.ts';
import { UsageError } from './errors.ts';
import { createProgress } from './progress.ts';

function positiveInt(name: string, raw: string, min = 1): number {
  if (!/^[0-9]+$/.test(raw) || Number(raw) < min)
    throw new UsageError(`--${name} ${JSON.stringify(raw)}: expected an integer >= ${min}`);
  return Number(raw);
}

function rate(name: string, raw: string): number {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1)
    throw new UsageError(`${name} ${JSON.stringify(raw)}: expected a probability from 0 to 1`);
  return n;
}

const HOURS = /^([0-9]+)(h|d)$/;

interface SimulateFlags {
  seed: string;
  emissions: string;
  out: string;
  expected?: string;
  start: string;
  duration: string;
  faults: string;
  fault: string[];
  ctr: string;
  offers: string;
  placements: string;
  dataCenters: string;
  clickWindow: string;
  blocklist: string;
}

/** Turns `reckon simulate` flags into simulation options, with errors that name the flag. */
export function simulationOptionsOf(flags: SimulateFlags): SimulationOptions {
  const start = parseRfc3339(flags.start);
  if (typeof start === 'string') throw new UsageError(`--start: ${start}`);
  const d = HOURS.exec(flags.duration);
  if (d === null || Number(d[1]) === 0)
    throw new UsageError(`--duration ${JSON.stringify(flags.duration)}: expected hours or days like "24h" or "2d"`);
  const durationMs = Number(d[1]) * (d[2] === 'h' ? 3_600_000 : 86_400_000);
  let faults: FaultRates;
  if (flags.faults === 'none') faults = { ...NO_FAULTS };
  else if (flags.faults === 'default') faults = { ...DEFAULT_FAULTS };
  else throw new UsageError(`--faults ${JSON.stringify(flags.faults)}: expected "default" or "none"`);
  for (const f of flags.fault) {
    const [name = '', value = ''] = f.split('=');
    if (!(FAULT_NAMES as readonly string[]).includes(name)) {
      throw new UsageError(`--fault ${JSON.stringify(f)}: unknown fault "${name}"; known: ${FAULT_NAMES.join(', ')}`);
    }
    faults[name as keyof FaultRates] = rate(`--fault ${name}`, value);
  }
  const window = /^([0-9]+)(s|m|h)$/.exec(flags.clickWindow);
  if (window === null)
    throw new UsageError(`--click-window ${JSON.stringify(flags.clickWindow)}: expected a duration like "30m" or "1h"`);
  const unit = window[2] === 's' ? 1000 : window[2] === 'm' ? 60_000 : 3_600_000;
  return {
    ...DEFAULT_SIMULATION,
    seed: positiveInt('seed', flags.seed, 0),
    emissions: positiveInt('emissions', flags.emissions),
    start,
    durationMs,
    offers: positiveInt('offers', flags.offers, 11),
    placements: positiveInt('placements', flags.placements),
    dataCenters: positiveInt('data-centers', flags.dataCenters),
    ctr: rate('--ctr', flags.ctr),
    faults,
    rules: {
      ...DEFAULT_SIMULATION.rules,
      clickWindowMs: Number(window[1]) * unit,
      ipBlocklist: flags.blocklist === '' ? [] : flags.blocklist.split(',').map((s) => s.trim()),
    },
  };
}

/** Registers `reckon simulate`. */
export function registerSimulate(program: Command): void {
  const d = DEFAULT_SIMULATION;
  program
    .command('simulate')
    .description('generate events with faults in arrival order (NDJSON), and their exact expected statistics')
    .requiredOption('--out <file>', 'where to write the events, one JSON object per line')
    .option('--expected <file>', 'where to write the expected statistics (JSON)')
    .option('--seed <n>', 'random seed: same seed, same output', String(d.seed))
    .option('--emissions <n>', 'emissions of ordinary traffic', String(d.emissions))
    .option('--start <rfc3339>', 'event time of the first emission', new Date(d.start).toISOString())
    .option('--duration <h|d>', 'span of event time, e.g. 24h or 2d', '24h')
    .addOption(
      new Option('--faults <set>', 'fault rates to start from').choices(['default', 'none']).default('default'),
    )
    .option(
      '--fault <name=rate>',
      `set one fault rate (repeatable): ${FAULT_NAMES.join(', ')}`,
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option('--ctr <p>', 'click probability of a displayed offer', String(d.ctr))
    .option('--offers <n>', 'offers in the catalogue', String(d.offers))
    .option('--placements <n>', 'placements', String(d.placements))
    .option('--data-centers <n>', 'data centers', String(d.dataCenters))
    .option('--click-window <dur>', 'click window of the contract', '1h')
    .option('--blocklist <cidrs>', 'fraudulent IP ranges (comma-separated)', d.rules.ipBlocklist.join(','))
    .action((flags: SimulateFlags) => {
      const options = simulationOptionsOf(flags);
      const progress = createProgress();
      const started = Date.now();
      const sim = simulate(options, progress);
      progress('expected stats', 0, 1);
      const expected = expectedStatistics(sim.events, options.rules);
      progress('expected stats', 1, 1);
      writeSimulation(sim, options, expected, { events: flags.out, expected: flags.expected }, progress);
      const c = sim.counts;
      process.stdout.write(
        `wrote ${c.lines} lines (${c.emissions} emissions, ${c.clicks} clicks, ${c.redeliveries} redeliveries, ` +
          `${c.malformed} malformed) to ${flags.out}` +
          (flags.expected
            ? `; ${expected.minute.length} minute, ${expected.hour.length} hour, ${expected.day.length} day rows to ${flags.expected}`
            : '') +
          ` in ${((Date.now() - started) / 1000).toFixed(1)}s\n`,
      );
    });
}
