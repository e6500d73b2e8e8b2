/**
 * The archiver: every event of the `emissions` and `clicks` topics lands in the lake as Parquet,
 * Hive-partitioned by event date and hour, exactly once per log offset.
 *
 * It runs on the worker runtime with sink-kept offsets: records are decoded and buffered per log
 * partition; every `flushIntervalMs` (or when a partition holds `maxBufferedRows`) a partition's
 * buffer becomes one Parquet file per event hour, named by the buffer's offset range. Each file
 * is written under a temporary name, fsynced and renamed into its hour directory (fsynced); then
 * one line appended to the partition's manifest commits the flush, and the next start resumes
 * after it. Files renamed by a flush that never got its manifest line are listed in the
 * partition's pending file and removed on the next start, before anything is consumed: a
 * redelivered range is written again under the same name, never added twice.
 *
 * Several archivers may share the lake as one consumer group (`groupMembership`): each writes
 * the partitions the group gives it, holding each partition's lease (see `lease.ts`) so that a
 * handed-over partition is never written by two processes at once. The owner of the first
 * topic's partition 0 seals hours and records late arrivals (see `sealing.ts`), from the
 * manifests of every partition.
 */
import { readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { type Click, clickType, type Emission, emissionType, type EventDecoder } from '../events/index.ts';
import type { Log } from '../log/index.ts';
import {
  type RecordObserver,
  type TopicPartition,
  type WorkerOptions,
  type WorkerRecord,
  WorkerRuntime,
  type WorkerTask,
  type PartStatus,
  type PartitionStatus,
} from '../workers/index.ts';
import { crashPoint } from './crash-points.ts';
import { mkdirDurable, replaceJsonFile, syncDirectory, syncFile } from './durable-files.ts';
import { compactSealedHours } from './compaction.ts';
import { consumedPath, hourDirectory, hourPartition, manifestDirectory, partFileName, tmpDirectory } from './layout.ts';
import { PartitionLease } from './lease.ts';
import { lakeOffsets, PartitionManifest } from './manifest.ts';
import { LakeWriter } from './parquet.ts';
import { type ArchivedKind, StagingRows } from './staging.ts';
import { DEFAULT_ALLOWED_LATENESS_MS, earliestLakeHour, HourSealer } from './sealing.ts';

/** Options of {@link Archiver}. */
export interface ArchiverOptions {
  log: Log;
  /** The lake's root directory (e.g. `data/lake`). Archivers sharing a lake must share a group. */
  lakeDir: string;
  decoder: EventDecoder;
  /** Consumer group of the worker runtime (dead letters and gaps are kept under it). Default `archiver`. */
  group?: string;
  emissionsTopic?: string;
  clicksTopic?: string;
  /** Flush every partition's buffer this often. Default 1000 ms. */
  flushIntervalMs?: number;
  /** Start a partition's flush as soon as it has staged this many rows (consumption goes on meanwhile). Default 50 000. */
  flushRows?: number;
  /** Hold a partition's records while this many of its rows wait for the lake. Default 200 000. */
  maxBufferedRows?: number;
  /** Threads writing Parquet files. Default 1. */
  parquetThreads?: number;
  /** An hour is sealed this long after its end (once the archiver has caught up). Default 1 hour. */
  allowedLatenessMs?: number;
  /** The wall clock, for sealing and the times recorded in the lake. Default `Date.now`. */
  now?: () => number;
  /** Retries of a record that cannot be decoded, before it is dead-lettered (worker runtime defaults). */
  retry?: WorkerOptions['retry'];
  /** Share the partitions with the other archivers of the group (default: this one takes all). */
  groupMembership?: boolean;
  /** Where failures are reported. Default: stderr. */
  onError?: (message: string, error?: Error) => void;
  /**
   * Called when the archiver cannot go on (DuckDB failed while staging a row) and has stopped
   * consuming: restart it, and it resumes from the manifests. Default: report only.
   */
  onFatal?: (error: Error) => void;
}

/** Counters of an archiver, for tests, benchmarks and metrics. */
export interface ArchiverFigures {
  /** Events buffered. */
  events: number;
  /** Flushes committed, files and rows they wrote. */
  flushes: number;
  files: number;
  rows: number;
  /** Rows archived for hours that were already sealed. */
  lateRows: number;
  sealedHours: number;
  /** Topic-hours compacted (see `compaction.ts`). */
  compactedHours: number;
  /** Flushes that failed (and were retried). */
  failedFlushes: number;
}

interface PartitionState extends TopicPartition {
  kind: ArchivedKind;
  manifest: PartitionManifest;
  /** This process's hold on the partition. */
  lease: PartitionLease;
  /** Consumed-up-to last published for the sealer (records after the lake's end that were dead-lettered). */
  publishedConsumed: number;
  /** Where consumed records are staged now. */
  current: StagingRows;
  /** Swapped-out buffers not yet committed to the lake, oldest first. */
  closed: StagingRows[];
  /** Offsets below this are buffered or in the lake: a retried record below it is not buffered twice. */
  nextToBuffer: number;
  /** Offsets below this are in the lake (or where consumption started). */
  durableNext: number;
  /** A flush failed after renaming some files: they go before the next flush. */
  dirty: boolean;
  /** A flush of this partition is queued (staged rows reached `flushRows`). */
  flushQueued: boolean;
  /** This partition's flushes, one at a time (partitions flush side by side). */
  flushing: Promise<boolean>;
}

/** Rows of a partition not yet in the lake. */
const unflushedRows = (s: PartitionState) => s.current.rows + s.closed.reduce((n, t) => n + t.rows, 0);

const key = (topic: string, partition: number) => `${topic}/${partition}`;

/** Kill tests stop the archiver at a step of a flush with this variable (see `crash-points.ts`). */
export const FLUSH_CRASH_AT = 'RECKON_LAKE_FLUSH_CRASH_AT';
/** The steps of a flush, in order. */
export const FLUSH_STEPS = ['written', 'synced', 'pending', 'renamed-one', 'renamed', 'before-commit', 'committed'];

function isPromise<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | null)?.then === 'function';
}

/** The archiver: `start()`, `stop()`; `flush()` forces a flush and a seal pass. */
export class Archiver {
  readonly figures: ArchiverFigures = {
    events: 0,
    flushes: 0,
    files: 0,
    rows: 0,
    lateRows: 0,
    sealedHours: 0,
    compactedHours: 0,
    failedFlushes: 0,
  };
  private readonly o: Required<Omit<ArchiverOptions, 'retry' | 'onError' | 'onFatal' | 'groupMembership'>> &
    Pick<ArchiverOptions, 'retry' | 'onFatal' | 'groupMembership'>;
  private readonly report: (message: string, error?: Error) => void;

  /** What `/metrics` and the dashboard show of this archiver: its figures and, per partition, rows not yet in the lake. */
  metrics(): PartStatus['figures'] {
    const queues = this.runtime?.status() ?? [];
    return {
      events_total: this.figures.events,
      flushes_total: this.figures.flushes,
      files_total: this.figures.files,
      rows_total: this.figures.rows,
      late_rows_total: this.figures.lateRows,
      sealed_hours_total: this.figures.sealedHours,
      compactions_total: this.figures.compactedHours,
      failed_flushes_total: this.figures.failedFlushes,
      queued_bytes: queues.map((q) => ({
        labels: { topic: q.topic, partition: String(q.partition) },
        value: q.queuedBytes,
      })),
      in_flight_records: queues.map((q) => ({
        labels: { topic: q.topic, partition: String(q.partition) },
        value: q.inFlight,
      })),
    };
  }
  private readonly states = new Map<string, PartitionState>();
  private readonly kinds: Map<string, ArchivedKind>;
  private runtime: WorkerRuntime | undefined;
  private writer: LakeWriter | undefined;
  private sealer: HourSealer | undefined;
  /** The compaction pass running, if one is. */
  private compacting: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Flushes and seal passes, one at a time. */
  private chain: Promise<unknown> = Promise.resolve();
  private tickQueued = false;
  private stopping = false;
  private stopped: Promise<void> | undefined;
  private failed: Error | undefined;
  /** Hour directories known to exist durably. */
  private readonly knownDirs = new Set<string>();

  constructor(options: ArchiverOptions) {
    this.o = {
      group: 'archiver',
      emissionsTopic: 'emissions',
      clicksTopic: 'clicks',
      flushIntervalMs: 1000,
      flushRows: 50_000,
      parquetThreads: 1,
      maxBufferedRows: 200_000,
      allowedLatenessMs: DEFAULT_ALLOWED_LATENESS_MS,
      now: Date.now,
      ...options,
    };
    this.report = options.onError ?? ((m) => process.stderr.write(`reckon archiver: ${m}\n`));
    this.kinds = new Map([
      [this.o.emissionsTopic, 'emission'],
      [this.o.clicksTopic, 'click'],
    ]);
  }

  /** Recovers the lake (see the module comment) and starts consuming. */
  async start(): Promise<void> {
    const { o } = this;
    await mkdirDurable(o.lakeDir);
    this.sealer = await HourSealer.open(o.lakeDir, o.allowedLatenessMs);
    this.writer = await LakeWriter.create({ threads: o.parquetThreads });
    this.runtime = new WorkerRuntime({
      log: o.log,
      group: o.group,
      topics: [...this.kinds.keys()],
      groupMembership: o.groupMembership,
      sinkOffsets: {
        committed: (topic, partitions, stillAssigned) => this.recover(topic, partitions, stillAssigned),
      },
      taskFactory: (tp) => this.task(tp),
      // A record waits for its partition's flush when the buffer is full; a slow disk is not a failure.
      processingTimeoutMs: 10 * 60_000,
      ...(o.retry !== undefined ? { retry: o.retry } : {}),
      onError: this.report,
      onFatal: (e) => this.fatal(e),
    });
    await this.runtime.start();
    this.timer = setInterval(() => this.tick(), o.flushIntervalMs);
  }

  /** Stops consuming, flushes what was buffered, and closes the lake's files. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.stopping = true;
      if (this.timer !== undefined) clearInterval(this.timer);
      await this.runtime?.stop();
      if (this.failed === undefined) await this.flush();
      await this.chain;
      // Handed over at once: whoever takes a partition next need not wait for this one.
      await this.compacting;
      for (const s of [...this.states.values()]) await this.closePartition(s);
      await this.sealer?.close();
      this.writer?.close();
    })();
    return this.stopped;
  }

  /** The error that stopped the archiver, if one did. */
  get error(): Error | undefined {
    return this.failed;
  }

  /**
   * Flushes every partition's buffer now, then seals what can be sealed and compacts what is due
   * (when this archiver seals); resolves when all of that is done.
   */
  async flush(): Promise<void> {
    await this.flushAndSeal();
    await this.compacting;
  }

  /** A flush of every partition and a seal pass (which starts a compaction pass beside the flushes). */
  private flushAndSeal(): Promise<void> {
    return this.enqueue(async () => {
      if (this.failed !== undefined) return;
      const status = new Map((this.runtime?.status() ?? []).map((s) => [key(s.topic, s.partition), s]));
      // Partitions flush side by side: one's files are written while another's are synced.
      await Promise.all(
        [...this.states.values()].map(async (s) => {
          await this.flushPartition(s);
          await s.lease.keepFresh();
          await this.publishConsumed(s, status.get(key(s.topic, s.partition)));
        }),
      );
      if (this.states.has(key(this.o.emissionsTopic, 0))) await this.sealPass();
    });
  }

  /** Offsets below the returned one are dealt with: in the lake, or (idle) dead-lettered or skipped. */
  private consumedOf(s: PartitionState, st: PartitionStatus | undefined): number {
    const idle = unflushedRows(s) === 0 && st !== undefined && st.inFlight === 0;
    return idle ? Math.max(s.durableNext, st.fetchOffset) : s.durableNext;
  }

  /**
   * A partition whose last records were dead-lettered (or skipped) has dealt with more than its
   * manifest says: the sealer, which may be another process, reads that from `<partition>.consumed`.
   */
  private async publishConsumed(s: PartitionState, st: PartitionStatus | undefined): Promise<void> {
    const consumed = this.consumedOf(s, st);
    if (consumed <= s.durableNext || consumed <= s.publishedConsumed) return;
    await replaceJsonFile(consumedPath(this.o.lakeDir, s.topic, s.partition), { next: consumed });
    s.publishedConsumed = consumed;
  }

  /** Per topic, per partition: the offset up to which the lake holds the log. */
  positions(): Record<string, number[]> {
    const out: Record<string, number[]> = {};
    for (const s of this.states.values()) (out[s.topic] ??= [])[s.partition] = s.durableNext;
    return out;
  }

  /** The worker runtime's counters (dead letters, retries, ...). */
  get runtimeStats(): WorkerRuntime['stats'] | undefined {
    return this.runtime?.stats;
  }

  private enqueue<T>(work: () => Promise<T>): Promise<T> {
    const next = this.chain.then(work);
    this.chain = next.catch(() => undefined);
    return next;
  }

  private tick(): void {
    if (this.tickQueued) return;
    this.tickQueued = true;
    this.flushAndSeal()
      .catch((e: unknown) => this.report(`flush failed: ${(e as Error).message}`, e as Error))
      .finally(() => {
        this.tickQueued = false;
      });
  }

  /** The runtime's start positions, after undoing what a crash left half done in each partition. */
  private async recover(
    topic: string,
    partitions: number[],
    stillAssigned: (partition: number) => boolean,
  ): Promise<Map<number, number | 'declined'>> {
    const kind = this.kinds.get(topic) as ArchivedKind;
    const out = new Map<number, number | 'declined'>();
    for (const partition of partitions) {
      await mkdirDurable(manifestDirectory(this.o.lakeDir, topic));
      // A partition just handed over may still be committing its last flush elsewhere: wait for it,
      // unless the group moves it on meanwhile (its holder may be waiting for one of ours).
      const lease = await PartitionLease.acquire(this.o.lakeDir, topic, partition, {
        report: (m) => this.report(m),
        cancelled: () => this.stopping || !stillAssigned(partition),
      });
      if (lease === undefined) {
        out.set(partition, 'declined');
        continue;
      }
      const manifest = await PartitionManifest.recover(this.o.lakeDir, topic, partition);
      const start = manifest.committedNext ?? (await this.o.log.earliestOffset(topic, partition));
      this.states.set(key(topic, partition), {
        topic,
        partition,
        kind,
        manifest,
        lease,
        publishedConsumed: 0,
        current: new StagingRows(kind, `${topic}/${partition}`),
        closed: [],
        nextToBuffer: start,
        durableNext: start,
        dirty: false,
        flushQueued: false,
        flushing: Promise.resolve(true),
      });
      if (manifest.committedNext !== undefined) out.set(partition, manifest.committedNext);
    }
    return out;
  }

  private task(tp: TopicPartition): WorkerTask {
    const state = this.states.get(key(tp.topic, tp.partition)) as PartitionState;
    const decoder = this.o.decoder;
    const own = state.kind === 'emission' ? emissionType : clickType;
    const writerOf = decoder.writerOf;
    return {
      // Revoked (handed to another archiver of the group): commit what is buffered, then let go.
      close: () => (this.stopping ? undefined : this.handOver(state)),
      process: (record, observer) => {
        // A retry (after a timeout) of a record that made it into the buffer.
        if (record.offset < state.nextToBuffer) return observer.success();
        const value = record.value;
        // Written with reckon's own schema: staged from its bytes (the general path otherwise).
        if (
          writerOf !== undefined &&
          value.length > 5 &&
          value[0] === 0 &&
          writerOf(value.readUInt32BE(1)) === own &&
          state.current.addAvro(value, record.offset, this.o.now())
        ) {
          return this.buffered(state, record, observer);
        }
        let event: Emission | Click | Promise<Emission | Click>;
        try {
          event = state.kind === 'emission' ? decoder.emission(record.value) : decoder.click(record.value);
        } catch (e) {
          return observer.failure(e as Error);
        }
        if (isPromise(event)) {
          return event.then(
            (e) => this.buffer(state, e, record, observer),
            (e: unknown) => observer.failure(e as Error),
          );
        }
        return this.buffer(state, event, record, observer);
      },
    };
  }

  private buffer(
    state: PartitionState,
    event: Emission | Click,
    record: WorkerRecord,
    observer: RecordObserver,
  ): void | Promise<void> {
    try {
      state.current.add(event, record.offset, this.o.now());
    } catch (e) {
      // Nothing is staged before a row is whole; still, start over from the manifests.
      this.fatal(e as Error);
      return observer.failure(e as Error);
    }
    return this.buffered(state, record, observer);
  }

  /** A record is staged: counts it, and holds the partition while its buffer is full. */
  private buffered(state: PartitionState, record: WorkerRecord, observer: RecordObserver): void | Promise<void> {
    state.nextToBuffer = record.offset + 1;
    this.figures.events++;
    if (state.current.rows >= this.o.flushRows && !state.flushQueued) this.flushSoon(state);
    if (state.current.rows < this.o.maxBufferedRows && unflushedRows(state) < this.o.maxBufferedRows) {
      return observer.success();
    }
    return this.makeRoom(state).then(() => observer.success());
  }

  /** Queues a flush of one partition (a backlog is written while the next rows are staged). */
  private flushSoon(state: PartitionState): void {
    state.flushQueued = true;
    void this.flushPartition(state).finally(() => {
      state.flushQueued = false;
    });
  }

  private fatal(error: Error): void {
    if (this.failed !== undefined) return;
    this.failed = error;
    this.stopping = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.report(`stopping: ${error.message}; a restart resumes from the manifests`, error);
    void this.runtime?.stop().finally(() => this.o.onFatal?.(error));
  }

  /** Holds the partition's next record until its full table has been flushed (retrying with back-off). */
  private async makeRoom(state: PartitionState): Promise<void> {
    for (let attempt = 0; unflushedRows(state) >= this.o.maxBufferedRows && !this.stopping; attempt++) {
      if (await this.flushPartition(state)) return;
      await new Promise((r) => setTimeout(r, Math.min(5000, 100 * 2 ** attempt)));
    }
  }

  /**
   * Flushes one partition: swaps in an empty staging buffer, then commits every closed one in
   * order. On failure the closed buffers stay for the next try.
   */
  private flushPartition(state: PartitionState): Promise<boolean> {
    const next = state.flushing.then(() =>
      this.failed === undefined && this.states.get(key(state.topic, state.partition)) === state
        ? this.flushPartitionNow(state)
        : false,
    );
    state.flushing = next;
    return next;
  }

  private async flushPartitionNow(state: PartitionState): Promise<boolean> {
    try {
      if (state.dirty) {
        await state.manifest.discardUncommitted();
        state.dirty = false;
      }
      if (state.current.rows > 0) {
        state.closed.push(state.current);
        state.current = new StagingRows(state.kind, `${state.topic}/${state.partition}`);
      }
    } catch (e) {
      this.report(`preparing a flush of ${state.topic}/${state.partition} failed: ${(e as Error).message}`);
      return false;
    }
    while (state.closed.length > 0) {
      const table = state.closed[0] as StagingRows;
      try {
        await this.writeFlush(state, table);
      } catch (e) {
        state.dirty = true;
        this.figures.failedFlushes++;
        this.report(
          `flush of ${state.topic}/${state.partition} offsets ${table.from}..${table.to} failed (${(e as Error).message}); will retry`,
          e as Error,
        );
        return false;
      }
      state.closed.shift();
    }
    return true;
  }

  /** Writes a flush's files, moves them into place, records late arrivals, and commits the manifest line. */
  private async writeFlush(state: PartitionState, rows: StagingRows): Promise<void> {
    const { lakeDir } = this.o;
    const { topic, partition } = state;
    const { from, to } = rows;
    const hours = [...rows.hours.keys()].sort((a, b) => a - b);
    const tmpDir = tmpDirectory(lakeDir, topic, partition);
    const tmpPaths = new Map<number, string>();
    for (const h of hours) {
      const { date, hour } = hourPartition(h);
      tmpPaths.set(h, join(tmpDir, `.tmp-${date}-${hour}-${from}-${to}.parquet`));
    }
    const files = hours.map((h) => join(hourDirectory(topic, h), partFileName(partition, from, to)));
    try {
      await (this.writer as LakeWriter).writeHours(rows, partition, tmpPaths);
      crashPoint(FLUSH_CRASH_AT, 'written');
      await Promise.all([...tmpPaths.values()].map((p) => syncFile(p)));
      crashPoint(FLUSH_CRASH_AT, 'synced');
      await state.manifest.recordPending(from, to, files);
      crashPoint(FLUSH_CRASH_AT, 'pending');
      const dirs = new Set<string>();
      for (let i = 0; i < hours.length; i++) {
        const target = join(lakeDir, files[i] as string);
        await this.ensureDirectory(dirname(target));
        await rename(tmpPaths.get(hours[i] as number) as string, target);
        dirs.add(dirname(target));
        crashPoint(FLUSH_CRASH_AT, 'renamed-one');
      }
      await Promise.all([...dirs].map((d) => syncDirectory(d)));
      crashPoint(FLUSH_CRASH_AT, 'renamed');
    } finally {
      await Promise.all([...tmpPaths.values()].map((p) => rm(p, { force: true })));
    }
    const at = this.o.now();
    const perHour: Record<string, { rows: number; firstSeenAt: number }> = {};
    for (const [h, v] of rows.hours) perHour[String(h)] = { rows: v.rows, firstSeenAt: v.firstSeenAt };
    // Only the partition's owner commits (a lost lease stops this process; its files are undone).
    await state.lease.check();
    crashPoint(FLUSH_CRASH_AT, 'before-commit');
    await state.manifest.commit({ from, to, files, rows: rows.rows, hours: perHour, at });
    crashPoint(FLUSH_CRASH_AT, 'committed');
    state.durableNext = to + 1;
    this.figures.flushes++;
    this.figures.files += files.length;
    this.figures.rows += rows.rows;
  }

  /** Commits a revoked partition's buffer, closes it and releases its lease. */
  private handOver(state: PartitionState): Promise<void> {
    return this.enqueue(async () => {
      if (this.states.get(key(state.topic, state.partition)) !== state) return;
      for (let attempt = 0; unflushedRows(state) > 0 && attempt < 3 && this.failed === undefined; attempt++)
        await this.flushPartition(state);
      // What was not committed is the next owner's to write again, from the manifest.
      await this.closePartition(state);
    });
  }

  /**
   * Forgets a partition: closes its manifest, drops its staging tables and releases its lease
   * (after a failure the lease is left: the next owner takes it over, as from a crash).
   */
  private async closePartition(state: PartitionState): Promise<void> {
    this.states.delete(key(state.topic, state.partition));
    await state.manifest.close();
    if (this.failed === undefined) await state.lease.release().catch(() => undefined);
  }

  /** Creates an hour directory durably, once per process. */
  private async ensureDirectory(dir: string): Promise<void> {
    if (this.knownDirs.has(dir)) return;
    await mkdirDurable(dir);
    this.knownDirs.add(dir);
  }

  /** Seals the hours that are due once the lake holds everything appended before they were due. */
  private async sealPass(): Promise<void> {
    const sealer = this.sealer;
    const runtime = this.runtime;
    if (sealer === undefined || runtime === undefined) return;
    const topics = [...this.kinds.keys()];
    const partitions: Record<string, number> = {};
    for (const topic of topics) partitions[topic] = await this.o.log.partitionCount(topic);
    const sealed = await sealer.pass(this.o.now(), {
      logEnds: async () => {
        const ends: Record<string, number[]> = {};
        for (const topic of topics) {
          const n = partitions[topic] as number;
          ends[topic] = [];
          for (let p = 0; p < n; p++) (ends[topic] as number[]).push(await this.o.log.latestOffset(topic, p));
        }
        return ends;
      },
      consumed: async () => {
        // This archiver's partitions from its own state; the others from their manifests and
        // the consumed-up-to their owners published.
        const status = new Map(runtime.status().map((s) => [key(s.topic, s.partition), s]));
        const out: Record<string, number[]> = {};
        for (const topic of topics) {
          const all = Array.from({ length: partitions[topic] as number }, (_, p) => p);
          const inLake = await lakeOffsets(this.o.lakeDir, topic, all);
          out[topic] = [];
          for (const p of all) {
            const own = this.states.get(key(topic, p));
            (out[topic] as number[])[p] =
              own !== undefined
                ? this.consumedOf(own, status.get(key(topic, p)))
                : Math.max(inLake.get(p) ?? 0, await this.publishedConsumedOf(topic, p));
          }
        }
        return out;
      },
      earliestDataHour: () => earliestLakeHour(this.o.lakeDir, topics),
    });
    this.figures.sealedHours += sealed.length;
    const late = await sealer.scanLate(partitions, this.o.now());
    for (const l of late) this.figures.lateRows += l.count;
    // Sealed hours' small files are merged into a few (compaction.ts), beside the flushes (a big
    // hour takes seconds); one pass at a time, and a failed pass is taken up by the next.
    if (this.compacting !== undefined) return;
    this.compacting = compactSealedHours(this.o.lakeDir, topics, {
      now: this.o.now,
      checkOwner: async () => {
        const first = this.states.get(key(this.o.emissionsTopic, 0));
        if (first === undefined) throw new Error('this archiver no longer seals: it does not compact either');
        await first.lease.check();
      },
    })
      .then(
        (r) => {
          this.figures.compactedHours += r.hours.length;
        },
        (e: unknown) => this.report(`compacting sealed hours failed: ${(e as Error).message}`, e as Error),
      )
      .finally(() => {
        this.compacting = undefined;
      });
  }

  /** What another archiver published as dealt with in a partition (0 when nothing). */
  private async publishedConsumedOf(topic: string, partition: number): Promise<number> {
    try {
      const v = JSON.parse(await readFile(consumedPath(this.o.lakeDir, topic, partition), 'utf8')) as {
        next?: unknown;
      };
      return typeof v.next === 'number' ? v.next : 0;
    } catch {
      return 0;
    }
  }
}
