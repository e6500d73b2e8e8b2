/**
 * The pipeline's Prometheus metrics, read from durable state at each scrape (see `sources.ts`):
 * names are `reckon_<part>_<figure>` with base units (`_seconds`, `_bytes`, `_records`),
 * counters end in `_total`, and labels are `group`, `topic`, `partition`, `dag`, `task`, `state`,
 * `kind`, `placement`, `column`. The collector's own metrics and the reconciliation gauges are
 * registered by their parts in the same registry.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { REJECTED_TOPIC } from '../collector/index.ts';
import type { PartStatus } from '../workers/index.ts';
import {
  consumerLags,
  deadLetterCounts,
  lakeState,
  type MonitorSources,
  topicEnds,
  workerStatuses,
} from './sources.ts';

/** A figure of a status file as a list of labelled values (a plain number has no labels). */
function seriesOf(
  figure: PartStatus['figures'][string] | undefined,
): { labels: Record<string, string>; value: number }[] {
  if (figure === undefined) return [];
  return typeof figure === 'number' ? [{ labels: {}, value: figure }] : figure;
}

/** Registers every monitor metric in `registry`. */
export function registerPipelineMetrics(registry: Registry, s: MonitorSources): void {
  const now = () => (s.clock ?? Date.now)();
  const registers = [registry];
  const gauge = <L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    collect: (g: Gauge<L>) => Promise<void> | void,
  ) =>
    new Gauge<L>({
      name,
      help,
      labelNames,
      registers,
      async collect() {
        this.reset();
        await collect(this);
      },
    });
  /** A counter whose value is read from durable state at each scrape (it only grows there). */
  const counter = <L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    collect: (set: (labels: Partial<Record<L, string>>, value: number) => void) => Promise<void> | void,
  ) =>
    new Counter<L>({
      name,
      help,
      labelNames,
      registers,
      async collect() {
        this.reset();
        await collect((labels, value) => this.inc(labels as Record<L, string>, Math.max(0, value)));
      },
    });

  // Log and consumers.
  gauge(
    'reckon_log_end_offset',
    'Next offset of each event topic partition (records appended so far)',
    ['topic', 'partition'],
    async (g) => {
      for (const topic of s.eventTopics) {
        (await topicEnds(s.log, topic)).forEach((end, p) => g.set({ topic, partition: String(p) }, end));
      }
    },
  );
  const lags = async () => consumerLags(s);
  gauge(
    'reckon_consumer_committed_offset',
    'Where each consumer group resumes (speed: offsets in the serving store; archiver: the lake manifests)',
    ['group', 'topic', 'partition'],
    async (g) => {
      for (const l of await lags())
        g.set({ group: l.group, topic: l.topic, partition: String(l.partition) }, l.committed);
    },
  );
  gauge(
    'reckon_consumer_lag_records',
    'Records appended but not yet committed by the group',
    ['group', 'topic', 'partition'],
    async (g) => {
      for (const l of await lags()) g.set({ group: l.group, topic: l.topic, partition: String(l.partition) }, l.lag);
    },
  );
  gauge(
    'reckon_dead_letter_records',
    'Records in each dead-letter store: consumer groups (replay marks included) and the collector (rejected input)',
    ['group'],
    async (g) => {
      for (const [group, n] of Object.entries(await deadLetterCounts(s)))
        g.set({ group: group === REJECTED_TOPIC ? 'collector' : group }, n);
    },
  );

  // Lake.
  gauge(
    'reckon_lake_sealed_until_seconds',
    'End of the last sealed lake hour (Unix time); 0 before the first seal',
    [],
    async (g) => {
      g.set(((await lakeState(s)).sealedUntil ?? 0) / 1000);
    },
  );
  counter(
    'reckon_lake_late_arrivals_total',
    'Flushes that archived events for an hour already sealed (each reruns its recalculation)',
    [],
    async (set) => {
      set({}, (await lakeState(s)).lateArrivals);
    },
  );

  // Worker processes (their status files).
  const statuses = () => workerStatuses(s);
  gauge('reckon_worker_up', '1 when the part published its status in the last 5 s', ['part'], (g) => {
    for (const st of statuses()) g.set({ part: st.part }, st.up ? 1 : 0);
  });
  for (const [name, figureName, help] of [
    [
      'reckon_worker_queued_bytes',
      'queued_bytes',
      'Bytes fetched and queued, not yet processed, per consumer partition',
    ],
    ['reckon_worker_in_flight_records', 'in_flight_records', 'Records being processed, per consumer partition'],
  ] as const) {
    gauge(name, help, ['group', 'topic', 'partition'], (g) => {
      for (const st of statuses()) {
        if (!st.up) continue;
        for (const x of seriesOf(st.figures[figureName])) g.set({ group: st.part, ...x.labels }, x.value);
      }
    });
  }
  const figure = (part: string, name: string): number | undefined => {
    const st = statuses().find((x) => x.part === part && x.up);
    const v = st?.figures[name];
    return typeof v === 'number' ? v : undefined;
  };
  gauge('reckon_speed_joiner_emissions', 'Emissions the speed layer holds for joining clicks', [], (g) => {
    const v = figure('speed', 'joiner_emissions');
    if (v !== undefined) g.set(v);
  });
  gauge('reckon_speed_joiner_pending_clicks', 'Clicks waiting for their emission in the speed layer', [], (g) => {
    const v = figure('speed', 'joiner_pending_clicks');
    if (v !== undefined) g.set(v);
  });
  gauge(
    'reckon_speed_last_flush_age_seconds',
    'Time since the speed layer last wrote its deltas (freshness of speed rows)',
    [],
    (g) => {
      const end = figure('speed', 'last_flush_end_seconds');
      if (end !== undefined && end > 0) g.set(Math.max(0, now() / 1000 - end));
    },
  );
  gauge(
    'reckon_speed_watermark_seconds',
    'Latest event time the speed layer has seen, per partition (Unix time)',
    ['partition'],
    (g) => {
      for (const st of statuses()) {
        if (st.part !== 'speed' || !st.up) continue;
        for (const x of seriesOf(st.figures.watermark_seconds)) if (x.value > 0) g.set(x.labels, x.value);
      }
    },
  );
  for (const [part, name, help] of [
    ['speed', 'events_total', 'Events the speed layer has processed since it started'],
    ['archiver', 'rows_total', 'Rows the archiver has written to the lake since it started'],
    ['archiver', 'failed_flushes_total', 'Archiver flushes that failed and were retried since it started'],
    [
      'archiver',
      'compactions_total',
      'Compactions of a topic-hour (its files merged into a few) by the archiver since it started',
    ],
  ] as const) {
    counter(`reckon_${part}_${name}`, help, [], (set) => set({}, figure(part, name) ?? 0));
  }

  // Scheduler.
  const summary = () => s.scheduler.summary();
  gauge('reckon_dag_runs', 'DAG runs by state', ['dag', 'state'], async (g) => {
    for (const r of (await summary()).runs) g.set({ dag: r.dagId, state: r.state }, r.count);
  });
  gauge('reckon_task_instances', 'Task instances by state', ['dag', 'task', 'state'], async (g) => {
    for (const t of (await summary()).tasks) g.set({ dag: t.dagId, task: t.taskId, state: t.state }, t.count);
  });
  counter(
    'reckon_task_tries_total',
    'Finished tries by outcome (failed tries were retried or failed the task)',
    ['dag', 'task', 'state'],
    async (set) => {
      for (const t of (await summary()).tries) set({ dag: t.dagId, task: t.taskId, state: t.state }, t.count);
    },
  );
  counter('reckon_task_try_seconds_total', 'Time spent in finished tries', ['dag', 'task', 'state'], async (set) => {
    for (const t of (await summary()).tries) set({ dag: t.dagId, task: t.taskId, state: t.state }, t.seconds);
  });
  gauge(
    'reckon_task_last_duration_seconds',
    'Duration of the latest successful try of each task',
    ['dag', 'task'],
    async (g) => {
      for (const t of (await summary()).tries)
        if (t.state === 'success') g.set({ dag: t.dagId, task: t.taskId }, t.lastSeconds);
    },
  );
  counter('reckon_sla_misses_total', 'SLA misses recorded', ['dag', 'task'], async (set) => {
    for (const m of (await summary()).slaMisses) set({ dag: m.dagId, task: m.taskId }, m.count);
  });
  counter(
    'reckon_alerts_raised_total',
    'Alerts raised (task_retry, task_failed, sla_miss, discrepancy, anomaly)',
    ['kind'],
    async (set) => {
      const byKind = new Map<string, number>();
      for (const a of (await summary()).alerts) byKind.set(a.kind, (byKind.get(a.kind) ?? 0) + a.count);
      for (const [kind, n] of byKind) set({ kind }, n);
    },
  );
  gauge('reckon_alerts', 'Alerts by delivery state', ['kind', 'state'], async (g) => {
    for (const a of (await summary()).alerts) g.set({ kind: a.kind, state: a.state }, a.count);
  });
  gauge(
    'reckon_anomaly_score',
    'Latest robust score of each placement and column (beyond 5: an anomaly alert)',
    ['scope', 'placement', 'column'],
    async (g) => {
      for (const a of await s.scheduler.anomalyScores())
        g.set({ scope: a.scope, placement: a.placement, column: a.column }, a.score);
    },
  );
}
