/**
 * reckon's one typed configuration: defaults < `reckon.config.json` < `RECKON_*` environment
 * variables < command-line flags, validated at start with errors that name the setting, the bad
 * value, where it came from and the expected form.
 */
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { ReckonError } from '../events/index.ts';
import {
  boolean,
  duration,
  hostPortList,
  Invalid,
  integer,
  dataCenterList,
  ipList,
  oneOf,
  urlList,
  utcDate,
  fraction,
  type Parser,
  text,
  token,
} from './parsers.ts';

/** The effective configuration of a reckon process. */
export interface ReckonConfig {
  /** HTTP port of the server (0 picks a free port). */
  port: number;
  /** Address the HTTP server binds to. Without tokens only loopback addresses are allowed. */
  host: string;
  /** Directory of the log, the serving database and the lake. */
  dataDir: string;
  /** Run with synthetic traffic and faults. */
  demo: boolean;
  /** Bearer token for `POST /v1/events`. */
  ingestToken: string | undefined;
  /** Bearer token for reading statistics. */
  readToken: string | undefined;
  /** Bearer token for the scheduler and admin endpoints. */
  adminToken: string | undefined;
  /** Click window of the statistics contract, ms. */
  clickWindowMs: number;
  /** How long after an hour ends events for it are still expected, ms. */
  allowedLatenessMs: number;
  /** Billable clicks allowed per user, offer and UTC hour before the rest are fraud. */
  fraudMaxClicksPerUserOfferHour: number;
  /** Clicks from these addresses or CIDR ranges are fraud. */
  fraudIpBlocklist: string[];
  /** Least severe log level printed. */
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** Embedded log durability: `group` (appends resolve after a shared fdatasync) or `none` (after the write to the OS). */
  logFsync: 'group' | 'none';
  /** Wait this long before a group fsync to gather more appends, ms. */
  logLingerMs: number;
  /** Embedded log segment size, bytes. */
  logSegmentBytes: number;
  /** Kafka bootstrap brokers; when set, the log is Kafka instead of the embedded log. */
  kafkaBrokers: string[];
  /** PostgreSQL connection string; when set, relational state (schema registry, ...) lives there instead of SQLite. */
  postgresUrl: string | undefined;
  /** Kafka consumer groups: a member silent this long loses its partitions, ms. */
  kafkaSessionTimeoutMs: number;
  /** Kafka consumer groups: the leader waits this long before sending its assignment, ms. */
  kafkaLeaderSyncDelayMs: number;
  /**
   * Data centers whose events arrive on per-DC topics (`emissions.<dc>`, `clicks.<dc>`), which the
   * speed layer merges by event time. Empty: one DC, topics `emissions` and `clicks`.
   */
  dataCenters: string[];
  /** Partitions of the event topics (`emissions`, `clicks`) when reckon creates them. */
  topicPartitions: number;
  /** Largest `POST /v1/events` body, bytes (after gzip decompression too). */
  ingestMaxBodyBytes: number;
  /** Longest NDJSON line, bytes. */
  ingestMaxLineBytes: number;
  /** Most events (lines or array elements) in one request. */
  ingestMaxEvents: number;
  /** Request bodies being handled at once before new requests get 503 with Retry-After, bytes. */
  ingestMaxInFlightBytes: number;
  /** Threads that parse request bodies (0: parse on the HTTP thread). */
  ingestParseThreads: number;
  /** First logical date of scheduled runs (epoch ms); unset: the start of the UTC day the scheduler starts. */
  schedulerStartDate: number | undefined;
  /** How often the scheduler's sensors check their condition (a sealed hour, the day's hourly runs), ms. */
  schedulerPokeIntervalMs: number;
  /** Webhooks every alert is POSTed to (besides the log). */
  alertWebhooks: string[];
  /** Relative speed-vs-batch deviation of a column above which the discrepancy check alerts. */
  discrepancyThreshold: number;
  /** Days of lake partitions kept by the retention DAG (0: keep everything). */
  lakeRetentionDays: number;
}

/** Where a setting's value came from. */
export type ConfigSource = 'default' | 'file' | 'environment' | 'flag';

interface Setting<K extends keyof ReckonConfig> {
  key: K;
  env: string;
  flag?: string;
  doc: string;
  parse: Parser<Exclude<ReckonConfig[K], undefined>>;
  default: ReckonConfig[K];
}

const def = <K extends keyof ReckonConfig>(s: Setting<K>): Setting<K> => s;

/** Every setting, with its environment variable, flag, default and documentation. */
export const SETTINGS = [
  def({
    key: 'port',
    env: 'RECKON_PORT',
    flag: '--port',
    doc: 'HTTP port (0 = any free port)',
    parse: integer(0, 65535),
    default: 8080,
  }),
  def({
    key: 'host',
    env: 'RECKON_HOST',
    flag: '--host',
    doc: 'address to bind; non-loopback needs tokens',
    parse: text('an IP address or host name'),
    default: '127.0.0.1',
  }),
  def({
    key: 'dataDir',
    env: 'RECKON_DATA_DIR',
    flag: '--data',
    doc: 'directory of log, database and lake',
    parse: text('a directory path'),
    default: './data',
  }),
  def({
    key: 'demo',
    env: 'RECKON_DEMO',
    flag: '--demo',
    doc: 'run with simulated traffic and faults',
    parse: boolean,
    default: false,
  }),
  def({
    key: 'ingestToken',
    env: 'RECKON_INGEST_TOKEN',
    doc: 'Bearer token for ingest',
    parse: token,
    default: undefined,
  }),
  def({
    key: 'readToken',
    env: 'RECKON_READ_TOKEN',
    doc: 'Bearer token for reads',
    parse: token,
    default: undefined,
  }),
  def({
    key: 'adminToken',
    env: 'RECKON_ADMIN_TOKEN',
    doc: 'Bearer token for admin calls',
    parse: token,
    default: undefined,
  }),
  def({
    key: 'clickWindowMs',
    env: 'RECKON_CLICK_WINDOW',
    doc: 'click window (inclusive)',
    parse: duration(1000, 7 * 86_400_000),
    default: 3_600_000,
  }),
  def({
    key: 'allowedLatenessMs',
    env: 'RECKON_ALLOWED_LATENESS',
    doc: 'lateness allowed before an hour is sealed',
    parse: duration(0, 7 * 86_400_000),
    default: 3_600_000,
  }),
  def({
    key: 'fraudMaxClicksPerUserOfferHour',
    env: 'RECKON_FRAUD_MAX_CLICKS_PER_USER_OFFER_HOUR',
    doc: 'billable clicks per user, offer and hour',
    parse: integer(1, 1_000_000),
    default: 10,
  }),
  def({
    key: 'fraudIpBlocklist',
    env: 'RECKON_FRAUD_IP_BLOCKLIST',
    doc: 'fraudulent IPs or CIDRs, comma-separated',
    parse: ipList,
    default: [],
  }),
  def({
    key: 'logFsync',
    env: 'RECKON_LOG_FSYNC',
    doc: 'group (durable, shared fdatasync) or none',
    parse: oneOf(['group', 'none'] as const),
    default: 'group',
  }),
  def({
    key: 'logLingerMs',
    env: 'RECKON_LOG_LINGER',
    doc: 'wait before a group fsync',
    parse: duration(0, 1000),
    default: 0,
  }),
  def({
    key: 'logSegmentBytes',
    env: 'RECKON_LOG_SEGMENT_BYTES',
    doc: 'segment size of the embedded log',
    parse: integer(65_536, 2 ** 31),
    default: 64 * 1024 * 1024,
  }),
  def({
    key: 'kafkaBrokers',
    env: 'RECKON_KAFKA_BROKERS',
    doc: 'host:port,... of Kafka (distributed mode)',
    parse: hostPortList,
    default: [],
  }),
  def({
    key: 'kafkaSessionTimeoutMs',
    env: 'RECKON_KAFKA_SESSION_TIMEOUT',
    doc: 'how soon a silent consumer group member loses its partitions (Kafka)',
    parse: duration(1000, 300_000),
    default: 6000,
  }),
  def({
    key: 'kafkaLeaderSyncDelayMs',
    env: 'RECKON_KAFKA_LEADER_SYNC_DELAY',
    doc: "group leader's wait before its assignment (0; 300ms for librdkafka's mock cluster)",
    parse: duration(0, 10_000),
    default: 0,
  }),
  def({
    key: 'postgresUrl',
    env: 'RECKON_POSTGRES_URL',
    doc: 'postgres://... (distributed mode state)',
    parse: text('a PostgreSQL connection string, e.g. postgres://user@host:5432/reckon'),
    default: undefined,
  }),
  def({
    key: 'dataCenters',
    env: 'RECKON_DATA_CENTERS',
    doc: 'per-DC topics to merge in the speed layer, comma-separated',
    parse: dataCenterList,
    default: [],
  }),
  def({
    key: 'topicPartitions',
    env: 'RECKON_TOPIC_PARTITIONS',
    doc: 'partitions of the event topics',
    parse: integer(1, 1024),
    default: 4,
  }),
  def({
    key: 'ingestMaxBodyBytes',
    env: 'RECKON_INGEST_MAX_BODY_BYTES',
    doc: 'largest ingest body (also unzipped)',
    parse: integer(1024, 2 ** 30),
    default: 16 * 1024 * 1024,
  }),
  def({
    key: 'ingestMaxLineBytes',
    env: 'RECKON_INGEST_MAX_LINE_BYTES',
    doc: 'longest NDJSON line',
    parse: integer(256, 16 * 1024 * 1024),
    default: 64 * 1024,
  }),
  def({
    key: 'ingestMaxEvents',
    env: 'RECKON_INGEST_MAX_EVENTS',
    doc: 'most events per request',
    parse: integer(1, 10_000_000),
    default: 100_000,
  }),
  def({
    key: 'ingestMaxInFlightBytes',
    env: 'RECKON_INGEST_MAX_IN_FLIGHT_BYTES',
    doc: 'bodies in progress before 503',
    parse: integer(1024 * 1024, 2 ** 34),
    default: 256 * 1024 * 1024,
  }),
  def({
    key: 'ingestParseThreads',
    env: 'RECKON_INGEST_PARSE_THREADS',
    doc: 'threads parsing ingest bodies',
    parse: integer(0, 64),
    // A thread per core: the HTTP thread only receives bodies and writes the batches the parse
    // threads lay out, so it needs no core of its own (2 threads measured 370-420k events/s on
    // 2 cores against 290-320k for 1).
    default: Math.max(1, availableParallelism()),
  }),
  def({
    key: 'schedulerStartDate',
    env: 'RECKON_SCHEDULER_START_DATE',
    doc: 'first logical date of scheduled runs (default: the day the scheduler starts)',
    parse: utcDate,
    default: undefined,
  }),
  def({
    key: 'schedulerPokeIntervalMs',
    env: 'RECKON_SCHEDULER_POKE_INTERVAL',
    doc: 'how often sensors check their condition',
    parse: duration(100, 3_600_000),
    default: 30_000,
  }),
  def({
    key: 'alertWebhooks',
    env: 'RECKON_ALERT_WEBHOOKS',
    doc: 'URLs every alert is POSTed to, comma-separated',
    parse: urlList,
    default: [],
  }),
  def({
    key: 'discrepancyThreshold',
    env: 'RECKON_DISCREPANCY_THRESHOLD',
    doc: 'relative speed-vs-batch deviation that raises an alert',
    parse: fraction(0, 1),
    default: 0.02,
  }),
  def({
    key: 'lakeRetentionDays',
    env: 'RECKON_LAKE_RETENTION_DAYS',
    doc: 'days of lake partitions kept (0: all)',
    parse: integer(0, 100_000),
    default: 0,
  }),
  def({
    key: 'logLevel',
    env: 'RECKON_LOG_LEVEL',
    flag: '--log-level',
    doc: 'debug, info, warn or error',
    parse: oneOf(['debug', 'info', 'warn', 'error'] as const),
    default: 'info',
  }),
] as const;

/** Settings never echoed: tokens, and connection strings that may hold a password. */
export function isSecret(key: keyof ReckonConfig): boolean {
  return key.endsWith('Token') || key === 'postgresUrl';
}

/** The config file read when present. */
export const CONFIG_FILE_NAME = 'reckon.config.json';

/** Environment variables that are not settings but are read by reckon. */
const OTHER_ENV = new Set(['RECKON_CONFIG']);

/** Raised when the configuration is invalid; `problems` lists every bad setting, one line each. */
export class ConfigError extends ReckonError {
  constructor(readonly problems: string[]) {
    super('RECKON_CONFIG_INVALID', `invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/** Inputs of {@link loadConfig}. */
export interface ConfigInputs {
  /** Flag values by setting key, as given on the command line (text or booleans). */
  flags?: Partial<Record<keyof ReckonConfig, unknown>>;
  /** The environment; default `process.env`. */
  env?: Record<string, string | undefined>;
  /** Where to look for `reckon.config.json`; default the current directory. */
  cwd?: string;
  /** An explicit config file (must exist); default `$RECKON_CONFIG`, else `reckon.config.json` if present. */
  file?: string;
}

/** The loaded configuration with the source of each value. */
export interface LoadedConfig {
  config: ReckonConfig;
  sources: Record<keyof ReckonConfig, ConfigSource>;
  file: string | undefined;
}

function closest(word: string, candidates: readonly string[]): string | undefined {
  const distance = (a: string, b: string): number => {
    const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
    for (let j = 1; j <= b.length; j++) (d[0] as number[])[j] = j;
    for (let i = 1; i <= a.length; i++) {
      for (let j = 1; j <= b.length; j++) {
        const row = d[i] as number[];
        const prev = d[i - 1] as number[];
        row[j] = Math.min(
          (prev[j] as number) + 1,
          (row[j - 1] as number) + 1,
          (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
        );
      }
    }
    return (d[a.length] as number[])[b.length] as number;
  };
  let best: string | undefined;
  let bestDistance = 3;
  for (const c of candidates) {
    const dist = distance(word.toLowerCase(), c.toLowerCase());
    if (dist < bestDistance) {
      best = c;
      bestDistance = dist;
    }
  }
  return best;
}

function readFile(path: string, problems: string[]): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    problems.push(`${path}: cannot read the config file as JSON (${(e as Error).message})`);
    return {};
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    problems.push(`${path}: expected a JSON object of settings, e.g. {"port": 8080}`);
    return {};
  }
  return parsed as Record<string, unknown>;
}

function show(raw: unknown): string {
  const s = JSON.stringify(raw) ?? String(raw);
  return s.length > 60 ? `${s.slice(0, 60)}...` : s;
}

/** Loads and validates the configuration; throws {@link ConfigError} listing every problem. */
export function loadConfig(inputs: ConfigInputs = {}): LoadedConfig {
  const env = inputs.env ?? process.env;
  const cwd = inputs.cwd ?? process.cwd();
  const problems: string[] = [];
  const keys = SETTINGS.map((s) => s.key as string);
  const envNames = SETTINGS.map((s) => s.env as string);

  let file: string | undefined;
  const explicit = inputs.file ?? env.RECKON_CONFIG;
  if (explicit !== undefined) {
    file = resolve(cwd, explicit);
    if (!existsSync(file))
      problems.push(
        `${file}: config file not found (named by ${inputs.file !== undefined ? '--config' : 'RECKON_CONFIG'})`,
      );
  } else if (existsSync(resolve(cwd, CONFIG_FILE_NAME))) {
    file = resolve(cwd, CONFIG_FILE_NAME);
  }
  const fromFile = file !== undefined && existsSync(file) ? readFile(file, problems) : {};
  for (const key of Object.keys(fromFile)) {
    if (!keys.includes(key)) {
      const hint = closest(key, keys);
      problems.push(
        `${file}: unknown setting "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}; known: ${keys.join(', ')}`,
      );
    }
  }
  for (const name of Object.keys(env)) {
    if (name.startsWith('RECKON_') && !envNames.includes(name) && !OTHER_ENV.has(name)) {
      const hint = closest(name, envNames);
      problems.push(`${name}: unknown environment setting${hint ? ` (did you mean ${hint}?)` : ''}`);
    }
  }

  const config = {} as Record<string, unknown>;
  const sources = {} as Record<string, ConfigSource>;
  for (const s of SETTINGS) {
    const flag = inputs.flags?.[s.key];
    const envValue = env[s.env];
    let raw: unknown;
    let source: ConfigSource = 'default';
    let where = '';
    if (flag !== undefined) {
      raw = flag;
      source = 'flag';
      where = `flag ${s.flag ?? s.key}`;
    } else if (envValue !== undefined) {
      raw = envValue;
      source = 'environment';
      where = `environment ${s.env}`;
    } else if (s.key in fromFile) {
      raw = fromFile[s.key];
      source = 'file';
      where = `${file} "${s.key}"`;
    }
    if (source === 'default') {
      config[s.key] = s.default;
    } else {
      const v = s.parse(raw);
      // A secret is never echoed, not even a wrong one.
      const shown = isSecret(s.key) ? `(hidden, ${String(raw).length} characters)` : show(raw);
      if (v instanceof Invalid) problems.push(`${s.key}: ${shown} from ${where} is invalid: expected ${v.expected}`);
      else config[s.key] = v;
    }
    sources[s.key] = source;
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    config: config as unknown as ReckonConfig,
    sources: sources as LoadedConfig['sources'],
    file,
  };
}
