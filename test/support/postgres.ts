/**
 * Starts a throwaway PostgreSQL cluster for tests: initdb in a temp dir, listening on loopback
 * only on a free port, trust authentication, fsync off. Needs PostgreSQL's server binaries
 * (Debian: postgresql-15). initdb refuses to run as root, so as root the cluster runs as the
 * `postgres` system user.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { freePort } from './net.ts';
import { tmpdir, userInfo } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A running temporary cluster. */
export interface TemporaryPostgres {
  /** Connection string of the `postgres` database as the `postgres` superuser. */
  connectionString: string;
  /** Stops the cluster at once and removes its files. */
  stop(): Promise<void>;
}

const INSTALL_HINT =
  'the PostgreSQL tests need the PostgreSQL server binaries (initdb, pg_ctl): apt-get install -y postgresql-15';

/** The directory holding initdb and pg_ctl: PATH first, then Debian's /usr/lib/postgresql/<version>/bin, newest first. */
function binDir(): string {
  const has = (dir: string) => existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'));
  for (const dir of (process.env.PATH ?? '').split(delimiter)) if (dir !== '' && has(dir)) return dir;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => /^[0-9.]+$/.test(v))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  for (const v of versions) if (has(join(root, v, 'bin'))) return join(root, v, 'bin');
  throw new Error(INSTALL_HINT);
}

interface Runner {
  /** Runs a binary as the cluster's owner. */
  exec(file: string, args: string[]): Promise<void>;
  /** The same, synchronously (for the exit handler). */
  execSync(file: string, args: string[]): void;
  uid: number;
  gid: number;
}

function runner(cwd: string): Runner {
  if (process.getuid?.() !== 0) {
    const { uid, gid } = userInfo();
    return {
      exec: async (file, args) => void (await run(file, args, { cwd })),
      execSync: (file, args) => void execFileSync(file, args, { cwd, stdio: 'ignore' }),
      uid,
      gid,
    };
  }
  let ids: string[];
  try {
    ids = execFileSync('id', ['-u', 'postgres']).toString().trim().split(/\s+/);
    ids.push(execFileSync('id', ['-g', 'postgres']).toString().trim());
  } catch {
    throw new Error(`running as root, the PostgreSQL tests need the "postgres" system user: ${INSTALL_HINT}`);
  }
  const [uid, gid] = [Number(ids[0]), Number(ids[1])];
  // runuser (util-linux) needs no password and no login shell; su is the fallback.
  const runuser = ['/usr/sbin/runuser', '/sbin/runuser', '/usr/bin/runuser'].find((p) => existsSync(p));
  const wrap = (file: string, args: string[]): [string, string[]] =>
    runuser !== undefined
      ? [runuser, ['-u', 'postgres', '--', file, ...args]]
      : [
          'su',
          ['postgres', '-s', '/bin/sh', '-c', [file, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ')],
        ];
  return {
    exec: async (file, args) => void (await run(...wrap(file, args), { cwd })),
    execSync: (file, args) => void execFileSync(...wrap(file, args), { cwd, stdio: 'ignore' }),
    uid,
    gid,
  };
}

function describeFailure(err: unknown, logFile: string): Error {
  const e = err as { message?: string; stderr?: string };
  const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n') : '';
  return new Error(`could not start PostgreSQL: ${e.stderr?.trim() || e.message}\n${log}`);
}

/** Starts a temporary PostgreSQL cluster; stop it with `stop()` (also stopped when the process exits). */
export async function startPostgres(): Promise<TemporaryPostgres> {
  const bin = binDir();
  const dir = mkdtempSync(join(tmpdir(), 'reckon-pg-'));
  const data = join(dir, 'data');
  const logFile = join(dir, 'postgres.log');
  const as = runner(dir);
  chownSync(dir, as.uid, as.gid);
  try {
    await as.exec(join(bin, 'initdb'), [
      '-D',
      data,
      '-U',
      'postgres',
      '--auth=trust',
      '--encoding=UTF8',
      '--locale=C',
      '--no-sync',
    ]);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw describeFailure(err, logFile);
  }

  const pgCtl = join(bin, 'pg_ctl');
  let port = 0;
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    // Settings as postgres options: loopback only, the socket in our dir (not /var/run), speed over safety.
    const settings = [
      `-p ${port}`,
      '-c listen_addresses=127.0.0.1',
      `-c unix_socket_directories=${dir}`,
      '-c fsync=off',
      '-c synchronous_commit=off',
      '-c full_page_writes=off',
    ].join(' ');
    try {
      await as.exec(pgCtl, ['-D', data, '-l', logFile, '-o', settings, '-w', '-t', '60', 'start']);
      break;
    } catch (err) {
      if (attempt >= 3) {
        const failure = describeFailure(err, logFile);
        rmSync(dir, { recursive: true, force: true });
        throw failure;
      }
    }
  }

  let stopped = false;
  const stopSync = () => {
    if (stopped) return;
    stopped = true;
    try {
      as.execSync(pgCtl, ['-D', data, '-m', 'immediate', '-w', 'stop']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  process.once('exit', stopSync);
  return {
    connectionString: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    async stop() {
      if (stopped) return;
      stopped = true;
      process.removeListener('exit', stopSync);
      try {
        await as.exec(pgCtl, ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
