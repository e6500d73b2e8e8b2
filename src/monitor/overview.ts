/**
 * The pipeline overview the dashboard draws: each part with its health and figures, and the
 * flow between them with rates. Rates come from a sampler that reads the same totals every
 * second and keeps the last ten seconds.
 */
import type { CollectorMetrics } from '../collector/index.ts';
import {
  consumerLags,
  deadLetterCounts,
  lakeState,
  type MonitorSources,
  topicEnds,
  workerStatuses,
} from './sources.ts';

/** One part of the flow. */
export interface OverviewPart {
  id: 'collector' | 'log' | 'speed' | 'archiver' | 'scheduler' | 'serving';
  label: string;
  health: 'ok' | 'lagging' | 'down' | 'idle';
  detail: string;
  figures: Record<string, number>;
}

/** The overview as `GET /v1/overview` answers it. */
export interface Overview {
  now: string;
  parts: OverviewPart[];
  edges: { from: OverviewPart['id']; to: OverviewPart['id']; ratePerSecond: number }[];
}

/** A consumer this many records behind, or whose writes are this old, is lagging. */
const LAGGING_RECORDS = 50_000;
const LAGGING_FLUSH_S = 15;
const WINDOW_MS = 10_000;

/** Totals sampled every second; rates over the last ten seconds. */
export class RateSampler {
  readonly #samples: { at: number; totals: Record<string, number> }[] = [];
  readonly #read: () => Promise<Record<string, number>>;
  #timer: NodeJS.Timeout | undefined;

  constructor(read: () => Promise<Record<string, number>>) {
    this.#read = read;
  }

  /** Takes one sample now. */
  async sample(at = Date.now()): Promise<void> {
    this.#samples.push({ at, totals: await this.#read() });
    while (this.#samples.length > 2 && at - (this.#samples[0]?.at ?? at) > WINDOW_MS) this.#samples.shift();
  }

  /** Per second over the window, per total (0 until two samples exist). */
  rates(): Record<string, number> {
    const first = this.#samples[0];
    const last = this.#samples.at(-1);
    if (first === undefined || last === undefined || last.at <= first.at) return {};
    const seconds = (last.at - first.at) / 1000;
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(last.totals)) out[k] = Math.max(0, (v - (first.totals[k] ?? 0)) / seconds);
    return out;
  }

  /** The latest totals. */
  latest(): Record<string, number> {
    return this.#samples.at(-1)?.totals ?? {};
  }

  start(intervalMs = 1000): void {
    this.#timer ??= setInterval(() => this.sample().catch(() => undefined), intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

/** Sums of a counter's values. */
async function total(counter: { get(): Promise<{ values: { value: number }[] }> }): Promise<number> {
  return (await counter.get()).values.reduce((n, v) => n + v.value, 0);
}

/** A sampler of the totals the overview turns into rates. */
export function overviewSampler(s: MonitorSources, collector: CollectorMetrics): RateSampler {
  return new RateSampler(async () => {
    let appended = 0;
    for (const topic of s.eventTopics) for (const end of await topicEnds(s.log, topic)) appended += end;
    const statuses = workerStatuses(s);
    const fig = (part: string, name: string) => {
      const v = statuses.find((x) => x.part === part)?.figures[name];
      return typeof v === 'number' ? v : 0;
    };
    return {
      accepted: await total(collector.accepted),
      rejected: await total(collector.rejected),
      appended,
      speedEvents: fig('speed', 'events_total'),
      archiverEvents: fig('archiver', 'events_total'),
    };
  });
}

/** The overview now. */
export async function pipelineOverview(s: MonitorSources, sampler: RateSampler): Promise<Overview> {
  const now = (s.clock ?? Date.now)();
  const rates = sampler.rates();
  const totals = sampler.latest();
  const lags = await consumerLags(s);
  const lagOf = (group: string) => lags.filter((l) => l.group === group).reduce((n, l) => n + l.lag, 0);
  const statuses = workerStatuses(s);
  const status = (part: string) => statuses.find((x) => x.part === part);
  const fig = (part: string, name: string) => {
    const v = status(part)?.figures[name];
    return typeof v === 'number' ? v : 0;
  };
  const waiting = (part: string) => {
    const st = status(part);
    let n = 0;
    for (const name of ['queued_records', 'in_flight_records']) {
      const f = st?.figures[name];
      if (Array.isArray(f)) n += f.reduce((a, x) => a + x.value, 0);
    }
    return n;
  };
  const dead = await deadLetterCounts(s);
  const lake = await lakeState(s);
  const summary = await s.scheduler.summary();
  const runs = (state: string) => summary.runs.filter((r) => r.state === state).reduce((n, r) => n + r.count, 0);
  const intervals = await s.stats.batchIntervals();
  const exactUntil = intervals.reduce((m, i) => Math.max(m, i.to), 0);

  const consumerHealth = (part: string, lag: number, extraLagging = false): OverviewPart['health'] => {
    const st = status(part);
    if (st === undefined || !st.up) return 'down';
    if (lag > LAGGING_RECORDS || extraLagging) return 'lagging';
    return lag === 0 && (rates[part === 'speed' ? 'speedEvents' : 'archiverEvents'] ?? 0) === 0 ? 'idle' : 'ok';
  };
  /** How many processes of a part run (a group may run several), as the start of its detail. */
  const running = (part: string) => {
    const n = status(part)?.processes ?? 0;
    return n > 1 ? `${n} processes: ` : '';
  };
  const flushAge = fig('speed', 'last_flush_end_seconds') > 0 ? now / 1000 - fig('speed', 'last_flush_end_seconds') : 0;
  const speedLag = lagOf('speed');
  const archiverLag = lagOf('archiver');
  const parts: OverviewPart[] = [
    {
      id: 'collector',
      label: 'Collector',
      health: (rates.accepted ?? 0) > 0 ? 'ok' : 'idle',
      detail: `${Math.round(rates.accepted ?? 0)} events/s accepted, ${totals.rejected ?? 0} rejected in all (${dead['collector.rejected'] ?? 0} kept)`,
      figures: {
        acceptedPerSecond: rates.accepted ?? 0,
        acceptedTotal: totals.accepted ?? 0,
        rejectedTotal: totals.rejected ?? 0,
        rejectedKept: dead['collector.rejected'] ?? 0,
      },
    },
    {
      id: 'log',
      label: 'Log',
      health: (rates.appended ?? 0) > 0 ? 'ok' : 'idle',
      detail: `${totals.appended ?? 0} records in ${s.eventTopics.join(', ')}`,
      figures: { records: totals.appended ?? 0, appendedPerSecond: rates.appended ?? 0 },
    },
    {
      id: 'speed',
      label: 'Speed layer',
      // Behind and not writing while records wait: stuck. (A dead-lettered last record leaves the
      // stored offset one short until the next record; nothing waits then.)
      health: consumerHealth('speed', speedLag, flushAge > LAGGING_FLUSH_S && speedLag > 0 && waiting('speed') > 0),
      detail: status('speed')?.up
        ? `${running('speed')}${speedLag} records behind, last write ${flushAge.toFixed(1)} s ago, ${fig('speed', 'joiner_emissions')} emissions held`
        : 'not running',
      figures: {
        lagRecords: speedLag,
        processes: status('speed')?.processes ?? 0,
        eventsPerSecond: rates.speedEvents ?? 0,
        lastFlushAgeSeconds: flushAge,
        joinerEmissions: fig('speed', 'joiner_emissions'),
        pendingClicks: fig('speed', 'joiner_pending_clicks'),
        deadLetters: dead.speed ?? 0,
      },
    },
    {
      id: 'archiver',
      label: 'Archiver (lake)',
      health: consumerHealth('archiver', archiverLag),
      detail: status('archiver')?.up
        ? `${running('archiver')}${archiverLag} records behind; sealed until ${lake.sealedUntil === null ? 'none yet' : new Date(lake.sealedUntil).toISOString()}`
        : 'not running',
      figures: {
        lagRecords: archiverLag,
        processes: status('archiver')?.processes ?? 0,
        eventsPerSecond: rates.archiverEvents ?? 0,
        sealedUntil: lake.sealedUntil ?? 0,
        lateArrivals: lake.lateArrivals,
        deadLetters: dead.archiver ?? 0,
      },
    },
    {
      id: 'scheduler',
      label: 'Batch (scheduler)',
      health: !status('scheduler')?.up ? 'down' : runs('running') + runs('queued') > 0 ? 'ok' : 'idle',
      detail: status('scheduler')?.up
        ? `${runs('running')} runs running, ${runs('queued')} queued, ${runs('failed')} failed`
        : 'not running',
      figures: {
        runningTries: fig('scheduler', 'running_tries'),
        runningRuns: runs('running'),
        queuedRuns: runs('queued'),
        failedRuns: runs('failed'),
        succeededRuns: runs('success'),
        pendingAlerts: summary.alerts.filter((a) => a.state === 'pending').reduce((n, a) => n + a.count, 0),
      },
    },
    {
      id: 'serving',
      label: 'Serving',
      health: 'ok',
      detail: exactUntil > 0 ? `exact (batch) up to ${new Date(exactUntil).toISOString()}` : 'speed rows only so far',
      figures: { exactUntil, batchIntervals: intervals.length },
    },
  ];
  return {
    now: new Date(now).toISOString(),
    parts,
    edges: [
      { from: 'collector', to: 'log', ratePerSecond: rates.accepted ?? 0 },
      { from: 'log', to: 'speed', ratePerSecond: rates.speedEvents ?? 0 },
      { from: 'log', to: 'archiver', ratePerSecond: rates.archiverEvents ?? 0 },
      { from: 'speed', to: 'serving', ratePerSecond: rates.speedEvents ?? 0 },
      { from: 'archiver', to: 'scheduler', ratePerSecond: 0 },
      { from: 'scheduler', to: 'serving', ratePerSecond: 0 },
    ],
  };
}
