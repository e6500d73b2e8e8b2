import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, checkBindAddress, loadConfig, type ReckonConfig } from '../../src/config/index.ts';

function dirWith(config?: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'reckon-config-'));
  if (config !== undefined)
    writeFileSync(join(dir, 'reckon.config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  return dir;
}

function problemsOf(fn: () => unknown): string[] {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  if (!(error instanceof ConfigError)) return assert.fail(`expected a ConfigError, got ${String(error)}`);
  assert.equal(error.code, 'RECKON_CONFIG_INVALID');
  return error.problems;
}

describe('configuration', () => {
  it('uses the defaults when nothing is set', () => {
    const { config, sources } = loadConfig({ env: {}, cwd: dirWith() });
    assert.equal(config.port, 8080);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.clickWindowMs, 3_600_000);
    assert.deepEqual(config.fraudIpBlocklist, []);
    assert.equal(config.ingestToken, undefined);
    assert.equal(sources.port, 'default');
  });

  it('layers defaults < file < environment < flags', () => {
    const cwd = dirWith({
      port: 9000,
      dataDir: '/srv/reckon',
      clickWindowMs: '30m',
      logLevel: 'warn',
    });
    const env = { RECKON_PORT: '9100', RECKON_DATA_DIR: '/env/data' };
    const { config, sources } = loadConfig({ env, cwd, flags: { port: '9200' } });
    assert.equal(config.port, 9200);
    assert.equal(sources.port, 'flag');
    assert.equal(config.dataDir, '/env/data');
    assert.equal(sources.dataDir, 'environment');
    assert.equal(config.clickWindowMs, 30 * 60_000);
    assert.equal(sources.clickWindowMs, 'file');
    assert.equal(config.logLevel, 'warn');
    assert.equal(config.host, '127.0.0.1');
    assert.equal(sources.host, 'default');
  });

  it('parses typed values from text: durations, booleans, lists', () => {
    const env = {
      RECKON_ALLOWED_LATENESS: '90s',
      RECKON_DEMO: 'yes',
      RECKON_FRAUD_IP_BLOCKLIST: '198.51.100.0/24, 2001:db8::/32,192.0.2.1',
    };
    const { config } = loadConfig({ env, cwd: dirWith() });
    assert.equal(config.allowedLatenessMs, 90_000);
    assert.equal(config.demo, true);
    assert.deepEqual(config.fraudIpBlocklist, ['198.51.100.0/24', '2001:db8::/32', '192.0.2.1']);
  });

  it('names the setting, the bad value, its source and the expected form, for every problem at once', () => {
    const cwd = dirWith({ clickWindowMs: 'soon', fraudIpBlocklist: ['10.0.0.0/33'] });
    const problems = problemsOf(() => loadConfig({ env: { RECKON_PORT: 'eighty' }, cwd, flags: { logLevel: 'loud' } }));
    assert.equal(problems.length, 4);
    assert.match(
      problems.find((p) => p.startsWith('port:')) ?? '',
      /"eighty" from environment RECKON_PORT is invalid: expected an integer from 0 to 65535/,
    );
    assert.match(
      problems.find((p) => p.startsWith('clickWindowMs:')) ?? '',
      /"soon" from .*reckon\.config\.json "clickWindowMs" is invalid: expected a duration/,
    );
    assert.match(problems.find((p) => p.startsWith('fraudIpBlocklist:')) ?? '', /"10\.0\.0\.0\/33" is neither/);
    assert.match(
      problems.find((p) => p.startsWith('logLevel:')) ?? '',
      /"loud" from flag --log-level is invalid: expected one of debug, info, warn, error/,
    );
  });

  it('rejects unknown settings with a suggestion', () => {
    const problems = problemsOf(() => loadConfig({ env: { RECKON_PROT: '1' }, cwd: dirWith({ prot: 1 }) }));
    assert.match(problems[0] ?? '', /unknown setting "prot" \(did you mean "port"\?\)/);
    assert.match(problems[1] ?? '', /RECKON_PROT: unknown environment setting \(did you mean RECKON_PORT\?\)/);
  });

  it('reports an unreadable or missing config file', () => {
    assert.match(
      problemsOf(() => loadConfig({ env: {}, cwd: dirWith('{"port": 80,') }))[0] ?? '',
      /cannot read the config file as JSON/,
    );
    assert.match(problemsOf(() => loadConfig({ env: {}, cwd: dirWith('[1]') }))[0] ?? '', /expected a JSON object/);
    assert.match(
      problemsOf(() => loadConfig({ env: { RECKON_CONFIG: 'nope.json' }, cwd: dirWith() }))[0] ?? '',
      /config file not found \(named by RECKON_CONFIG\)/,
    );
  });

  it('refuses to bind beyond loopback without all three tokens', () => {
    const base = loadConfig({ env: {}, cwd: dirWith() }).config;
    const open: ReckonConfig = { ...base, host: '0.0.0.0' };
    assert.throws(
      () => checkBindAddress(open),
      /refusing to listen on 0\.0\.0\.0.*RECKON_INGEST_TOKEN, RECKON_READ_TOKEN, RECKON_ADMIN_TOKEN/,
    );
    assert.throws(
      () => checkBindAddress({ ...open, ingestToken: 'x'.repeat(16), readToken: 'y'.repeat(16) }),
      /Set RECKON_ADMIN_TOKEN \(/,
    );
    checkBindAddress({
      ...open,
      ingestToken: 'x'.repeat(16),
      readToken: 'y'.repeat(16),
      adminToken: 'z'.repeat(16),
    });
    checkBindAddress({ ...base, host: '127.0.0.2' });
    checkBindAddress({ ...base, host: '::1' });
    const weak = problemsOf(() => loadConfig({ env: { RECKON_READ_TOKEN: 'short' }, cwd: dirWith() }));
    assert.match(
      weak[0] ?? '',
      /readToken: \(hidden, 5 characters\) from environment RECKON_READ_TOKEN .* expected a token of at least 16 characters/,
    );
    assert.doesNotMatch(weak[0] ?? '', /short/);
  });
});
