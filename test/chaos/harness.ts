/**
 * The whole-system resilience run: the collector, speed layer, archiver and scheduler as separate
 * processes, simulated traffic with every fault, and a seeded schedule of SIGKILLs and restarts.
 * Embedded mode runs one process of each on the embedded log and SQLite, and (where the machine
 * allows mounts) fills the log's disk for a moment. Distributed mode runs two of each on a
 * Kafka-protocol broker and a temporary PostgreSQL cluster, so a kill moves partitions to the
 * surviving member of the group, and freezes the brokers for a moment instead. At the end it
 * checks what the pipeline promises: every acknowledged event in the lake exactly once, every
 * rejected line in the dead-letter store with its reason, batch statistics equal to the
 * simulator's exact ones, and speed deviations reported. The same seed makes the same traffic
 * and the same fault schedule.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { freePort } from '../support/net.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { lakeTopicFiles } from '../../src/lake/index.ts';
import { DEFAULT_SIMULATION, expectedStatistics, SeededRandom, simulate } from '../../src/sim/index.ts';
import { CLI, reckonAsync, simulatorRulesEnv } from '../support/cli.ts';
import { type MockKafka, startMockKafka } from '../support/kafka-mock.ts';
import { startPostgres, type TemporaryPostgres } from '../support/postgres.ts';

const DAY = 86_400_000;
type Role = 'collector' | 'speed' | 'archiver' | 'scheduler';
const ROLES: readonly Role[] = ['collector', 'speed', 'archiver', 'scheduler'];
/** A process of the run: a role and its instance number (`speed#2`). */
type Part = string;
const roleOf = (part: Part) => part.split('#')[0] as Role;

/** The deployment a run exercises. */
export type ChaosMode = 'embedded' | 'distributed';

/** Topics the distributed run creates up front (the mock broker has no CreateTopics). */
const KAFKA_TOPICS: readonly [string, number][] = [
  ['emissions', 4],
  ['clicks', 4],
  ['collector.rejected', 1],
  ['speed.dead-letters', 1],
  ['speed.gaps', 1],
  ['archiver.dead-letters', 1],
  ['archiver.gaps', 1],
];

/** What one run does. */
export interface ChaosOptions {
  seed: number;
  /** Embedded (default): one process per role. Distributed: Kafka and PostgreSQL, two per role. */
  mode?: ChaosMode;
  /** Emissions of simulated traffic (lines are about 1.2 per emission). */
  emissions: number;
  /** SIGKILLs during the traffic. */
  kills: number;
  /**
   * Embedded: fill the log's disk for a moment (needs root and mount; skipped with a note
   * otherwise). Distributed: freeze the Kafka brokers for a moment.
   */
  diskFull?: boolean;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** The figures of one run (each check that fails throws instead). */
export interface ChaosFigures {
  seed: number;
  mode: ChaosMode;
  lines: number;
  acked: number;
  rejected: number;
  kills: number;
  diskFull: number;
  /** POSTs that failed (collector down, log refusing) and were sent again. */
  resent: number;
  lost: number;
  lakeDuplicates: number;
  mismatchedRows: number;
  deviatingColumns: number;
  /** Hand-overs in which a new archiver waited for the old owner of a partition to let go. */
  leaseWaits: number;
  /** Speed writes refused because another process had moved the partition on (the writer restarted). */
  fencedWrites: number;
  recoverSeconds: number;
  seconds: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One line of the figures, as `npm run chaos` prints it. */
export function figuresLine(f: ChaosFigures): string {
  return (
    `chaos seed=${f.seed} mode=${f.mode} lines=${f.lines} acked=${f.acked} rejected=${f.rejected} kills=${f.kills} ` +
    `${f.mode === 'embedded' ? 'disk-full' : 'broker-frozen'}=${f.diskFull} resent=${f.resent} lost=${f.lost} lake-duplicates=${f.lakeDuplicates} mismatched-rows=${f.mismatchedRows} ` +
    `deviating-columns=${f.deviatingColumns} lease-waits=${f.leaseWaits} fenced-writes=${f.fencedWrites} recover=${f.recoverSeconds.toFixed(1)}s total=${f.seconds.toFixed(1)}s`
  );
}

/** Runs one seed; resolves with its figures, or rejects naming the broken promise. */
export async function runChaos(o: ChaosOptions): Promise<ChaosFigures> {
  const began = Date.now();
  const mode = o.mode ?? 'embedded';
  const distributed = mode === 'distributed';
  const say = o.log ?? (() => undefined);
  const rng = new SeededRandom(o.seed * 7919 + 13);
  const dir = mkdtempSync(join(tmpdir(), `reckon-chaos-${o.seed}-`));
  const data = join(dir, 'data');
  mkdirSync(data, { recursive: true });
  // The log on a small filesystem of its own, so that its disk can be filled for a moment.
  let mounted = false;
  if (o.diskFull && !distributed) {
    mkdirSync(join(data, 'log'), { recursive: true });
    mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256m', 'tmpfs', join(data, 'log')]).status === 0;
    if (!mounted) say('chaos: cannot mount a filesystem here; the full-disk fault is skipped');
  }
  // An interrupted run (its parts exit by themselves: supervised) leaves no mount or files behind.
  const cleanUp = () => {
    if (mounted) spawnSync('umount', ['-l', join(data, 'log')]);
    mounted = false;
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', cleanUp);
  const start = Date.UTC(2026, 10, 1);
  const options = { ...DEFAULT_SIMULATION, seed: o.seed, emissions: o.emissions, start, durationMs: DAY };
  const sim = simulate(options);
  const expected = expectedStatistics(sim.events, options.rules);
  const perRole = distributed ? 2 : 1;
  const PARTS: Part[] = ROLES.flatMap((r) => Array.from({ length: perRole }, (_, i) => `${r}#${i + 1}`));
  const ports = new Map<Part, number>();
  for (const p of PARTS) if (roleOf(p) === 'collector') ports.set(p, await freePort());
  const urls = [...ports.values()].map((p) => `http://127.0.0.1:${p}`);
  const url = urls[0] as string;
  let kafka: MockKafka | undefined;
  let postgres: TemporaryPostgres | undefined;
  const env: Record<string, string> = {
    ...simulatorRulesEnv(options.rules),
    RECKON_SCHEDULER_START_DATE: '2030-01-01',
    RECKON_SCHEDULER_POKE_INTERVAL: '500ms',
  };
  const procs = new Map<Part, ChildProcess>();
  let leaseWaits = 0;
  let fencedWrites = 0;
  const output: string[] = [];
  const launch = (part: Part) => {
    const role = roleOf(part);
    // Supervised by this run: a part exits when the run is gone (interrupted), never left behind.
    const args = [
      ...(role === 'collector' ? ['collector', '--port', String(ports.get(part))] : [role]),
      '--data',
      data,
      '--supervised',
      String(process.pid),
    ];
    const child = spawn(process.execPath, [...CLI, ...args], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (c: Buffer) => {
      const text = c.toString();
      leaseWaits += text.split('to hand the partition over').length - 1;
      fencedWrites += text.match(/writing speed deltas failed: [^\n]*another process has written/g)?.length ?? 0;
      output.push(`[${part}] ${text}`);
      if (output.length > 400) output.shift();
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    procs.set(part, child);
    everyChild.push(child);
  };
  const everyChild: ChildProcess[] = [];
  /** Parts that died by themselves (not by the fault schedule) come back, as a supervisor would bring them. */
  const revive = () => {
    for (const p of PARTS) if (procs.has(p) && !alive(p) && !killing.has(p)) launch(p);
  };
  const alive = (part: Part) => {
    const c = procs.get(part);
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  };
  const collectorUp = async (at = url) => {
    try {
      return (await fetch(`${at}/healthz`)).ok;
    } catch {
      return false;
    }
  };
  const waitFor = async (what: string, check: () => Promise<boolean> | boolean, ms: number) => {
    const deadline = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > deadline)
        throw new Error(`chaos seed ${o.seed}: ${what} within ${ms / 1000} s\n${output.slice(-30).join('')}`);
      revive();
      await sleep(100);
    }
  };
  const killing = new Set<Part>();
  let kills = 0;
  let diskFull = 0;
  let resent = 0;
  try {
    if (distributed) {
      [kafka, postgres] = await Promise.all([startMockKafka(3), startPostgres()]);
      for (const [topic, partitions] of KAFKA_TOPICS) await kafka.createTopic(topic, partitions);
      Object.assign(env, {
        RECKON_KAFKA_BROKERS: kafka.brokers.join(','),
        RECKON_POSTGRES_URL: postgres.connectionString,
        // Not shorter: on 2 busy cores a live member can miss 3 s of heartbeats and be evicted, and
        // librdkafka 2.0.2's mock names members by their memory address, which a member joining next
        // may get again; the evicted one then rejoins under the same id and the mock aborts
        // (rdkafka_mock_cgrp.c: Assertion `!member->resp').
        RECKON_KAFKA_SESSION_TIMEOUT: '10s',
        RECKON_KAFKA_LEADER_SYNC_DELAY: '300ms',
      });
    }
    // The first collector registers the schemas and creates the topics before anything else starts.
    launch(PARTS[0] as Part);
    await waitFor('the collector answers', () => collectorUp(), 60_000);
    for (const p of PARTS.slice(1)) launch(p);
    for (const u of urls) await waitFor(`the collector at ${u} answers`, () => collectorUp(u), 60_000);

    // The fault schedule, drawn before the traffic so that a seed fixes it.
    const plan = Array.from({ length: o.kills }, () => ({
      victim: PARTS[rng.int(PARTS.length)] as Part,
      gapMs: 300 + rng.int(1200),
      downMs: 100 + rng.int(900),
    }));
    const diskFullAt = mounted || (distributed && o.diskFull) ? rng.int(Math.max(1, o.kills)) : -1;
    let lastFault = Date.now();
    const faults = (async () => {
      for (let i = 0; i < plan.length; i++) {
        const { victim, gapMs, downMs } = plan[i] as (typeof plan)[number];
        await sleep(gapMs);
        if (i === diskFullAt && kafka !== undefined) {
          // Freeze the brokers for a moment: appends and fetches hang, then go on.
          kafka.pause();
          say(`chaos: Kafka brokers frozen for ${downMs} ms`);
          await sleep(downMs);
          kafka.resume();
          diskFull++;
          lastFault = Date.now();
          continue;
        }
        if (i === diskFullAt) {
          // Fill the log's disk for a moment: appends fail, the collector answers 503, producers retry.
          const filler = join(data, 'log', 'filler');
          spawnSync('fallocate', ['-l', '250m', filler]);
          say(`chaos: log disk full for ${downMs} ms`);
          await sleep(downMs);
          rmSync(filler, { force: true });
          diskFull++;
          lastFault = Date.now();
          continue;
        }
        killing.add(victim);
        procs.get(victim)?.kill('SIGKILL');
        kills++;
        say(`chaos: SIGKILL ${victim} (${kills}/${plan.length}), back in ${downMs} ms`);
        await sleep(downMs);
        launch(victim);
        killing.delete(victim);
        lastFault = Date.now();
      }
    })();

    // Traffic: batches in arrival order; a batch is retried until answered (its events may then
    // be in the log twice: redeliveries, which the batch layer counts once).
    const acked = new Set<string>();
    const answeredRejections: { requestId: string; line: number; reason: string }[] = [];
    const batchSize = 400;
    // Paced over the fault schedule, so that the faults fall during the traffic.
    const planMs = plan.reduce((n, f) => n + f.gapMs + f.downMs, 0);
    const pauseMs = planMs / Math.ceil(sim.lines.length / batchSize);
    for (let i = 0; i < sim.lines.length; i += batchSize) {
      const sent = Date.now();
      const lines = sim.lines.slice(i, i + batchSize);
      for (let attempt = 0; ; attempt++) {
        // Batches alternate between the collectors; a failed one goes to the next.
        const target = urls[(i / batchSize + attempt) % urls.length] as string;
        if (attempt > 600)
          throw new Error(`chaos seed ${o.seed}: a batch was not accepted in 600 tries\n${output.slice(-30).join('')}`);
        let answer: { requestId: string; accepted: number; rejected: { line: number; reason: string }[] } | undefined;
        try {
          const res = await fetch(`${target}/v1/events`, {
            method: 'POST',
            headers: { 'content-type': 'application/x-ndjson' },
            body: lines.join('\n'),
            signal: AbortSignal.timeout(10_000),
          });
          if (res.status === 200) answer = (await res.json()) as typeof answer;
          else await res.arrayBuffer();
        } catch {
          // The collector is down or restarting: try again.
        }
        if (answer === undefined) {
          resent++;
          revive();
          await sleep(100);
          continue;
        }
        const bad = new Set(answer.rejected.map((r) => r.line));
        lines.forEach((l, j) => {
          if (!bad.has(j + 1)) acked.add((JSON.parse(l) as { id: string }).id);
        });
        for (const r of answer.rejected) answeredRejections.push({ requestId: answer.requestId, ...r });
        break;
      }
      await sleep(Math.max(0, pauseMs - (Date.now() - sent)));
    }
    await faults;
    const trafficEnd = Math.max(Date.now(), lastFault);

    // Recovery: every part up, both consumers caught up, the day sealed.
    type OverviewPart = { id: string; figures: Record<string, number> };
    let lastSeen = 'no overview answered';
    const lagZero = async () => {
      if (!(await collectorUp())) return false;
      try {
        const o = (await (await fetch(`${url}/v1/overview`)).json()) as { parts: OverviewPart[] };
        const lag = (id: string) => o.parts.find((p) => p.id === id)?.figures.lagRecords;
        const sealed = o.parts.find((p) => p.id === 'archiver')?.figures.sealedUntil ?? 0;
        lastSeen = `speed lag ${lag('speed')}, archiver lag ${lag('archiver')}, sealed until ${new Date(sealed).toISOString()} (wanted ${new Date(start + 2 * DAY).toISOString()})`;
        return lag('speed') === 0 && lag('archiver') === 0 && sealed >= start + 2 * DAY;
      } catch {
        return false;
      }
    };
    await waitFor('both consumers caught up and the days sealed', lagZero, 180_000).catch((e: unknown) => {
      throw new Error(`${(e as Error).message}; last seen: ${lastSeen}`);
    });
    const recoverSeconds = (Date.now() - trafficEnd) / 1000;

    // 1. Every acknowledged event is in the lake, and no log record is there twice.
    const instance = await DuckDBInstance.create(':memory:');
    const c = await instance.connect();
    const lake = join(data, 'lake');
    let lakeDuplicates = 0;
    let lost = 0;
    try {
      // The files a reader must read (a glob would also see an hour's files a compaction is replacing).
      const files = ['emissions', 'clicks']
        .flatMap((t) => lakeTopicFiles(lake, t))
        .map((f) => `'${f}'`)
        .join(', ');
      const dup = await c.runAndReadAll(
        `SELECT count(*)::BIGINT FROM (SELECT filename LIKE '%/emissions/%' AS em, log_partition, log_offset, count(*) AS n
         FROM read_parquet([${files}], filename = true, union_by_name = true) GROUP BY ALL HAVING count(*) > 1)`,
      );
      lakeDuplicates = Number(dup.getRows()[0]?.[0] ?? 0);
      const ids = await c.runAndReadAll(`SELECT DISTINCT id FROM read_parquet([${files}], union_by_name = true)`);
      const inLake = new Set(ids.getRows().map((r) => String(r[0])));
      for (const id of acked) if (!inLake.has(id)) lost++;
    } finally {
      c.closeSync();
      instance.closeSync();
    }

    // 2. Every rejected line is in the dead-letter store with its reason.
    const kept = (await (await fetch(`${url}/v1/rejected?limit=10000`)).json()) as {
      rejected: { requestId: string; line: number; reason: string }[];
    };
    const keptKeys = new Set(kept.rejected.map((r) => `${r.requestId}/${r.line}/${r.reason}`));
    const notKept = answeredRejections.filter((r) => !keptKeys.has(`${r.requestId}/${r.line}/${r.reason}`));

    // 3. The daily runs make the batch statistics exact.
    const backfill = await reckonAsync(
      ['dags', 'backfill', 'recalculate-daily', '--from', '2026-11-01', '--to', '2026-11-02', '--data', data],
      env,
    );
    if (backfill.status !== 0)
      throw new Error(`chaos seed ${o.seed}: the backfill failed\n${backfill.stdout}\n${backfill.stderr}`);
    const rows: Record<string, unknown>[] = [];
    let cursor: string | undefined;
    do {
      const page = (await (
        await fetch(
          `${url}/v1/stats?from=2026-11-01&to=2026-11-03&granularity=minute&limit=10000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        )
      ).json()) as { rows: Record<string, unknown>[]; nextCursor?: string };
      rows.push(...page.rows);
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    const got = new Map(
      rows.map(({ source: _s, final: _f, ...r }) => [`${r.bucket} ${r.offerId} ${r.placement}`, JSON.stringify(r)]),
    );
    const want = expected.minute.filter((r) => Date.parse(r.bucket) < start + 2 * DAY);
    let mismatchedRows = Math.abs(got.size - want.length);
    for (const r of want)
      if (got.get(`${r.bucket} ${r.offerId} ${r.placement}`) !== JSON.stringify(r)) mismatchedRows++;
    const notBatch = rows.filter((r) => r.source !== 'batch' || r.final !== true).length;

    // 4. Speed deviations were reported: each column beyond the threshold has its alert.
    const disc = (await (await fetch(`${url}/v1/discrepancies?from=2026-11-01&to=2026-11-02`)).json()) as {
      intervals: {
        from: string;
        to: string;
        columns: Record<string, { speed: number | string; batch: number | string }>;
      }[];
    };
    const day = disc.intervals.find(
      (i) => i.from === '2026-11-01T00:00:00.000Z' && i.to === '2026-11-02T00:00:00.000Z',
    );
    const deviating = Object.entries(day?.columns ?? {}).filter(([, v]) => {
      const s = Number(v.speed);
      const b = Number(v.batch);
      return Math.abs(s - b) > 0.02 * Math.max(1, Math.abs(b));
    });
    const alerts = (await (await fetch(`${url}/v1/alerts?kind=discrepancy`)).json()) as { alerts: { id: string }[] };
    const reported = alerts.alerts.some((a) => a.id === 'discrepancy:recalculate-daily:2026-11-01T00:00:00.000Z');

    const figures: ChaosFigures = {
      seed: o.seed,
      mode,
      lines: sim.lines.length,
      acked: acked.size,
      rejected: answeredRejections.length,
      kills,
      diskFull,
      resent,
      lost,
      lakeDuplicates,
      mismatchedRows,
      deviatingColumns: deviating.length,
      leaseWaits,
      fencedWrites,
      recoverSeconds,
      seconds: (Date.now() - began) / 1000,
    };
    const broken = [
      lost > 0 && `${lost} acknowledged events are not in the lake`,
      lakeDuplicates > 0 && `${lakeDuplicates} log records are in the lake more than once`,
      notKept.length > 0 && `${notKept.length} rejected lines are not in the dead-letter store with their reason`,
      day === undefined && 'the daily run recorded no reconciliation',
      mismatchedRows > 0 && `${mismatchedRows} minute rows differ from the exact statistics`,
      notBatch > 0 && `${notBatch} rows are not final batch rows`,
      deviating.length > 0 &&
        !reported &&
        `speed deviated in ${deviating.map(([k]) => k).join(', ')} and no discrepancy alert was raised`,
      acked.size === 0 && 'no event was acknowledged',
    ].filter((x): x is string => typeof x === 'string');
    if (broken.length > 0)
      throw new Error(
        `chaos seed ${o.seed}: ${broken.join('; ')}\n${figuresLine(figures)}\n${output.slice(-30).join('')}`,
      );
    return figures;
  } finally {
    for (const c of everyChild) c.kill('SIGKILL');
    await Promise.all(
      everyChild.map((c) =>
        c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once('exit', r)),
      ),
    );
    await kafka?.stop();
    await postgres?.stop();
    process.removeListener('exit', cleanUp);
    cleanUp();
  }
}
