/**
 * What the monitor reads, and the figures it derives from it: log ends, each consumer group's
 * committed position and lag (the speed layer's offsets in the serving store, the archiver's in
 * the lake's manifests), dead-letter counts, sealed hours, the workers' status files and the
 * scheduler's counts. Everything comes from durable state, so the figures are right whichever
 * process serves them and however often the workers restart.
 */
import { REJECTED_TOPIC } from '../collector/index.ts';
import { HOUR_MS, lakeOffsets, lateArrivals, sealedHours } from '../lake/index.ts';
import type { Log } from '../log/index.ts';
import type { SchedulerStore } from '../store/index.ts';
import type { StatsStore } from '../stats/index.ts';
import { deadLetterTopic, type PartStatus, readStatuses } from '../workers/index.ts';

/** Where the monitor looks. */
export interface MonitorSources {
  log: Log;
  stats: StatsStore;
  scheduler: SchedulerStore;
  lakeDir: string;
  /** Status files of the worker processes. */
  statusDir: string;
  /** The event topics (per-DC ones too). */
  eventTopics: readonly string[];
  clock?: () => number;
}

/** A consumer group's position in one partition. */
export interface PartitionLag {
  group: 'speed' | 'archiver';
  topic: string;
  partition: number;
  end: number;
  committed: number;
  lag: number;
}

/** A status file older than this means its process is not running. */
export const STATUS_STALE_MS = 5000;

/** Consumer groups whose dead letters and positions the monitor reports. */
export const CONSUMER_GROUPS = ['speed', 'archiver'] as const;

/** End offset of every partition of `topic` (none when the topic does not exist). */
export async function topicEnds(log: Log, topic: string): Promise<number[]> {
  let partitions: number;
  try {
    partitions = await log.partitionCount(topic);
  } catch {
    return [];
  }
  const ends: number[] = [];
  for (let p = 0; p < partitions; p++) ends.push(await log.latestOffset(topic, p));
  return ends;
}

/** Lag of both consumer groups on every event topic partition. */
export async function consumerLags(sources: MonitorSources): Promise<PartitionLag[]> {
  const out: PartitionLag[] = [];
  for (const topic of sources.eventTopics) {
    const ends = await topicEnds(sources.log, topic);
    const partitions = ends.map((_, p) => p);
    const speed = await sources.stats.speedOffsets('speed', topic);
    const lake = await lakeOffsets(sources.lakeDir, topic, partitions);
    for (const p of partitions) {
      const end = ends[p] as number;
      for (const [group, at] of [
        ['speed', speed.get(p) ?? 0],
        ['archiver', lake.get(p) ?? 0],
      ] as const) {
        const committed = Math.min(at, end);
        out.push({ group, topic, partition: p, end, committed, lag: end - committed });
      }
    }
  }
  return out;
}

/** Records in each group's dead-letter topic (replay markers included), and the collector's rejected lines. */
export async function deadLetterCounts(sources: MonitorSources): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const group of CONSUMER_GROUPS) out[group] = (await topicEnds(sources.log, deadLetterTopic(group)))[0] ?? 0;
  out[REJECTED_TOPIC] = (await topicEnds(sources.log, REJECTED_TOPIC))[0] ?? 0;
  return out;
}

/** Up to where the lake's hours are sealed (epoch ms, exclusive), and how many late arrivals it recorded. */
export async function lakeState(
  sources: MonitorSources,
): Promise<{ sealedUntil: number | null; lateArrivals: number }> {
  const sealed = await sealedHours(sources.lakeDir);
  const last = sealed.at(-1);
  return {
    sealedUntil: last === undefined ? null : last.hourStartMs + HOUR_MS,
    lateArrivals: (await lateArrivals(sources.lakeDir)).length,
  };
}

/** A part's status as the monitor shows it: `processes` of them are up (a group may run several). */
export type WorkerStatus = PartStatus & { up: boolean; processes: number };

/**
 * The workers' status, one per part, marked up when fresh. The fresh files of a part's processes
 * (the members of a group) are merged: counts add up, `*_seconds` figures (times) take the
 * latest, per-partition series are put together (members hold different partitions). A part with
 * no fresh file shows its newest one, down.
 */
export function workerStatuses(sources: MonitorSources): WorkerStatus[] {
  const now = (sources.clock ?? Date.now)();
  const byPart = new Map<string, PartStatus[]>();
  for (const st of readStatuses(sources.statusDir)) byPart.set(st.part, [...(byPart.get(st.part) ?? []), st]);
  const out: WorkerStatus[] = [];
  for (const all of byPart.values()) {
    const up = all.filter((st) => now - st.at < STATUS_STALE_MS);
    if (up.length === 0) {
      const newest = all.reduce((a, b) => (b.at > a.at ? b : a));
      out.push({ ...newest, up: false, processes: 0 });
      continue;
    }
    out.push({ ...mergeStatuses(up), up: true, processes: up.length });
  }
  return out;
}

/** One status of several processes of a part (see `workerStatuses`). */
export function mergeStatuses(list: readonly PartStatus[]): PartStatus {
  const first = list[0] as PartStatus;
  const figures: PartStatus['figures'] = {};
  for (const st of list) {
    for (const [name, v] of Object.entries(st.figures)) {
      const had = figures[name];
      if (typeof v === 'number') {
        const prior = typeof had === 'number' ? had : undefined;
        figures[name] = prior === undefined ? v : name.endsWith('_seconds') ? Math.max(prior, v) : prior + v;
      } else {
        figures[name] = [...(Array.isArray(had) ? had : []), ...v];
      }
    }
  }
  return { part: first.part, pid: first.pid, at: Math.max(...list.map((st) => st.at)), figures };
}
