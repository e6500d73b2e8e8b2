/**
 * `npm run chaos -- --seed N [--seeds K] [--mode embedded|distributed] [--emissions E] [--kills K]
 * [--no-disk-full]`: runs the
 * whole-system resilience run for seeds N .. N+K-1, one line of figures each; exits 1 at the
 * first broken promise, printing what broke (rerun that seed to reproduce it).
 */
import { parseArgs } from 'node:util';
import { figuresLine, runChaos } from './harness.ts';

const { values } = parseArgs({
  options: {
    seed: { type: 'string', default: '1' },
    seeds: { type: 'string', default: '1' },
    mode: { type: 'string', default: 'embedded' },
    emissions: { type: 'string', default: '20000' },
    kills: { type: 'string', default: '12' },
    'no-disk-full': { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false },
  },
});
const int = (name: string, text: string, min: number): number => {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min) {
    process.stderr.write(`chaos: --${name} ${text}: expected an integer >= ${min}\n`);
    process.exit(2);
  }
  return n;
};
if (values.mode !== 'embedded' && values.mode !== 'distributed') {
  process.stderr.write(`chaos: --mode ${values.mode}: expected embedded or distributed\n`);
  process.exit(2);
}
const mode = values.mode;
// Interrupted: exit handlers stop the PostgreSQL cluster and remove the run's files.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
const first = int('seed', values.seed, 0);
const count = int('seeds', values.seeds, 1);
for (let seed = first; seed < first + count; seed++) {
  try {
    const f = await runChaos({
      seed,
      mode,
      emissions: int('emissions', values.emissions, 100),
      kills: int('kills', values.kills, 0),
      diskFull: !values['no-disk-full'],
      ...(values.quiet ? {} : { log: (l: string) => process.stderr.write(`${l}\n`) }),
    });
    process.stdout.write(`${figuresLine(f)}\n`);
  } catch (e) {
    process.stdout.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  }
}
