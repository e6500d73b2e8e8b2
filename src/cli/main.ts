#!/usr/bin/env node
/** The `reckon` command line. */
import { Command, CommanderError } from 'commander';
import { isSecret, type LoadedConfig, loadConfig, type ReckonConfig, SETTINGS } from '../config/index.ts';
import { ReckonError } from '../events/index.ts';
import { registerIngest } from './ingest.ts';
import { registerSimulate } from './simulate.ts';
import { runArchiver } from './archiver.ts';
import { UsageError } from './errors.ts';
import { parseInterval, runBatch } from './batch.ts';
import { parseDay, runRecalc } from './recalc.ts';
import { registerDemo } from './demo.ts';
import { registerDags } from './scheduler.ts';
import { exitWhenOrphaned } from './process.ts';
import { runSpeed } from './speed.ts';
import { start } from './start.ts';
import { VERSION } from './version.ts';

interface ServerFlags {
  port?: string;
  host?: string;
  data?: string;
  demo?: boolean;
  config?: string;
  logLevel?: string;
}

function configOf(flags: ServerFlags): LoadedConfig {
  const f: Partial<Record<keyof ReckonConfig, unknown>> = {};
  if (flags.port !== undefined) f.port = flags.port;
  if (flags.host !== undefined) f.host = flags.host;
  if (flags.data !== undefined) f.dataDir = flags.data;
  if (flags.demo !== undefined) f.demo = flags.demo;
  if (flags.logLevel !== undefined) f.logLevel = flags.logLevel;
  return loadConfig({ flags: f, file: flags.config });
}

function serverOptions(cmd: Command): Command {
  return cmd
    .option('--port <port>', 'HTTP port (env RECKON_PORT, default 8080)')
    .option('--host <address>', 'address to bind (env RECKON_HOST, default 127.0.0.1)')
    .option('--data <dir>', 'data directory (env RECKON_DATA_DIR, default ./data)')
    .option('--config <file>', 'config file (env RECKON_CONFIG, default ./reckon.config.json if present)')
    .option('--log-level <level>', 'debug, info, warn or error (env RECKON_LOG_LEVEL)');
}

/** `--supervised [pid]`: false, true (the parent supervises), or the supervisor's pid. */
function supervisedOf(flag: boolean | string | undefined): boolean | number {
  if (flag === undefined || flag === false) return false;
  if (flag === true) return true;
  if (!/^[0-9]+$/.test(flag)) throw new UsageError(`--supervised ${JSON.stringify(flag)}: expected a process id`);
  return Number(flag);
}

/** Builds the command tree; exported for tests. */
export function buildProgram(): Command {
  const program = new Command('reckon')
    .description('resilient Lambda-architecture pipeline for pay-per-click event statistics')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)');

  serverOptions(program.command('start').description('run the embedded pipeline (HTTP server on --port)'))
    .option('--demo', 'generate simulated traffic with faults')
    .action(async (flags: ServerFlags) => {
      await start(configOf(flags).config);
    });

  serverOptions(
    program
      .command('collector')
      .description(
        'run only the HTTP server (collector, registry, query API): the speed layer and archiver run elsewhere on the same log',
      )
      .option('--supervised [pid]', 'exit when the supervising process (by default the parent) is gone'),
  ).action(async (flags: ServerFlags & { supervised?: boolean | string }) => {
    const supervised = supervisedOf(flags.supervised);
    if (supervised !== false) exitWhenOrphaned(supervised === true ? undefined : supervised);
    await start(configOf(flags).config, process.stdout, { workers: false });
  });

  serverOptions(
    program
      .command('speed')
      .description('run the speed layer in this process (reckon start runs it for you, supervised)')
      .option('--supervised [pid]', 'exit when the supervising process (by default the parent) is gone'),
  ).action(async (flags: ServerFlags & { supervised?: boolean | string }) => {
    await runSpeed(configOf(flags).config, supervisedOf(flags.supervised));
  });

  serverOptions(
    program.command('config').description('print the effective configuration and where each value came from'),
  ).action((flags: ServerFlags) => {
    const { config, sources, file } = configOf(flags);
    process.stdout.write(`config file: ${file ?? '(none)'}\n`);
    for (const s of SETTINGS) {
      const value = config[s.key];
      const shown = value === undefined ? '(not set)' : isSecret(s.key) ? '(set)' : JSON.stringify(value);
      process.stdout.write(`${s.key.padEnd(32)} ${String(shown).padEnd(24)} ${sources[s.key].padEnd(12)} ${s.env}\n`);
    }
  });

  serverOptions(
    program
      .command('archiver')
      .description('run the archiver (log to Parquet lake) in this process (reckon start runs it for you, supervised)')
      .option('--supervised [pid]', 'exit when the supervising process (by default the parent) is gone'),
  ).action(async (flags: ServerFlags & { supervised?: boolean | string }) => {
    await runArchiver(configOf(flags).config, supervisedOf(flags.supervised));
  });

  serverOptions(
    program
      .command('batch')
      .description('recalculate a day or an hour from the lake and replace its statistics (safe to rerun)')
      .requiredOption('--interval <day|hour>', 'a UTC day (2026-11-21) or hour (2026-11-21T05)')
      .option('--wait <seconds>', 'how long to wait for the archiver to land what the log holds', '30')
      .option('--force', 'recalculate even if the lake input is not complete: served, but marked final=false'),
  ).action(async (flags: ServerFlags & { interval: string; wait: string; force?: boolean }) => {
    const { from, to } = parseInterval(flags.interval);
    const wait = Number(flags.wait);
    if (!Number.isFinite(wait) || wait < 0)
      throw new UsageError(`--wait ${JSON.stringify(flags.wait)}: expected a number of seconds, 0 or more`);
    process.stdout.write(
      `${await runBatch(configOf(flags).config, from, to, { waitMs: wait * 1000, force: flags.force === true })}\n`,
    );
  });

  serverOptions(
    program
      .command('recalc')
      .description(
        'recalculate every day of a past window through the scheduler, with progress and a speed-vs-batch report per day (safe to rerun)',
      )
      .requiredOption('--from <day>', 'first UTC day (2026-11-01)')
      .requiredOption('--to <day>', 'last UTC day, inclusive (2026-11-07)')
      .option('--watch', 'only follow: the running scheduler (reckon start) recalculates the days')
      .option('--detach', 'only create or clear the runs; the running scheduler recalculates the days'),
  ).action(async (flags: ServerFlags & { from: string; to: string; watch?: boolean; detach?: boolean }) => {
    const from = parseDay('--from', flags.from);
    const to = parseDay('--to', flags.to) + 86_400_000;
    const mode = flags.detach ? 'detach' : flags.watch ? 'watch' : 'here';
    process.exitCode = await runRecalc(configOf(flags).config, from, to, mode);
  });

  registerSimulate(program);
  registerIngest(program);
  registerDags(program, (flags) => configOf(flags).config, serverOptions, supervisedOf);
  registerDemo(program, supervisedOf);
  return program;
}

/** Runs the CLI; user errors print one clear line and exit 2 at once. */
export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  program.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode;
      return;
    }
    if (e instanceof ReckonError) {
      process.stderr.write(`reckon: ${e.message}\n`);
      // Exit now: a part that failed while starting may already hold threads or open stores that
      // would keep the process alive, and its supervisor only restarts a process that has ended.
      process.exit(2);
    }
    throw e;
  }
}

await main(process.argv);
