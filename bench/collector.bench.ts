/**
 * Collector benchmark: `reckon collector` (the HTTP server alone) in its own process takes
 * 1000-event NDJSON bodies over HTTP on loopback (autocannon, bounded in requests and time) and
 * answers once they are durable; then the same against `reckon start`, whose speed layer and
 * archiver share the cores. Baselines: in-process `log.append` of the same events, Avro-encoded,
 * in batches of 1000; and (`collector.ingest.vs-http`) a bare node:http server under the same load.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { encodeClick, encodeEmission, parseEventLine } from '../src/events/index.ts';
import { openEmbeddedLog, type RecordInput } from '../src/log/index.ts';
import { DEFAULT_SIMULATION, NO_FAULTS, simulate } from '../src/sim/index.ts';
import { type BenchResult, startReckon } from './harness.ts';

const EVENTS_PER_BODY = 1000;
/** A bare HTTP server: reads each body whole, answers a small JSON; prints its port. */
const BARE_HTTP_SERVER = `
const server = require('node:http').createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ accepted: body.length > 0 ? 1000 : 0, rejected: [] }));
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
`;
const BODIES = 40;
const ROUNDS = 3;
/** Requests of the in-process baseline. */
const BASELINE_REQUESTS = 1200;
const ROUND_SECONDS = 5;
const CONNECTIONS = Number(process.env.RECKON_BENCH_CONNECTIONS ?? 16);

/** Runs the collector benchmarks. */
export async function collectorBenchmarks(): Promise<BenchResult[]> {
  const { lines } = simulate({ ...DEFAULT_SIMULATION, seed: 5, emissions: 40_000, faults: NO_FAULTS });
  const valid = lines.filter((l) => parseEventLine(l).ok).slice(0, EVENTS_PER_BODY * BODIES);
  const bodies: string[] = [];
  for (let b = 0; b < BODIES; b++)
    bodies.push(valid.slice(b * EVENTS_PER_BODY, (b + 1) * EVENTS_PER_BODY).join('\n') + '\n');

  // Rounds are bounded in time: a time-bound round measures the steady state (an amount-bound
  // one ends with a tail where fewer requests are in flight). autocannon ignores `duration`
  // when `amount` is set, so no amount is given; 16 connections for a few seconds bound the count.
  const rate = (r: autocannon.Result) => (r.requests.sent * EVENTS_PER_BODY) / (r.duration || 1);
  /** The median of the rounds against `reckon <verb>`, by throughput. */
  const measure = async (verb: 'collector' | 'start'): Promise<autocannon.Result> => {
    const dataDir = mkdtempSync(join(tmpdir(), 'reckon-bench-collector-'));
    const reckon = await startReckon(dataDir, 60_000, verb);
    const load = (seconds: number) =>
      autocannon({
        url: `${reckon.url}/v1/events`,
        connections: CONNECTIONS,
        duration: seconds,
        requests: bodies.map((body) => ({ method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body })),
      });
    const rounds: autocannon.Result[] = [];
    try {
      await load(1); // warm-up
      for (let r = 0; r < ROUNDS; r++) rounds.push(await load(ROUND_SECONDS));
    } finally {
      await reckon.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
    for (const round of rounds) {
      if (round.non2xx > 0 || round.errors > 0)
        throw new Error(`collector bench (reckon ${verb}): ${round.non2xx} non-2xx answers, ${round.errors} errors`);
    }
    process.stderr.write(
      `collector rounds, reckon ${verb} (events/s): ${rounds.map((r) => Math.round(rate(r))).join(', ')}\n`,
    );
    return [...rounds].sort((a, b) => rate(a) - rate(b))[Math.floor(ROUNDS / 2)] as autocannon.Result;
  };
  // The bare-HTTP baseline: a plain node:http server in its own process that reads each body and
  // answers a small JSON, under the same load: what HTTP alone costs on these cores.
  const bareHttp = async (): Promise<autocannon.Result> => {
    const child = spawn(process.execPath, ['-e', BARE_HTTP_SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        child.stdout.once('data', (c: Buffer) => resolve(Number(c.toString().trim())));
        child.once('exit', (code) => reject(new Error(`the bare HTTP server exited (${code})`)));
      });
      const load = (seconds: number) =>
        autocannon({
          url: `http://127.0.0.1:${port}/v1/events`,
          connections: CONNECTIONS,
          duration: seconds,
          requests: bodies.map((body) => ({
            method: 'POST',
            headers: { 'content-type': 'application/x-ndjson' },
            body,
          })),
        });
      await load(1);
      const rounds: autocannon.Result[] = [];
      for (let r = 0; r < ROUNDS; r++) rounds.push(await load(ROUND_SECONDS));
      process.stderr.write(`bare HTTP rounds (events/s): ${rounds.map((r) => Math.round(rate(r))).join(', ')}\n`);
      return [...rounds].sort((a, b) => rate(a) - rate(b))[Math.floor(ROUNDS / 2)] as autocannon.Result;
    } finally {
      child.kill('SIGKILL');
    }
  };
  const http = rate(await bareHttp());
  const alone = await measure('collector');
  const withPipeline = await measure('start');
  const eventsPerSecond = rate(alone);
  const result = alone;

  // Baseline: the same events, encoded, appended in-process with 16 appends in flight.
  const batches: { emissions: RecordInput[]; clicks: RecordInput[] }[] = bodies.map((body) => {
    const emissions: RecordInput[] = [];
    const clicks: RecordInput[] = [];
    for (const line of body.split('\n')) {
      if (line === '') continue;
      const r = parseEventLine(line);
      if (!r.ok) continue;
      const e = r.event;
      if (e.type === 'emission') emissions.push({ key: e.id, value: encodeEmission(1, e), timestamp: e.ts });
      else clicks.push({ key: e.emissionId, value: encodeClick(2, e), timestamp: e.ts });
    }
    return { emissions, clicks };
  });
  const baseDir = mkdtempSync(join(tmpdir(), 'reckon-bench-collector-base-'));
  const log = await openEmbeddedLog({ dir: baseDir, retentionIntervalMs: 0 });
  await log.createTopic({ name: 'emissions', partitions: 4 });
  await log.createTopic({ name: 'clicks', partitions: 4 });
  const started = performance.now();
  const inFlight = new Set<Promise<unknown>>();
  for (let i = 0; i < BASELINE_REQUESTS; i++) {
    const b = batches[i % batches.length] as (typeof batches)[number];
    const p = Promise.all([log.append('emissions', b.emissions), log.append('clicks', b.clicks)]).finally(() =>
      inFlight.delete(p),
    );
    inFlight.add(p);
    if (inFlight.size >= 16) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  const baseline = (BASELINE_REQUESTS * EVENTS_PER_BODY) / ((performance.now() - started) / 1000);
  await log.close();
  rmSync(baseDir, { recursive: true, force: true });
  return [
    {
      name: `collector.ingest (reckon collector: HTTP POST of ${EVENTS_PER_BODY}-event NDJSON bodies, ${CONNECTIONS} connections, durable before the answer; median of ${ROUNDS} rounds)`,
      unit: 'events/s',
      value: Math.round(eventsPerSecond),
      baseline: Math.round(baseline),
      ratio: Number((eventsPerSecond / baseline).toFixed(3)),
    },
    {
      name: 'collector.ingest.vs-http',
      description: `collector.ingest against a bare node:http server that reads the same bodies and answers (its own process, same load, same run)`,
      unit: 'events/s',
      value: Math.round(eventsPerSecond),
      baseline: Math.round(http),
      ratio: Number((eventsPerSecond / http).toFixed(3)),
    },
    {
      name: `collector.ingest under reckon start (its speed layer and archiver on the same cores), same load`,
      unit: 'events/s',
      value: Math.round(rate(withPipeline)),
      baseline: Math.round(baseline),
      ratio: Number((rate(withPipeline) / baseline).toFixed(3)),
    },
    {
      name: `collector.ingest p99 latency of one ${EVENTS_PER_BODY}-event request (baseline: p50)`,
      unit: 'ms',
      value: result.latency.p99,
      baseline: result.latency.p50,
      ratio: Number((result.latency.p99 / Math.max(1, result.latency.p50)).toFixed(3)),
    },
  ];
}
