/**
 * The speed layer on the worker runtime: consumes `emissions` and `clicks` (keyed by emission id,
 * so an emission and its clicks share a partition number), feeds one {@link SpeedEngine} per
 * partition, and writes the engines' minute deltas to the serving store together with the
 * offsets they cover, in one transaction: a crash never counts an event twice or loses one.
 *
 * Sources are aligned by event time: an engine's watermark is the lowest of its sources' (a
 * source that has read to the end of its partition and had nothing new for `idleSourceMs` does
 * not hold it back), so clicks never wait on an
 * emission that a lagging source has not delivered yet; a source that runs more than
 * `maxAheadMs` ahead of the others is paused until they catch up.
 *
 * State after a restart: the engine's state is a function of the set of events it has seen
 * within its horizon (the click window twice plus the allowed lateness and an hour), so it is
 * rebuilt by replaying that stretch of the log without emitting anything. Where to start the
 * replay is recorded at every flush (the group `<group>.replay` in the store): the first offset
 * after which every event is newer than the horizon. Replaying instead of persisting the state
 * keeps the store's write path to one small transaction per flush, and the log keeps what the
 * replay needs (its retention is far longer than the horizon).
 */
import { type Click, type Emission, type EventDecoder, type StatsRules } from '../events/index.ts';
import type { Log, LogRecord } from '../log/index.ts';
import {
  type PartStatus,
  type TaskContext,
  type TopicPartition,
  WorkerRuntime,
  type WorkerTask,
} from '../workers/index.ts';
import { type MinuteStatsColumns, RunColumnsBuilder, type RunColumns } from '../stats/index.ts';
import { SpeedEngine } from './engine.ts';
import { StreamMerger } from './merger.ts';

/** Where the speed layer writes: the serving store's speed side. */
export interface SpeedSink {
  /**
   * Adds deltas and records the group's next offsets, in one transaction; with `expected`, only
   * if each of those positions is still what the store holds (-1: none), else it fails with
   * RECKON_STATS_OFFSETS_MOVED and writes nothing.
   */
  applySpeedDeltas(
    group: string,
    deltas: MinuteStatsColumns,
    offsets: readonly { topic: string; partition: number; offset: number }[],
    expected?: readonly { topic: string; partition: number; offset: number }[],
  ): Promise<void>;
  /** The group's recorded next offsets. */
  speedOffsets(group: string, topic: string): Promise<Map<number, number>>;
}

/** Options of {@link SpeedLayer}. */
export interface SpeedLayerOptions {
  log: Log;
  sink: SpeedSink;
  decoder: EventDecoder;
  rules: StatsRules;
  allowedLatenessMs: number;
  /** Consumer group; offsets live in the store under it. Default `speed`. */
  group?: string;
  /** The emissions topic of a single data center. Default `emissions`. */
  emissionsTopic?: string;
  /** The clicks topic of a single data center. Default `clicks`. */
  clicksTopic?: string;
  /**
   * Per-DC emissions topics (e.g. `emissions.dc1`, `emissions.dc2`), merged per partition into
   * one stream ordered by event time. Replaces `emissionsTopic`; one topic skips the merger.
   */
  emissionsTopics?: string[];
  /** Per-DC clicks topics, merged like `emissionsTopics`. Replaces `clicksTopic`. */
  clicksTopics?: string[];
  /** Write deltas this often. Default 100 ms. */
  flushIntervalMs?: number;
  /**
   * A flush starts at least this many times the last flush's duration after it ended (up to
   * 1 s): with a store on this thread, writing then takes at most half the time and the rest
   * goes to counting. 0 for a store on a thread of its own, which writes while this one counts.
   * Default 1.
   */
  flushSpacing?: number;
  /** A source with no new record for this long does not hold the watermark back. Default 1 s. */
  idleSourceMs?: number;
  /** Pause a source whose event time runs this far ahead of the others. Default 10 minutes. */
  maxAheadMs?: number;
  /** Share partitions with other speed processes of the group. */
  groupMembership?: boolean;
  /**
   * A fixed share of the partitions, without group membership: process `index` of `of` takes
   * the partitions p with p % of === index (several speed processes on one machine, one core each).
   */
  share?: { index: number; of: number };
  onError?: (message: string, error?: Error) => void;
  /** Called with each live event in the order the engine takes it (tracing and tests). */
  observe?: (event: { partition: number; topic: string; kind: EventKind; ts: number }) => void;
  /**
   * Called when deltas could not be written: they are gone from memory, so the layer must restart
   * and replay from the recorded offsets. Default: report and stop consuming.
   */
  onFatal?: (error: Error) => void;
}

/** The kind of event a source topic carries. */
export type EventKind = 'emission' | 'click';

interface Source {
  topic: string;
  kind: EventKind;
  /** The latest event time processed. */
  watermark: number;
  /** Wall clock of the last record. */
  lastRecordAt: number;
  /** Next offset to process. */
  next: number;
  /** The end of the partition when last looked (a source behind it holds the watermark back). */
  end: number;
  /** Wall clock just before `end` was read. */
  endCheckedAt: number;
  /** Closed by the runtime (partition revoked or stopping). */
  closed: boolean;
  /** (next offset, watermark) at each flush, oldest first: where a replay may start. */
  checkpoints: { offset: number; watermark: number }[];
  context: TaskContext | undefined;
  paused: boolean;
}

interface PartitionEngine {
  partition: number;
  engine: SpeedEngine;
  /** The watermark the engine was last advanced to: its state reaches back from here. */
  aligned: number;
  sources: Map<string, Source>;
  /** Per kind with several (per-DC) topics: the merger that orders them. */
  mergers: Map<EventKind, StreamMerger>;
  ready: Promise<void>;
  /** The state has been rebuilt: until then nothing of this partition is flushed or advanced. */
  rebuilt: boolean;
}

const HOUR = 3_600_000;

/**
 * Pseudo-topic under which each partition's aligned watermark is recorded with the offsets, in
 * the same transaction: decisions taken up to it (waiting clicks given up) are not taken again
 * after a restart.
 */
export const ALIGNED_WATERMARK_TOPIC = '@aligned';

/** Event time between two replay checkpoints of a source. */
const CHECKPOINT_SPACING_MS = 60_000;
/**
 * In a group, how long a process waits after being given partitions before it reads their
 * offsets: the previous owner writes its last deltas when it lets them go, at the same moment.
 * (Should it take longer, the offset fence refuses the late writer's deltas and it restarts.)
 */
const HANDOVER_GRACE_MS = 1000;
/** How long flushes keep retrying a retriable store failure before the layer stops (ms). */
const MAX_UNWRITTEN_MS = 5 * 60_000;

/** A sink position: the next offset of a topic partition. */
type SinkPosition = { topic: string; partition: number; offset: number };

/** The positions of `earlier` and `later`, the later one of each (topic, partition) winning. */
function latestPositions(earlier: readonly SinkPosition[], later: readonly SinkPosition[]): SinkPosition[] {
  const byKey = new Map<string, SinkPosition>();
  for (const p of [...earlier, ...later]) byKey.set(`${p.topic}\u0000${p.partition}`, p);
  return [...byKey.values()];
}

/** Flushes start at most this far apart when spaced by their duration (see `flushSpacing`). */
const MAX_FLUSH_SPACING_MS = 1000;
/** Longest stretch of processing before timers and messages get a turn (ms). */
const YIELD_EVERY_MS = 10;

/** The speed layer: start, stop, and figures. */
export class SpeedLayer {
  private readonly o: Required<
    Omit<
      SpeedLayerOptions,
      'onError' | 'onFatal' | 'groupMembership' | 'emissionsTopics' | 'clicksTopics' | 'observe' | 'share'
    >
  > &
    Pick<SpeedLayerOptions, 'groupMembership' | 'onFatal' | 'observe' | 'share'>;
  /** Every source topic with the kind of event it carries. */
  private readonly topics: { topic: string; kind: EventKind }[];
  private failed: Error | undefined;
  /** What the last flush wrote, to skip writing when nothing moved. */
  private lastWritten = '';
  /** Per `topic/partition`: the offset this process last wrote or read (-1: none); flushes expect it. */
  private readonly written = new Map<string, number>();
  private readonly report: (message: string, error?: Error) => void;
  private readonly engines = new Map<number, PartitionEngine>();
  private runtime: WorkerRuntime | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  /** Drained deltas and positions a flush could not write (a retriable failure), written with the next. */
  private unwritten: { deltas: RunColumns; offsets: SinkPosition[]; replay: SinkPosition[] } | undefined;
  private unwrittenSince = 0;
  /** When the last flush that wrote ended, and how long it took (ms). */
  private lastFlushEnd = 0;
  private lastFlushMs = 0;
  /** When the last flush was started (timer or batch), and whether it is still writing. */
  private lastFlushStart = 0;
  private flushInFlight = false;
  /** When processing last let the event loop's other work in. */
  private sliceStart = 0;
  private flushing: Promise<void> = Promise.resolve();
  /** Where flushes drain the engines' deltas (its arrays are kept from flush to flush). */
  private readonly drained = new RunColumnsBuilder();
  /** Figures for tests, benchmarks and metrics. */
  readonly figures = { events: 0, flushes: 0, deltas: 0, replayed: 0, retriedFlushes: 0 };

  /**
   * What `/metrics` and the dashboard show of this speed layer: joiner state, per partition its
   * watermark, queued bytes and records in flight, and when the last flush ended.
   */
  metrics(): PartStatus['figures'] {
    const engines = [...this.engines.values()];
    const state = engines.map((p) => ({ partition: String(p.partition), ...p.engine.state() }));
    const queues = this.runtime?.status() ?? [];
    const series = (pick: (q: (typeof queues)[number]) => number) =>
      queues.map((q) => ({ labels: { topic: q.topic, partition: String(q.partition) }, value: pick(q) }));
    return {
      events_total: this.figures.events,
      flushes_total: this.figures.flushes,
      deltas_total: this.figures.deltas,
      // lastFlushEnd is on the monotonic clock: published as wall-clock time.
      last_flush_end_seconds:
        this.lastFlushEnd === 0 ? 0 : (Date.now() - (performance.now() - this.lastFlushEnd)) / 1000,
      last_flush_duration_seconds: this.lastFlushMs / 1000,
      joiner_emissions: state.reduce((n, s) => n + s.emissions, 0),
      joiner_pending_clicks: state.reduce((n, s) => n + s.pendingClicks, 0),
      watermark_seconds: state.map((s) => ({ labels: { partition: s.partition }, value: s.watermark / 1000 })),
      queued_bytes: series((q) => q.queuedBytes),
      queued_records: series((q) => q.queuedRecords),
      in_flight_records: series((q) => q.inFlight),
    };
  }

  constructor(options: SpeedLayerOptions) {
    this.o = {
      group: 'speed',
      emissionsTopic: 'emissions',
      clicksTopic: 'clicks',
      flushIntervalMs: 100,
      flushSpacing: 1,
      idleSourceMs: 1000,
      maxAheadMs: 10 * 60_000,
      ...options,
    };
    this.report = options.onError ?? ((m) => process.stderr.write(`reckon speed: ${m}\n`));
    const emissions = options.emissionsTopics ?? [this.o.emissionsTopic];
    const clicks = options.clicksTopics ?? [this.o.clicksTopic];
    if (emissions.length === 0 || clicks.length === 0)
      throw new Error('the speed layer needs emissions and clicks topics');
    this.topics = [
      ...emissions.map((topic) => ({ topic, kind: 'emission' as const })),
      ...clicks.map((topic) => ({ topic, kind: 'click' as const })),
    ];
    const names = this.topics.map((t) => t.topic);
    const twice = names.find((t, i) => names.indexOf(t) !== i);
    if (twice !== undefined) throw new Error(`topic ${twice} is named twice among the speed layer's sources`);
  }

  /** How far back the engine's state reaches behind its watermark. */
  private get horizonMs(): number {
    const { clickWindowMs } = this.o.rules;
    const lateness = this.o.allowedLatenessMs;
    // Emissions and click ids for two click windows plus the lateness; user-hour counters for the
    // lateness plus two hours; and an hour more.
    return Math.max(2 * clickWindowMs + lateness, lateness + 2 * HOUR) + HOUR;
  }

  /** Starts consuming. */
  async start(): Promise<void> {
    const { o } = this;
    const sink = o.sink;
    const share = o.share;
    let assignment: TopicPartition[] | undefined;
    if (share !== undefined) {
      if (
        !Number.isInteger(share.of) ||
        share.of < 1 ||
        !Number.isInteger(share.index) ||
        share.index < 0 ||
        share.index >= share.of
      )
        throw new Error(`speed share ${share.index} of ${share.of}: expected 0 <= index < of`);
      assignment = [];
      for (const { topic } of this.topics) {
        const n = await o.log.partitionCount(topic);
        for (let p = share.index; p < n; p += share.of) assignment.push({ topic, partition: p });
      }
    }
    this.runtime = new WorkerRuntime({
      ...(assignment === undefined ? {} : { assignment }),
      log: o.log,
      group: o.group,
      topics: this.topics.map((t) => t.topic),
      groupMembership: o.groupMembership,
      sinkOffsets: {
        committed: async (topic) => {
          if (o.groupMembership === true) await new Promise((r) => setTimeout(r, HANDOVER_GRACE_MS));
          return sink.speedOffsets(o.group, topic);
        },
      },
      punctuateIntervalMs: Math.min(250, o.flushIntervalMs),
      taskFactory: (tp) => this.task(tp),
      onError: this.report,
      onFatal: (e) => this.fatal(e),
    });
    await this.runtime.start();
    this.flushTimer = setInterval(() => {
      this.flushWhenDue();
      void this.refreshEnds();
    }, o.flushIntervalMs);
  }

  /**
   * Starts a flush when one is due: `flushIntervalMs` after the last one started, and spaced by
   * the last one's duration. Called by the timer and after each batch of records, since a
   * backlog is processed in a chain that gives timers no turn until it is done.
   */
  private flushWhenDue(): void {
    const now = performance.now();
    if (now - this.lastFlushStart < this.o.flushIntervalMs || this.flushInFlight) return;
    // A flush that takes long (catching up: many new rows) spaces the next ones out, so that
    // writing takes at most half the time and the rest goes to counting. (Measured at 50,000
    // events/s: spacing 1 gave freshness p99 0.85-0.96 s; 2 gave 1.4 s, 5 gave 4.1 s.)
    const spacing = Math.min(this.o.flushSpacing * this.lastFlushMs, MAX_FLUSH_SPACING_MS);
    if (now - this.lastFlushEnd < spacing) return;
    this.lastFlushStart = now;
    this.flushInFlight = true;
    this.flush()
      .catch((e: unknown) => this.fatal(e as Error))
      .finally(() => {
        this.flushInFlight = false;
      });
  }

  private fatal(e: Error): void {
    if (this.flushTimer !== undefined) clearInterval(this.flushTimer);
    if (this.o.onFatal !== undefined) return this.o.onFatal(e);
    this.report(`stopping: ${e.message}`, e);
    void this.runtime?.stop();
  }

  /** Stops consuming, then writes what was processed. */
  async stop(): Promise<void> {
    if (this.flushTimer !== undefined) clearInterval(this.flushTimer);
    await this.runtime?.stop();
    if (this.failed === undefined) await this.flush();
  }

  /** Sizes of every partition's state. */
  state(): { partition: number; emissions: number; pendingClicks: number; watermark: number }[] {
    return [...this.engines.values()].map((p) => ({ partition: p.partition, ...p.engine.state() }));
  }

  private engineFor(partition: number): PartitionEngine {
    let p = this.engines.get(partition);
    if (p !== undefined) return p;
    const engine = new SpeedEngine(this.o.rules, { allowedLatenessMs: this.o.allowedLatenessMs });
    const sources = new Map<string, Source>();
    for (const { topic, kind } of this.topics) {
      sources.set(topic, {
        topic,
        kind,
        watermark: Number.NEGATIVE_INFINITY,
        lastRecordAt: 0,
        next: 0,
        end: Number.POSITIVE_INFINITY,
        endCheckedAt: 0,
        closed: false,
        checkpoints: [],
        context: undefined,
        paused: false,
      });
    }
    const mergers = new Map<EventKind, StreamMerger>();
    for (const kind of ['emission', 'click'] as const) {
      const of = this.topics.filter((t) => t.kind === kind).map((t) => t.topic);
      if (of.length > 1) mergers.set(kind, new StreamMerger(of));
    }
    p = {
      partition,
      engine,
      aligned: Number.NEGATIVE_INFINITY,
      sources,
      mergers,
      ready: Promise.resolve(),
      rebuilt: false,
    };
    const created = p;
    p.ready = this.rebuild(p).then(() => {
      created.rebuilt = true;
    });
    this.engines.set(partition, p);
    return p;
  }

  /** Replays the stretch of the log the state needs, emitting nothing. */
  private async rebuild(p: PartitionEngine): Promise<void> {
    const { o } = this;
    const replayGroup = `${o.group}.replay`;
    for (const { topic } of this.topics) {
      const committed = (await o.sink.speedOffsets(o.group, topic)).get(p.partition);
      this.written.set(`${topic}/${p.partition}`, committed ?? -1);
      const source = p.sources.get(topic) as Source;
      if (committed === undefined) {
        // A first start reads from the earliest offset: a replay would start there too.
        const earliest = await o.log.earliestOffset(topic, p.partition);
        source.next = earliest;
        source.checkpoints.push({ offset: earliest, watermark: Number.NEGATIVE_INFINITY });
        continue;
      }
      const from = Math.max(
        (await o.sink.speedOffsets(replayGroup, topic)).get(p.partition) ?? 0,
        await o.log.earliestOffset(topic, p.partition),
      );
      for (let offset = from; offset < committed;) {
        const records = await o.log.read(topic, p.partition, offset, { maxBytes: 4 << 20 });
        if (records.length === 0) {
          throw new Error(
            `rebuilding ${topic}/${p.partition}: the log ends at offset ${offset} but the store records ` +
              `${committed} as processed; the log has lost records the statistics already count`,
          );
        }
        for (const r of records) {
          if (r.offset >= committed) break;
          const fed = this.feed(p, source, r, false);
          if (fed !== undefined) await fed;
          this.figures.replayed++;
        }
        offset = (records[records.length - 1] as LogRecord).offset + 1;
      }
      source.next = committed;
      source.checkpoints.push({ offset: from, watermark: Number.NEGATIVE_INFINITY });
    }
    // Waiting clicks given up before the restart are given up again, silently.
    const aligned = (await o.sink.speedOffsets(o.group, ALIGNED_WATERMARK_TOPIC)).get(p.partition);
    if (aligned !== undefined) {
      p.aligned = aligned;
      p.engine.advance(aligned);
    }
    p.engine.drain(); // replayed events were counted before the restart
    // A restart counts as activity: a source is not taken for idle before it has had time to read.
    const now = Date.now();
    for (const s of p.sources.values()) s.lastRecordAt = now;
  }

  private task(tp: TopicPartition): WorkerTask {
    const p = this.engineFor(tp.partition);
    const source = p.sources.get(tp.topic) as Source;
    const merger = p.mergers.get(source.kind);
    const process: WorkerTask['process'] = async (record, observer) => {
      try {
        await this.feed(p, source, record, true);
        this.o.observe?.({ partition: p.partition, topic: source.topic, kind: source.kind, ts: record.timestamp });
        if (merger !== undefined) {
          merger.taken(source.topic, record.timestamp);
          this.offerMerged(p, source);
        }
        observer.success();
      } catch (e) {
        observer.failure(e as Error);
      }
    };
    // Without a merger, records go in batches: one completion per batch instead of per record.
    // A retried batch skips the records it already fed (offsets below `next`), so a record that
    // cannot be decoded never makes the ones before it count twice.
    const processBatch: WorkerTask['processBatch'] = async (records, observer) => {
      try {
        for (const record of records) {
          if (record.offset < source.next) continue;
          const fed = this.feed(p, source, record, true);
          if (fed !== undefined) await fed;
          this.o.observe?.({ partition: p.partition, topic: source.topic, kind: source.kind, ts: record.timestamp });
        }
        // A source paused for running ahead resumes as soon as the others catch up, not at the
        // next punctuation: on a day compressed into seconds, 10 minutes of event time is a few
        // thousand events, and waiting 100 ms each time would bound the layer to that per 100 ms.
        if (source.watermark > p.aligned) this.align(p);
        this.flushWhenDue();
        // A backlog is processed in a chain of promises, which gives timers and messages (the
        // flush timer, a store thread's answers) no turn: let them in now and then.
        if (performance.now() - this.sliceStart >= YIELD_EVERY_MS) {
          await new Promise((resolve) => setImmediate(resolve));
          this.sliceStart = performance.now();
        }
        observer.success();
      } catch (e) {
        observer.failure(e as Error);
      }
    };
    return {
      init: async (context) => {
        source.context = context;
        source.closed = false;
        await p.ready;
      },
      ...(merger === undefined ? { processBatch } : {}),
      // Per-DC streams of one kind go through the merger: a head waits until it is the earliest.
      ...(merger !== undefined
        ? { accept: (record: { timestamp: number }) => merger.mayTake(source.topic, record.timestamp) }
        : {}),
      process,
      punctuate: () => this.align(p),
      close: () => {
        source.closed = true;
        source.context = undefined;
        merger?.dropHead(source.topic);
        // The partition's last write from here goes at once: its next owner is about to read it.
        if ([...p.sources.values()].every((s) => s.closed) && p.rebuilt)
          return this.flush().catch((e: unknown) => this.fatal(e as Error));
        return undefined;
      },
    };
  }

  /** After a merged stream moved, offers the other streams of its kind their waiting heads again. */
  private offerMerged(p: PartitionEngine, moved: Source): void {
    for (const s of p.sources.values()) if (s !== moved && s.kind === moved.kind) s.context?.offer();
  }

  /**
   * Decodes a record and counts it; a live record also moves its source's next offset, in the
   * same synchronous step as the engine takes it, so a flush (which may start between any two
   * steps of a batch) never writes a record's deltas without its offset or the other way round.
   * Returns a promise only when the decoder had to fetch a schema.
   */
  private feed(
    p: PartitionEngine,
    source: Source,
    r: { value: Buffer; offset: number },
    live: boolean,
  ): Promise<void> | undefined {
    const { decoder } = this.o;
    const decoded = source.kind === 'emission' ? decoder.emission(r.value) : decoder.click(r.value);
    if (decoded instanceof Promise) return decoded.then((event) => this.take(p, source, r, event, live));
    this.take(p, source, r, decoded, live);
    return undefined;
  }

  private take(
    p: PartitionEngine,
    source: Source,
    r: { offset: number },
    event: Emission | Click,
    live: boolean,
  ): void {
    if (source.kind === 'emission') p.engine.emission(event as Emission);
    else p.engine.click(event as Click);
    if (event.ts > source.watermark) source.watermark = event.ts;
    if (live) {
      source.next = r.offset + 1;
      source.lastRecordAt = Date.now();
      this.figures.events++;
    }
  }

  private refreshing = false;

  /** Looks up where each source's partition ends, so that a source behind it is never taken for idle. */
  private async refreshEnds(): Promise<void> {
    if (this.refreshing) return;
    this.refreshing = true;
    try {
      for (const p of this.engines.values()) {
        for (const s of p.sources.values()) {
          const at = Date.now();
          s.end = await this.o.log.latestOffset(s.topic, p.partition);
          s.endCheckedAt = at;
        }
      }
    } catch (e) {
      this.report(`reading the end of the log failed: ${(e as Error).message}`);
    } finally {
      this.refreshing = false;
    }
  }

  /** Advances the engine to its sources' common watermark, and pauses a source that runs ahead. */
  private align(p: PartitionEngine): void {
    if (!p.rebuilt) return;
    // A source holds the watermark back unless it was found at the end of its partition after a
    // quiet spell of `idleSourceMs`.
    const idle = (s: Source) => s.next >= s.end && s.endCheckedAt - s.lastRecordAt >= this.o.idleSourceMs;
    for (const s of p.sources.values()) {
      // A DC that has gone quiet must not hold the merged stream back.
      if (p.mergers.get(s.kind)?.setIdle(s.topic, idle(s))) this.offerMerged(p, s);
    }
    // Each kind of event is one stream: merged per-DC topics are ordered by the merger, so the
    // kind stands at the latest event time taken from any of them.
    const kinds = (['emission', 'click'] as const).map((kind) => {
      const streams = [...p.sources.values()].filter((s) => s.kind === kind);
      return {
        streams,
        watermark: Math.max(...streams.map((s) => s.watermark)),
        active: streams.some((s) => !idle(s)),
      };
    });
    const active = kinds.filter((k) => k.active);
    const watermark =
      active.length > 0 ? Math.min(...active.map((k) => k.watermark)) : Math.max(...kinds.map((k) => k.watermark));
    if (Number.isFinite(watermark) && watermark > p.aligned) {
      p.aligned = watermark;
      p.engine.advance(watermark);
    }
    for (const k of kinds) {
      // The kind that runs ahead waits, all its streams together (pausing one DC would stall its merger).
      const ahead = k.watermark - watermark > this.o.maxAheadMs && active.length > 1;
      for (const s of k.streams) {
        if (ahead && !s.paused) s.context?.pause();
        if (!ahead && s.paused) s.context?.resume();
        s.paused = ahead;
      }
    }
  }

  /** Writes every engine's deltas with the offsets they cover; one transaction. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (this.failed !== undefined) throw this.failed;
      // Drained synchronously with the offsets: the deltas cover exactly the records before them.
      // What an earlier flush could not write goes in too; later positions replace its ones.
      const held = this.unwritten;
      const deltas = this.drained;
      if (held !== undefined) deltas.append(held.deltas);
      const offsets: { topic: string; partition: number; offset: number }[] = [];
      const replay: { topic: string; partition: number; offset: number }[] = [];
      for (const [partition, p] of this.engines) {
        if (!p.rebuilt) continue;
        p.engine.drainInto(deltas);
        if (Number.isFinite(p.aligned))
          offsets.push({ topic: ALIGNED_WATERMARK_TOPIC, partition: p.partition, offset: p.aligned });
        // A partition handed to another process: this was its last write from here.
        if ([...p.sources.values()].every((s) => s.closed)) this.engines.delete(partition);
        // The state reaches back from the watermark the engine was advanced to, not from the
        // newest event seen: a source running ahead must not move the replay start.
        const horizon = p.aligned - this.horizonMs;
        for (const s of p.sources.values()) {
          offsets.push({ topic: s.topic, partition: p.partition, offset: s.next });
          // One checkpoint per minute of event time is enough: an earlier start only replays more.
          const last = s.checkpoints[s.checkpoints.length - 1];
          if (last === undefined || s.watermark >= last.watermark + CHECKPOINT_SPACING_MS)
            s.checkpoints.push({ offset: s.next, watermark: s.watermark });
          // The replay may start at the latest checkpoint whose events are all older than the horizon.
          while (s.checkpoints.length > 1 && (s.checkpoints[1] as Source['checkpoints'][number]).watermark <= horizon)
            s.checkpoints.shift();
          replay.push({
            topic: s.topic,
            partition: p.partition,
            offset: (s.checkpoints[0] as { offset: number }).offset,
          });
        }
      }
      const all = deltas.take();
      const positions = held === undefined ? offsets : latestPositions(held.offsets, offsets);
      const starts = held === undefined ? replay : latestPositions(held.replay, replay);
      const written = JSON.stringify(positions);
      if (all.length === 0 && written === this.lastWritten) return;
      const started = performance.now();
      // Fenced: where another process has moved a partition on since, nothing is written.
      const expected = positions
        .filter((q) => q.topic !== ALIGNED_WATERMARK_TOPIC)
        .map((q) => ({ ...q, offset: this.written.get(`${q.topic}/${q.partition}`) ?? -1 }));
      try {
        await this.o.sink.applySpeedDeltas(this.o.group, all, positions, expected);
      } catch (e) {
        const err = e as Error & { retriable?: boolean };
        // A busy or unreachable store (another writer holding the SQLite lock through a long
        // batch write, a PostgreSQL failover): keep what was drained and write it with the next
        // flush, for a while. Deltas and offsets still go in together, so nothing counts twice.
        if (err.retriable === true && held === undefined) this.unwrittenSince = performance.now();
        if (err.retriable === true && performance.now() - this.unwrittenSince < MAX_UNWRITTEN_MS) {
          this.unwritten = { deltas: all, offsets: positions, replay: starts };
          this.figures.retriedFlushes++;
          this.report(`writing speed deltas failed: ${err.message}; retrying with the next flush`);
          return;
        }
        this.failed = err;
        this.report(`writing speed deltas failed: ${err.message}; a restart replays them from the log`, err);
        throw e;
      }
      this.unwritten = undefined;
      for (const q of positions)
        if (q.topic !== ALIGNED_WATERMARK_TOPIC) this.written.set(`${q.topic}/${q.partition}`, q.offset);
      try {
        // Replay starts only ever need to be early enough: written after, and a crash between the
        // two writes (or a failed write) leaves an earlier, longer, still correct replay.
        await this.o.sink.applySpeedDeltas(`${this.o.group}.replay`, new RunColumnsBuilder().take(), starts);
      } catch (e) {
        const err = e as Error & { retriable?: boolean };
        if (err.retriable !== true) {
          this.failed = err;
          this.report(`writing replay starts failed: ${err.message}; a restart replays from the log`, err);
          throw e;
        }
        this.report(`writing replay starts failed: ${err.message}; the next flush writes newer ones`);
      }
      this.lastWritten = written;
      this.lastFlushEnd = performance.now();
      this.lastFlushMs = this.lastFlushEnd - started;
      this.figures.flushes++;
      this.figures.deltas += all.length;
    });
    return this.flushing;
  }
}
