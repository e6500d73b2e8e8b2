/**
 * Whether the lake holds the whole input of an interval: what a recalculation needs before its
 * rows may be final. The input of [from, to) is complete when
 *
 * 1. every hour of it is sealed: the clock passed its end plus the allowed lateness and the
 *    archiver landed everything appended to the log before then (`sealing.ts`), and
 * 2. the lake holds everything appended to the log before the check began: events posted for a
 *    past hour after its seal (a whole past day posted at once, a late batch) are in too.
 *
 * An event appended after the check is a late arrival of a sealed hour: the archiver records
 * it when it lands, and the scheduler reruns the recalculations that covered its hour.
 */
import { readFile } from 'node:fs/promises';
import { consumedPath, HOUR_MS } from './layout.ts';
import { lakeOffsets } from './manifest.ts';
import { sealedHours } from './sealing.ts';

/** What the check needs of the log: its partitions and their ends. */
export interface LogEndsReader {
  partitionCount(topic: string): Promise<number>;
  latestOffset(topic: string, partition: number): Promise<number>;
}

/** A partition whose records the lake does not hold yet. */
export interface LakeBacklog {
  topic: string;
  partition: number;
  /** Offsets below this are in the lake (or were dead-lettered or skipped). */
  lake: number;
  /** The log's end the check waits for. */
  log: number;
}

/** The state of an interval's input in the lake. */
export interface LakeInputState {
  from: number;
  to: number;
  complete: boolean;
  /** Starts of the interval's hours not sealed yet. */
  unsealedHours: number[];
  /** Partitions whose records up to the log ends read at the check are not all in the lake. */
  backlog: LakeBacklog[];
  /** What the input waits for, in words (empty when complete). */
  waitingFor: string;
}

/** Per topic, per partition: the log's end now. */
export async function readLogEnds(log: LogEndsReader, topics: readonly string[]): Promise<Record<string, number[]>> {
  const ends: Record<string, number[]> = {};
  for (const topic of topics) {
    let count: number;
    try {
      count = await log.partitionCount(topic);
    } catch (e) {
      // A topic that was never created holds nothing the lake could miss.
      if ((e as { code?: string }).code === 'RECKON_LOG_UNKNOWN_TOPIC') {
        ends[topic] = [];
        continue;
      }
      throw e;
    }
    const topicEnds: number[] = [];
    for (let p = 0; p < count; p++) topicEnds.push(await log.latestOffset(topic, p));
    ends[topic] = topicEnds;
  }
  return ends;
}

/** How far the lake holds a partition: its manifest, or what its archiver published as dealt with beyond it. */
async function lakePosition(lakeDir: string, topic: string, partition: number, manifest: number): Promise<number> {
  try {
    const v = JSON.parse(await readFile(consumedPath(lakeDir, topic, partition), 'utf8')) as { next?: unknown };
    return typeof v.next === 'number' ? Math.max(manifest, v.next) : manifest;
  } catch {
    return manifest;
  }
}

const hourText = (ms: number): string => `${new Date(ms).toISOString().slice(0, 13)}:00Z`;

/** Hours as ranges of consecutive ones: `2026-11-02T00:00Z..2026-11-02T05:00Z (6 hours)`. */
export function describeHours(hours: readonly number[]): string {
  const ranges: [number, number][] = [];
  for (const h of hours) {
    const last = ranges.at(-1);
    if (last !== undefined && h === last[1] + HOUR_MS) last[1] = h;
    else ranges.push([h, h]);
  }
  return ranges
    .map(([a, b]) => (a === b ? hourText(a) : `${hourText(a)}..${hourText(b)} (${(b - a) / HOUR_MS + 1} hours)`))
    .join(', ');
}

/** Options of {@link lakeInputState}. */
export interface LakeInputQuery {
  lakeDir: string;
  from: number;
  to: number;
  /** The log's ends the lake must reach (read at the start of the check). */
  ends: Record<string, number[]>;
  /** The allowed lateness the archiver seals with (for the words only). Default 1 hour. */
  allowedLatenessMs?: number;
  /** Default `Date.now()`. */
  now?: number;
}

/** The state of [from, to)'s input now, against log ends read before. */
export async function lakeInputState(q: LakeInputQuery): Promise<LakeInputState> {
  const lateness = q.allowedLatenessMs ?? HOUR_MS;
  const now = q.now ?? Date.now();
  const seals = await sealedHours(q.lakeDir);
  // Hours are sealed in order: every hour before the newest seal is sealed.
  const sealedBefore = seals.length === 0 ? undefined : (seals.at(-1)?.hourStartMs as number) + HOUR_MS;
  const unsealedHours: number[] = [];
  for (let h = q.from - (q.from % HOUR_MS); h < q.to; h += HOUR_MS)
    if (sealedBefore === undefined || h >= sealedBefore) unsealedHours.push(h);
  const backlog: LakeBacklog[] = [];
  for (const [topic, ends] of Object.entries(q.ends)) {
    const partitions = ends.map((_, p) => p);
    const manifests = await lakeOffsets(q.lakeDir, topic, partitions);
    for (const p of partitions) {
      const end = ends[p] as number;
      const lake = await lakePosition(q.lakeDir, topic, p, manifests.get(p) ?? 0);
      if (lake < end) backlog.push({ topic, partition: p, lake, log: end });
    }
  }
  const words: string[] = [];
  if (unsealedHours.length > 0) {
    const last = unsealedHours.at(-1) as number;
    const dueAt = last + HOUR_MS + lateness;
    words.push(
      `hours ${describeHours(unsealedHours)} are not sealed (${
        sealedBefore === undefined
          ? 'no hour of the lake is sealed yet'
          : `the lake is sealed up to ${hourText(sealedBefore)}`
      }): ${
        dueAt > now
          ? `the last of them seals after its allowed lateness, at ${new Date(dueAt).toISOString()}, once the archiver has caught up`
          : 'they are due; the archiver seals them once it has landed the log up to now (is it running?)'
      }`,
    );
  }
  if (backlog.length > 0) {
    const records = backlog.reduce((n, b) => n + (b.log - b.lake), 0);
    words.push(
      `the archiver has not landed ${records} record(s) of the log yet (${backlog
        .slice(0, 4)
        .map((b) => `${b.topic}/${b.partition} offsets ${b.lake}..${b.log - 1}`)
        .join(', ')}${backlog.length > 4 ? ` and ${backlog.length - 4} more partitions` : ''}; is it running?)`,
    );
  }
  return {
    from: q.from,
    to: q.to,
    complete: words.length === 0,
    unsealedHours,
    backlog,
    waitingFor: words.join('; '),
  };
}

/** Options of {@link awaitLakeInput}. */
export interface AwaitLakeInput {
  lakeDir: string;
  log: LogEndsReader;
  topics: readonly string[];
  from: number;
  to: number;
  /** How long to wait for the archiver to land what the log held at the start. Default 10 s. */
  waitMs?: number;
  /** How often to look. Default 200 ms. */
  pollMs?: number;
  allowedLatenessMs?: number;
  signal?: AbortSignal;
}

/**
 * Reads the log's ends once, then waits up to `waitMs` for the lake to hold them and for every
 * hour of [from, to) to be sealed; the state at the end (complete or not, and what it waits for).
 * Under live traffic the archiver lands a second's records every second, so the ends read at the
 * start are reached within a flush or two.
 */
export async function awaitLakeInput(o: AwaitLakeInput): Promise<LakeInputState> {
  const ends = await readLogEnds(o.log, o.topics);
  const deadline = Date.now() + (o.waitMs ?? 10_000);
  for (;;) {
    const state = await lakeInputState({
      lakeDir: o.lakeDir,
      from: o.from,
      to: o.to,
      ends,
      ...(o.allowedLatenessMs !== undefined ? { allowedLatenessMs: o.allowedLatenessMs } : {}),
    });
    if (state.complete || Date.now() >= deadline || o.signal?.aborted === true) return state;
    await new Promise((r) => setTimeout(r, o.pollMs ?? 200));
  }
}
