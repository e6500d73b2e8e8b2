/**
 * Serving benchmarks against `reckon start` in its own process (loopback, temporary data
 * directory, no tokens), whose speed layer runs as the supervised child `reckon start` starts:
 *
 * - `query.p99`: p99 latency of `GET /v1/stats` from 16 concurrent connections, over a store
 *   holding a simulated day ingested through `POST /v1/events` and counted by the speed layer.
 *   The mix: minute over an hour, hour over a day, day over a week, each unfiltered, by offerId
 *   and by placement (first pages). Baseline: p99 of the same queries run one at a time
 *   in-process against the store (`openSqliteStatsStore` on the same SQLite file).
 * - `speed.freshness`: p99 time from sending an ingest request to its event being visible in
 *   `GET /v1/stats`, while `reckon start` takes a paced stream of 1000-event bodies. Each body
 *   carries one probe emission with an offerId of its own, polled for until it shows. Baseline:
 *   p99 of the ingest request's own round trip (until its 200: durable).
 *
 * Load is a closed loop per connection, bound in time: requests start until the round's end, and
 * every request started is waited for and counted, so the slowest answers at the end of a round
 * are not left out (autocannon drops what is in flight when its duration ends). Note that
 * autocannon ignores `duration` whenever `amount` is set: a round given both is bound by the
 * amount only, and 5000 requests of this mix (up to ~1.5 s of server time each, queued behind
 * 15 others, past autocannon's 10 s timeout and re-sent) take tens of minutes, not seconds.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLICKS_TOPIC, EMISSIONS_TOPIC } from '../src/collector/index.ts';
import { parseEventLine } from '../src/events/index.ts';
import { openEmbeddedLog } from '../src/log/index.ts';
import { DEFAULT_LIMIT } from '../src/serving/index.ts';
import { DEFAULT_SIMULATION, SeededRandom, simulate } from '../src/sim/index.ts';
import { openSqliteStatsStore, type StatsQuery, type StatsStore } from '../src/stats/index.ts';
import { type BenchResult, percentile, type ReckonProcess, startReckon } from './harness.ts';

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const EVENTS_PER_BODY = 1000;

/** Emissions of the simulated day behind `query.p99` (about 1.17 events per emission). */
const QUERY_EMISSIONS = Number(process.env.RECKON_BENCH_QUERY_EMISSIONS ?? 400_000);
const QUERY_CONNECTIONS = 16;
const QUERY_ROUNDS = 3;
const QUERY_ROUND_SECONDS = 8;
/** Distinct queries in the mix. */
const QUERY_MIX = 180;

/** Target ingest rate of `speed.freshness`, events/s, and for how long. */
const FRESH_RATE = Number(process.env.RECKON_BENCH_FRESHNESS_RATE ?? 50_000);
const FRESH_SECONDS = 20;
/** Probes sent in the first second are left out of the figures (the pipeline warms up). */
const FRESH_WARMUP_SECONDS = 1;
/**
 * One watcher polls this often for every probe at once (a placement of their own): polls per
 * probe would load the server with thousands of queries a second while the stream lags.
 */
const POLL_INTERVAL_MS = 50;
/** Ingest requests in flight beyond which the sender waits (and the rate it sustains drops). */
const MAX_INGESTS_IN_FLIGHT = 64;
/** A probe not visible this long after it was sent is counted at this figure. */
const FRESH_DEADLINE_MS = 60_000;

interface HttpAnswer {
  status: number;
  body: string;
}

type Http = (method: 'GET' | 'POST', url: string, body?: string) => Promise<HttpAnswer>;

/** A keep-alive HTTP client (plain `node:http`: cheap per request, so the client does not compete much). */
function httpClient(): { http: Http; close(): void } {
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const http: Http = (method, url, body) =>
    new Promise((resolve, reject) => {
      const headers: Record<string, string | number> =
        body === undefined ? {} : { 'content-type': 'application/x-ndjson', 'content-length': Buffer.byteLength(body) };
      const req = request(url, { method, agent, headers, timeout: 120_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer within 120 s`)));
      req.on('error', reject);
      req.end(body);
    });
  return { http, close: () => agent.destroy() };
}

/**
 * Runs `loops` concurrent loops to their end; the first failure stops the others (`stopped()`
 * turns true) and is thrown once all have ended, so that none fails unobserved.
 */
async function concurrently(loops: number, loop: (i: number, stopped: () => boolean) => Promise<void>): Promise<void> {
  let failed = false;
  const stopped = () => failed;
  const results = await Promise.allSettled(
    Array.from({ length: loops }, (_, i) =>
      loop(i, stopped).catch((e: unknown) => {
        failed = true;
        throw e;
      }),
    ),
  );
  const failure = results.find((r) => r.status === 'rejected');
  if (failure !== undefined) throw failure.reason;
}

/** Sends `lines` in 1000-line NDJSON bodies, 8 at a time, retrying 503s. */
async function ingest(http: Http, url: string, lines: readonly string[]): Promise<void> {
  let next = 0;
  await concurrently(8, async (_, stopped) => {
    for (let at = next; at < lines.length && !stopped(); at = next) {
      next += EVENTS_PER_BODY;
      const body = lines.slice(at, at + EVENTS_PER_BODY).join('\n') + '\n';
      for (let attempt = 1; ; attempt++) {
        const res = await http('POST', `${url}/v1/events`, body);
        if (res.status === 200) break;
        if (res.status !== 503 || attempt >= 60)
          throw new Error(`POST /v1/events answered ${res.status}: ${res.body.slice(0, 300)}`);
        await sleep(1000); // the collector's Retry-After for 503
      }
    }
  });
}

/** Waits until the speed layer has recorded every record of the event topics as processed. */
async function waitForSpeedLayer(dataDir: string, store: StatsStore, timeoutMs: number): Promise<void> {
  const log = await openEmbeddedLog({ dir: join(dataDir, 'log'), role: 'reader' });
  try {
    const ends = new Map<string, number[]>();
    for (const topic of [EMISSIONS_TOPIC, CLICKS_TOPIC]) {
      const partitions = await log.partitionCount(topic);
      ends.set(topic, await Promise.all(Array.from({ length: partitions }, (_, p) => log.latestOffset(topic, p))));
    }
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      let behind = 0;
      for (const [topic, topicEnds] of ends) {
        const recorded = await store.speedOffsets('speed', topic);
        topicEnds.forEach((end, p) => (behind += end - (recorded.get(p) ?? 0)));
      }
      if (behind === 0) return;
      if (performance.now() > deadline)
        throw new Error(`the speed layer is still ${behind} records behind after ${timeoutMs} ms`);
      await sleep(100);
    }
  } finally {
    await log.close();
  }
}

interface MixQuery {
  query: StatsQuery;
  /** Path and query string of the same query over HTTP. */
  path: string;
}

/**
 * The query mix: each of minute over an hour (a random hour of the day), hour over the day and
 * day over the week around it, unfiltered, by offerId and by placement (drawn as often as the
 * traffic lists them), in a shuffled order.
 */
function queryMix(lines: readonly string[], day: number): MixQuery[] {
  const rng = new SeededRandom(33);
  const offers: string[] = [];
  const placements: string[] = [];
  while (placements.length < 2000) {
    const r = parseEventLine(rng.pick(lines));
    if (!r.ok || r.event.type !== 'emission') continue;
    placements.push(r.event.placement);
    for (const o of r.event.offers) offers.push(o.offerId);
  }
  const shapes = [
    { granularity: 'minute', window: (): [number, number] => [day + rng.int(24) * HOUR, HOUR] },
    { granularity: 'hour', window: (): [number, number] => [day, DAY] },
    { granularity: 'day', window: (): [number, number] => [day - 3 * DAY, 7 * DAY] },
  ] as const;
  const mix: MixQuery[] = [];
  for (let i = 0; i < QUERY_MIX; i++) {
    const shape = shapes[i % shapes.length] as (typeof shapes)[number];
    const [from, length] = shape.window();
    const query: StatsQuery = { from, to: from + length, granularity: shape.granularity, limit: DEFAULT_LIMIT };
    const filter = Math.floor(i / shapes.length) % 3;
    if (filter === 1) query.offerId = rng.pick(offers);
    if (filter === 2) query.placement = rng.pick(placements);
    const params = new URLSearchParams({
      from: new Date(query.from).toISOString(),
      to: new Date(query.to).toISOString(),
      granularity: query.granularity,
      ...(query.offerId !== undefined ? { offerId: query.offerId } : {}),
      ...(query.placement !== undefined ? { placement: query.placement } : {}),
    });
    mix.push({ query, path: `/v1/stats?${params}` });
  }
  for (let i = mix.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [mix[i], mix[j]] = [mix[j] as MixQuery, mix[i] as MixQuery];
  }
  return mix;
}

/** One round of HTTP load: `connections` closed loops over the mix (each from its own place) for `seconds`. */
async function httpRound(http: Http, url: string, mix: readonly MixQuery[], round: number, seconds: number) {
  const latencies: number[] = [];
  const end = performance.now() + seconds * 1000;
  await concurrently(QUERY_CONNECTIONS, async (c, stopped) => {
    const first = round * 7 + Math.floor((c * mix.length) / QUERY_CONNECTIONS);
    for (let k = first; performance.now() < end && !stopped(); k++) {
      const { path } = mix[k % mix.length] as MixQuery;
      const started = performance.now();
      const res = await http('GET', `${url}${path}`);
      if (res.status !== 200) throw new Error(`GET ${path} answered ${res.status}: ${res.body.slice(0, 300)}`);
      latencies.push(performance.now() - started);
    }
  });
  return latencies;
}

/** One round of the baseline: the mix run one query at a time against the store, in-process, for `seconds`. */
async function storeRound(store: StatsStore, mix: readonly MixQuery[], round: number, seconds: number) {
  const latencies: number[] = [];
  const end = performance.now() + seconds * 1000;
  for (let k = round * 61; performance.now() < end; k++) {
    const started = performance.now();
    await store.query((mix[k % mix.length] as MixQuery).query);
    latencies.push(performance.now() - started);
  }
  return latencies;
}

const ms = (x: number) => Math.round(x * 10) / 10;

export async function queryP99(): Promise<BenchResult> {
  const options = { ...DEFAULT_SIMULATION, seed: 21, emissions: QUERY_EMISSIONS };
  let { lines } = simulate(options);
  const events = lines.length;
  const mix = queryMix(lines, options.start);
  const dataDir = mkdtempSync(join(tmpdir(), 'reckon-bench-query-'));
  const { http, close } = httpClient();
  let reckon: ReckonProcess | undefined;
  let store: StatsStore | undefined;
  const httpLatencies: number[] = [];
  const storeLatencies: number[] = [];
  try {
    reckon = await startReckon(dataDir);
    const ingestStarted = performance.now();
    await ingest(http, reckon.url, lines);
    lines = []; // not kept through the rounds: less for this process's GC to do while it measures
    store = await openSqliteStatsStore(join(dataDir, 'reckon.sqlite'));
    await waitForSpeedLayer(dataDir, store, 600_000);
    process.stderr.write(
      `query.p99: ${events} lines ingested and counted by the speed layer in ${Math.round(performance.now() - ingestStarted)} ms\n`,
    );
    await httpRound(http, reckon.url, mix, 0, 1); // warm-up
    await storeRound(store, mix, 0, 1);
    for (let r = 0; r < QUERY_ROUNDS; r++) {
      const viaHttp = await httpRound(http, reckon.url, mix, r, QUERY_ROUND_SECONDS);
      const inProcess = await storeRound(store, mix, r, QUERY_ROUND_SECONDS);
      httpLatencies.push(...viaHttp);
      storeLatencies.push(...inProcess);
      process.stderr.write(
        `query.p99 round ${r + 1}: HTTP p50 ${ms(percentile(viaHttp, 50))} p99 ${ms(percentile(viaHttp, 99))} ms (${viaHttp.length} queries); ` +
          `in-process p50 ${ms(percentile(inProcess, 50))} p99 ${ms(percentile(inProcess, 99))} ms (${inProcess.length} queries)\n`,
      );
    }
  } finally {
    close();
    await store?.close();
    await reckon?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
  const value = percentile(httpLatencies, 99);
  const baseline = percentile(storeLatencies, 99);
  return {
    name: `query.p99 (GET /v1/stats from ${QUERY_CONNECTIONS} connections over a simulated day of ${events} events; minute/hour, hour/day, day/week, unfiltered, by offerId, by placement; baseline: the same queries in-process, one at a time)`,
    unit: 'ms',
    value: ms(value),
    baseline: ms(baseline),
    ratio: Number((value / baseline).toFixed(3)),
  };
}

/** The placement of the probes: the watcher's one query finds them all. */
const PROBE_PLACEMENT = (tag: string): string => `probe-${tag}`;

interface Probe {
  sent: number;
  acked: number;
  /** When a poll first showed the probe; undefined: not within the deadline. */
  visible: number | undefined;
}

/**
 * `speed.freshness`; with `batchRows`, `speed.freshness.batch`: the same while a recalculation
 * writes that many batch minute rows of a past day into the store and switches them in.
 */
export async function freshness(batchRows = 0): Promise<BenchResult> {
  const requests = Math.round((FRESH_RATE * FRESH_SECONDS) / EVENTS_PER_BODY);
  const traffic = EVENTS_PER_BODY - 1;
  const bodies: string[] = [];
  {
    // Event time runs with the wall clock, at about the rate the events are sent.
    const { lines } = simulate({
      ...DEFAULT_SIMULATION,
      seed: 41,
      emissions: Math.ceil((requests * traffic) / 1.1),
      start: Date.now(),
      durationMs: FRESH_SECONDS * 1000,
    });
    if (lines.length < requests * traffic) throw new Error(`the simulation gave ${lines.length} lines, too few`);
    for (let i = 0; i < requests; i++) bodies.push(lines.slice(i * traffic, (i + 1) * traffic).join('\n') + '\n');
  }
  const tag = `${process.pid.toString(36)}${Date.now().toString(36)}`;
  const probeLine = (i: number | 'warm-up', ts: number): string =>
    JSON.stringify({
      type: 'emission',
      id: `probe-${tag}-${i}`,
      ts: new Date(ts).toISOString(),
      placement: PROBE_PLACEMENT(tag),
      offers: [{ offerId: `probe-${tag}-${i}`, clickCost: '0.01' }],
    });

  const dataDir = mkdtempSync(join(tmpdir(), 'reckon-bench-freshness-'));
  const { http, close } = httpClient();
  let reckon: ReckonProcess | undefined;
  let failure: Error | undefined;
  const probes: Probe[] = [];
  let started = 0;
  let sendSeconds = 0;
  let inFlight = 0;
  let lastAck = 0;
  /** Probes sent and not seen yet, by offer id; the watcher resolves them. */
  const waiting = new Map<string, { probe: Probe; seen: () => void }>();
  let firstMinute = Number.POSITIVE_INFINITY;
  let watching = true;
  let batchWriter: ChildProcess | undefined;
  let batchOut = '';
  try {
    reckon = await startReckon(dataDir);
    const url = reckon.url;
    const watcher = (async () => {
      while (watching && failure === undefined) {
        if (waiting.size > 0) {
          const now = Date.now();
          let cursor: string | undefined;
          do {
            const path =
              `/v1/stats?from=${firstMinute - MINUTE}&to=${now - (now % MINUTE) + 2 * MINUTE}&granularity=minute` +
              `&placement=${PROBE_PLACEMENT(tag)}&limit=10000${cursor !== undefined ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
            const answer = await http('GET', `${url}${path}`);
            if (answer.status !== 200)
              throw new Error(`GET ${path} answered ${answer.status}: ${answer.body.slice(0, 300)}`);
            const page = JSON.parse(answer.body) as {
              rows: { offerId: string; emissions: number }[];
              nextCursor?: string;
            };
            const at = performance.now();
            for (const row of page.rows) {
              const w = waiting.get(row.offerId);
              if (w === undefined || row.emissions < 1) continue;
              waiting.delete(row.offerId);
              w.probe.visible = at;
              w.seen();
            }
            cursor = page.nextCursor;
          } while (cursor !== undefined);
        }
        await sleep(POLL_INTERVAL_MS);
      }
    })().catch((e: unknown) => {
      failure ??= e as Error;
      for (const w of waiting.values()) w.seen();
    });
    /** Sends body `i` (none: just the probe) with probe `i`, and waits until the watcher sees it. */
    const probe = async (i: number | 'warm-up'): Promise<Probe> => {
      const ts = Date.now();
      firstMinute = Math.min(firstMinute, ts - (ts % MINUTE));
      const sent = performance.now();
      inFlight++;
      let res: HttpAnswer;
      try {
        const body = (typeof i === 'number' ? (bodies[i] as string) : '') + probeLine(i, ts) + '\n';
        if (typeof i === 'number') bodies[i] = '';
        res = await http('POST', `${url}/v1/events`, body);
      } finally {
        inFlight--;
      }
      const acked = performance.now();
      lastAck = acked;
      if (res.status !== 200) throw new Error(`POST /v1/events answered ${res.status}: ${res.body.slice(0, 300)}`);
      const p: Probe = { sent, acked, visible: undefined };
      const offerId = `probe-${tag}-${i}`;
      await new Promise<void>((seen) => {
        waiting.set(offerId, { probe: p, seen });
        setTimeout(() => {
          waiting.delete(offerId);
          seen();
        }, FRESH_DEADLINE_MS).unref();
      });
      return p;
    };
    // The stream starts once the pipeline is up: the speed layer's process starts after the server.
    if ((await probe('warm-up')).visible === undefined)
      throw new Error(`the pipeline did not count a first event within ${FRESH_DEADLINE_MS} ms`);
    if (batchRows > 0) {
      // A recalculation of yesterday writes into the same store all through the measurement.
      const yesterday = Date.now() - (Date.now() % 86_400_000) - 86_400_000;
      batchWriter = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          new URL('./batch-day-writer.ts', import.meta.url).pathname,
          join(dataDir, 'reckon.sqlite'),
          String(batchRows),
          String(yesterday),
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      batchWriter.stdout?.on('data', (c: Buffer) => (batchOut += c.toString()));
    }
    const runs: Promise<void>[] = [];
    const t0 = performance.now();
    started = t0;
    for (let i = 0; i < requests && failure === undefined; i++) {
      const wait = t0 + (i * 1000 * EVENTS_PER_BODY) / FRESH_RATE - performance.now();
      if (wait > 0) await sleep(wait);
      while (inFlight >= MAX_INGESTS_IN_FLIGHT && failure === undefined) await sleep(5);
      runs.push(
        probe(i).then(
          (p) => {
            probes[i] = p;
          },
          (e: unknown) => {
            failure ??= e as Error;
          },
        ),
      );
      sendSeconds = (performance.now() - t0) / 1000;
    }
    await Promise.all(runs);
    watching = false;
    await watcher;
    if (failure !== undefined) throw failure;
  } finally {
    watching = false;
    close();
    if (batchWriter !== undefined && batchWriter.exitCode === null) {
      const exited = new Promise((r) => batchWriter?.once('exit', r));
      batchWriter.kill('SIGKILL');
      await exited;
    }
    await reckon?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
  const counted = probes.slice(Math.round((FRESH_WARMUP_SECONDS * FRESH_RATE) / EVENTS_PER_BODY));
  const missing = counted.filter((p) => p.visible === undefined).length;
  const fresh = counted.map((p) => (p.visible ?? p.sent + FRESH_DEADLINE_MS) - p.sent);
  const roundTrips = counted.map((p) => p.acked - p.sent);
  const sustained = (requests * EVENTS_PER_BODY) / ((lastAck - started) / 1000);
  // When the last probe showed (if all did): how fast the speed layer counted the whole stream.
  const lastVisible = Math.max(...probes.map((p) => p.visible ?? Number.POSITIVE_INFINITY));
  const counting = (requests * EVENTS_PER_BODY) / ((lastVisible - started) / 1000);
  process.stderr.write(
    `speed.freshness: sent ${requests} bodies in ${sendSeconds.toFixed(1)} s, ${Math.round(sustained)} events/s acknowledged; ` +
      `freshness p50 ${ms(percentile(fresh, 50))} p99 ${ms(percentile(fresh, 99))} max ${ms(Math.max(...fresh))} ms; ` +
      `ingest round trip p50 ${ms(percentile(roundTrips, 50))} p99 ${ms(percentile(roundTrips, 99))} ms; ` +
      `${missing} probes not visible within ${FRESH_DEADLINE_MS} ms; ` +
      `the last probe showed ${ms((lastVisible - started) / 1000)} s after the first was sent (${Math.round(counting)} events/s counted)\n`,
  );
  const value = percentile(fresh, 99);
  const baseline = percentile(roundTrips, 99);
  if (batchRows > 0) {
    const switched = /switched ([\d.]+)/.exec(batchOut)?.[1];
    return {
      name: 'speed.freshness.batch',
      description: `speed.freshness while a recalculation writes ${batchRows} batch minute rows of yesterday into the same store and switches them in (${switched === undefined ? 'still writing when the measurement ended' : `switched after ${switched} s`}); ${FRESH_RATE} events/s for ${FRESH_SECONDS} s, ${Math.round(sustained / 1000)}k events/s sustained${missing > 0 ? `, ${missing} probes not visible within ${FRESH_DEADLINE_MS / 1000} s` : ''}; baseline: p99 of the POST's own round trip`,
      unit: 'ms',
      value: ms(value),
      baseline: ms(baseline),
      ratio: Number((value / baseline).toFixed(3)),
    };
  }
  return {
    name: `speed.freshness (p99 from POST /v1/events to the event visible in GET /v1/stats; ${EVENTS_PER_BODY}-event bodies paced at ${FRESH_RATE} events/s for ${FRESH_SECONDS} s, ${Math.round(sustained / 1000)}k events/s sustained${missing > 0 ? `, ${missing} probes not visible within ${FRESH_DEADLINE_MS / 1000} s` : ''}; baseline: p99 of the POST's own round trip)`,
    unit: 'ms',
    value: ms(value),
    baseline: ms(baseline),
    ratio: Number((value / baseline).toFixed(3)),
  };
}

/** Runs the serving benchmarks. */
export async function servingBenchmarks(): Promise<BenchResult[]> {
  return [
    await queryP99(),
    await freshness(),
    await freshness(Number(process.env.RECKON_BENCH_FRESH_BATCH_ROWS ?? 16_000_000)),
  ];
}
