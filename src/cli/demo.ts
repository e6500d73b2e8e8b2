/**
 * `reckon demo`: live simulated traffic with every fault of the simulator (redeliveries, late
 * and early events, repeat clicks, invalid clicks, fraud bursts, blocklisted addresses,
 * malformed lines), posted to a collector once a second with event times around now.
 * `reckon start --demo` (`npm start`) runs it as a supervised process.
 */
import type { Command } from 'commander';
import { DEFAULT_SIMULATION, simulate } from '../sim/index.ts';
import { UsageError } from './errors.ts';
import { send } from './ingest.ts';
import { exitWhenOrphaned } from './process.ts';

/** Options of {@link runDemo}. */
export interface DemoOptions {
  url: string;
  /** Events a second, roughly (emissions and their clicks). */
  rate: number;
  token?: string;
  seed?: number;
  /** Stop after this many seconds (default: run until stopped). */
  seconds?: number;
  onSecond?: (accepted: number, rejected: number) => void;
}

/** Posts a second of simulated traffic every second. */
export async function runDemo(o: DemoOptions): Promise<void> {
  const seed = o.seed ?? Math.floor(Date.now() / 1000) % 1_000_000;
  // About 1.2 lines per emission at the simulator's click rate, with its faults.
  const emissions = Math.max(1, Math.round(o.rate / 1.2));
  for (let i = 0; o.seconds === undefined || i < o.seconds; i++) {
    const started = Date.now();
    const sim = simulate({
      ...DEFAULT_SIMULATION,
      // One seed per second: event ids (`em-<seed>-<n>`) never repeat across seconds.
      seed: seed * 100_000 + i,
      emissions,
      start: started - 1000,
      durationMs: 1000,
    });
    const answer = await send(o.url, sim.lines.join('\n'), o.token, 30, () => undefined);
    o.onSecond?.(answer.accepted ?? 0, answer.rejected?.length ?? 0);
    await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - started))));
  }
}

/** Adds `reckon demo` to the program. */
export function registerDemo(
  program: Command,
  supervisedOf: (flag: boolean | string | undefined) => boolean | number,
): void {
  program
    .command('demo')
    .description('post live simulated traffic with faults to a collector (reckon start --demo runs it for you)')
    .option('--url <url>', 'the collector', 'http://127.0.0.1:8080')
    .option('--rate <events>', 'events a second', '200')
    .option('--seconds <n>', 'stop after this many seconds')
    .option('--token <token>', 'ingest token (default: env RECKON_INGEST_TOKEN)')
    .option('--supervised [pid]', 'exit when the supervising process (by default the parent) is gone')
    .action(
      async (flags: { url: string; rate: string; seconds?: string; token?: string; supervised?: boolean | string }) => {
        const rate = Number(flags.rate);
        if (!Number.isFinite(rate) || rate < 1 || rate > 100_000)
          throw new UsageError(`--rate ${flags.rate}: expected 1 to 100000 events a second`);
        const seconds = flags.seconds === undefined ? undefined : Number(flags.seconds);
        if (seconds !== undefined && !(Number.isSafeInteger(seconds) && seconds > 0))
          throw new UsageError(`--seconds ${flags.seconds}: expected a positive integer`);
        const supervised = supervisedOf(flags.supervised);
        if (supervised !== false) exitWhenOrphaned(supervised === true ? undefined : supervised);
        const token = flags.token ?? process.env.RECKON_INGEST_TOKEN;
        await runDemo({
          url: flags.url.replace(/\/+$/, ''),
          rate,
          ...(token ? { token } : {}),
          ...(seconds !== undefined ? { seconds } : {}),
        });
      },
    );
}
