/**
 * WorkerRuntime: consumes topics of a {@link Log} with one fetch loop, buffers records in bounded
 * per-sub-partition queues, hands them to tasks in offset order, and commits only contiguously
 * processed offsets. The TypeScript counterpart of RTB House's Kafka Workers, with the queue
 * semantics of a visibility timeout, redelivery and a dead-letter queue.
 */
import { ReckonError } from '../events/index.ts';
import type { GroupMember, Log, LogRecord } from '../log/index.ts';
import { ensureGroupTopics, recordGap, writeDeadLetters } from './dead-letters.ts';
import { ContiguousOffsetTracker } from './offsets.ts';
import { Completion, type CompletionHandler, QueuedRecord, SubPartitionQueue } from './sub-partition-queue.ts';
import type { TaskContext, TopicPartition, WorkerOptions, WorkerTask } from './types.ts';

/** Feeding tasks from a backlog returns to the event loop at least this often (ms). */
const YIELD_EVERY_MS = 25;

interface PartitionState extends TopicPartition {
  tracker: ContiguousOffsetTracker;
  fetchOffset: number;
  subs: SubPartitionQueue<PartitionState>[];
  pausedByPressure: boolean;
  pausedByTask: boolean;
  /** Handed over to another member: no new records are taken. */
  revoked: boolean;
  lastCommitted: number;
}

/** Counters of a runtime, for metrics and tests. */
export interface WorkerStats {
  processed: number;
  failed: number;
  retried: number;
  timedOut: number;
  deadLettered: number;
  skipped: number;
  pauses: number;
  commits: number;
}

/** One partition's state, for metrics. */
export interface PartitionStatus extends TopicPartition {
  fetchOffset: number;
  committed: number;
  queuedRecords: number;
  queuedBytes: number;
  inFlight: number;
  paused: boolean;
}

/** Resolves when `wake()` is called; re-armed by each `wait()`. */
class Wakeup {
  private resolve: (() => void) | undefined;
  wait(ms: number): Promise<void> {
    return new Promise((r) => {
      const done = (): void => {
        clearTimeout(timer);
        if (this.resolve === done) this.resolve = undefined;
        r();
      };
      const timer = setTimeout(done, ms);
      this.resolve = done;
    });
  }
  wake(): void {
    this.resolve?.();
  }
}

/** The worker runtime. Create, `start()`, and `stop()` (also on SIGTERM: see {@link stopOnSignals}). */
export class WorkerRuntime implements CompletionHandler<PartitionState> {
  readonly stats: WorkerStats = {
    processed: 0,
    failed: 0,
    retried: 0,
    timedOut: 0,
    deadLettered: 0,
    skipped: 0,
    pauses: 0,
    commits: 0,
  };
  private readonly log: Log;
  private parts: PartitionState[] = [];
  private member: GroupMember | undefined;
  private rebalancing: Promise<void> = Promise.resolve();
  /** The group's newest assignment to this member (applied by the `rebalancing` chain). */
  private newestAssignment: TopicPartition[] = [];
  private wanted = new Set<string>();
  private running = false;
  private stopping = false;
  private fatal: Error | undefined;
  private fetchLoopDone: Promise<void> = Promise.resolve();
  private commitTimer: NodeJS.Timeout | undefined;
  private punctuateTimer: NodeJS.Timeout | undefined;
  /** When a drain last returned to the event loop (see {@link drain}). */
  private yieldedAt = 0;
  private fedSinceClock = 0;
  private committing: Promise<void> = Promise.resolve();
  private readonly wakeup = new Wakeup();
  private fetchAbort: AbortController | undefined;
  private readonly o: Required<
    Omit<
      WorkerOptions,
      | 'partitioner'
      | 'assignment'
      | 'sinkOffsets'
      | 'retry'
      | 'catchUp'
      | 'groupMembership'
      | 'revokeTimeoutMs'
      | 'onFatal'
    >
  > &
    Pick<
      WorkerOptions,
      'partitioner' | 'assignment' | 'sinkOffsets' | 'groupMembership' | 'revokeTimeoutMs' | 'onFatal'
    > & {
      maxAttempts: number;
      initialBackoffMs: number;
      maxBackoffMs: number;
      catchUp: NonNullable<WorkerOptions['catchUp']>;
    };

  constructor(options: WorkerOptions) {
    this.log = options.log;
    this.o = {
      ...options,
      queueBytes: options.queueBytes ?? 1024 * 1024,
      resumeRatio: options.resumeRatio ?? 0.5,
      processingTimeoutMs: options.processingTimeoutMs ?? 30_000,
      commitIntervalMs: options.commitIntervalMs ?? 1000,
      guarantee: options.guarantee ?? 'at_least_once',
      onExhausted: options.onExhausted ?? 'dead_letter',
      startFrom: options.startFrom ?? 'earliest',
      catchUp: options.catchUp ?? { kind: 'full' },
      maxBatchRecords: options.maxBatchRecords ?? 500,
      fetchMaxBytes: options.fetchMaxBytes ?? 1024 * 1024,
      fetchWaitMs: options.fetchWaitMs ?? 500,
      punctuateIntervalMs: options.punctuateIntervalMs ?? 1000,
      onError: options.onError ?? ((m) => process.stderr.write(`reckon workers (${options.group}): ${m}\n`)),
      maxAttempts: options.retry?.maxAttempts ?? 5,
      initialBackoffMs: options.retry?.initialBackoffMs ?? 100,
      maxBackoffMs: options.retry?.maxBackoffMs ?? 10_000,
    };
  }

  /** Reports a problem through `onError`. */
  report(message: string, error?: Error): void {
    this.o.onError(message, error);
  }

  /** Resolves each partition's start, creates the tasks, and starts fetching. */
  async start(): Promise<void> {
    const { log, o } = this;
    await ensureGroupTopics(log, o.group);
    this.running = true;
    if (o.groupMembership === true && o.assignment === undefined) {
      this.member = await log.joinGroup(o.group, o.topics, (assigned) => this.rebalance(assigned));
    } else {
      let assignment = o.assignment;
      if (assignment === undefined) {
        assignment = [];
        for (const topic of o.topics) {
          const n = await log.partitionCount(topic);
          for (let p = 0; p < n; p++) assignment.push({ topic, partition: p });
        }
      }
      await this.assign(assignment);
    }
    this.fetchLoopDone = this.fetchLoop().catch((e: unknown) => this.die(e as Error));
    this.commitTimer = setInterval(() => void this.commit(), o.commitIntervalMs);
    this.punctuateTimer = setInterval(() => void this.punctuate(), o.punctuateIntervalMs);
  }

  /**
   * Applies a new assignment from the group: hands over lost partitions, then takes the new ones.
   * The log calls this at once for every new assignment, also while an earlier one is still being
   * applied (a sink may be waiting for another process to hand a partition over). The work is done
   * one assignment at a time, each time for the newest: superseded ones are skipped, and a sink
   * waiting for a partition the group has since moved elsewhere is told to stop waiting.
   */
  private rebalance(assigned: TopicPartition[]): Promise<void> {
    this.wanted = new Set(assigned.map(partitionKey));
    this.newestAssignment = assigned;
    const applied = this.rebalancing.then(async () => {
      if (!this.running) return;
      const target = this.newestAssignment;
      const wanted = this.wanted;
      const lost = this.parts.filter((p) => !wanted.has(partitionKey(p)));
      await this.revoke(lost);
      const held = new Set(this.parts.map(partitionKey));
      await this.assign(target.filter((tp) => !held.has(partitionKey(tp))));
      this.wake();
    });
    // A failed rebalance stops the runtime (its partitions would otherwise sit unprocessed).
    this.rebalancing = applied.catch((e: unknown) => {
      if (this.running) this.die(e as Error);
    });
    return this.rebalancing;
  }

  /** Whether a partition is still this runtime's to take: it is running and (in a group) still assigned it. */
  private stillAssigned(tp: TopicPartition): boolean {
    if (!this.running) return false;
    return this.o.groupMembership !== true || this.o.assignment !== undefined || this.wanted.has(partitionKey(tp));
  }

  /** Stops taking records of `lost` partitions, lets in-flight ones finish, commits, closes their tasks. */
  private async revoke(lost: PartitionState[]): Promise<void> {
    if (lost.length === 0) return;
    for (const part of lost) part.revoked = true;
    const deadline = Date.now() + (this.o.revokeTimeoutMs ?? 10_000);
    while (lost.some((p) => p.subs.some((s) => s.busy)) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 5));
    await this.commit();
    for (const part of lost) {
      for (const sub of part.subs) {
        if (sub.retryTimer !== undefined) clearTimeout(sub.retryTimer);
        try {
          await sub.task.close?.();
        } catch (e) {
          this.report(`close of ${part.topic}/${part.partition}#${sub.index} failed: ${(e as Error).message}`);
        }
      }
    }
    const gone = new Set(lost);
    this.parts = this.parts.filter((p) => !gone.has(p));
  }

  /** Takes partitions: resolves where each starts, creates and initialises its tasks. */
  private async assign(assignment: TopicPartition[]): Promise<void> {
    const { log, o } = this;
    const committedByTopic = new Map<string, Map<number, number | 'declined'>>();
    for (const topic of new Set(assignment.map((a) => a.topic))) {
      const parts = assignment.filter((a) => a.topic === topic).map((a) => a.partition);
      committedByTopic.set(
        topic,
        o.sinkOffsets
          ? await o.sinkOffsets.committed(topic, parts, (p) => this.stillAssigned({ topic, partition: p }))
          : await log.committedOffsets(o.group, topic),
      );
    }
    for (const tp of assignment) {
      const committed = committedByTopic.get(tp.topic)?.get(tp.partition);
      // The sink let it go while waiting for it: the group gave it to another member meanwhile.
      if (committed === 'declined') continue;
      const earliest = await log.earliestOffset(tp.topic, tp.partition);
      const latest = await log.latestOffset(tp.topic, tp.partition);
      let start = committed ?? (o.startFrom === 'earliest' ? earliest : latest);
      if (start < earliest) {
        await recordGap(log, o.group, { ...tp, from: start, to: earliest, reason: 'retention', at: Date.now() });
        this.report(
          `${tp.topic}/${tp.partition}: offsets ${start}..${earliest - 1} were removed by retention before being processed; recorded as a gap`,
        );
        this.stats.skipped += earliest - start;
        start = earliest;
      }
      if (o.catchUp.kind === 'skipForward' && latest - start > o.catchUp.maxLagRecords) {
        const to = latest - o.catchUp.maxLagRecords;
        await recordGap(log, o.group, { ...tp, from: start, to, reason: 'skip_forward', at: Date.now() });
        this.stats.skipped += to - start;
        start = to;
      }
      const part: PartitionState = {
        ...tp,
        tracker: new ContiguousOffsetTracker(start),
        fetchOffset: start,
        subs: [],
        pausedByPressure: false,
        pausedByTask: false,
        revoked: false,
        lastCommitted: committed ?? -1,
      };
      const count = o.partitioner?.count(tp) ?? 1;
      for (let i = 0; i < count; i++) {
        const sub = new SubPartitionQueue(part, i, o.taskFactory(tp, i));
        part.subs.push(sub);
        const context: TaskContext = {
          topicPartition: tp,
          subpartition: i,
          pause: () => {
            part.pausedByTask = true;
          },
          resume: () => {
            part.pausedByTask = false;
            this.wake();
          },
          offer: () => {
            if (sub.offerPending) return;
            sub.offerPending = true;
            setImmediate(() => {
              sub.offerPending = false;
              this.drain(sub);
            });
          },
        };
        await sub.task.init?.(context);
      }
      this.parts.push(part);
    }
  }

  /** Partitions this runtime holds now. */
  get assignment(): TopicPartition[] {
    return this.parts.map((p) => ({ topic: p.topic, partition: p.partition }));
  }

  private wake(): void {
    this.wakeup.wake();
    this.fetchAbort?.abort();
  }

  private die(error: Error): void {
    if (this.fatal !== undefined) return;
    this.fatal = error;
    this.report(`stopping: ${error.message}`, error);
    this.running = false;
    this.wake();
    this.o.onFatal?.(error);
  }

  /** The error that stopped the runtime, if one did. */
  get error(): Error | undefined {
    return this.fatal;
  }

  private async fetchLoop(): Promise<void> {
    const o = this.o;
    while (this.running) {
      let got = 0;
      for (const part of this.parts) {
        if (!this.running) break;
        if (part.pausedByPressure || part.pausedByTask || part.revoked) continue;
        got += this.enqueue(part, await this.readSafely(part, 0, undefined));
      }
      if (got > 0 || !this.running) continue;
      const active = this.parts.filter((p) => !p.pausedByPressure && !p.pausedByTask && !p.revoked);
      if (active.length === 0) {
        await this.wakeup.wait(o.fetchWaitMs);
        continue;
      }
      // Nothing new anywhere: wait on every active partition at once; the first arrival (or a wake) ends the wait.
      const abort = new AbortController();
      this.fetchAbort = abort;
      await Promise.all(
        active.map(async (part) => {
          const records = await this.readSafely(part, o.fetchWaitMs, abort.signal);
          if (records.length > 0) abort.abort();
          this.enqueue(part, records);
        }),
      );
      this.fetchAbort = undefined;
    }
  }

  private async readSafely(
    part: PartitionState,
    waitMs: number,
    signal: AbortSignal | undefined,
  ): Promise<LogRecord[]> {
    try {
      return await this.log.read(part.topic, part.partition, part.fetchOffset, {
        maxBytes: this.o.fetchMaxBytes,
        waitMs,
        signal,
      });
    } catch (e) {
      if ((e as ReckonError).code === 'RECKON_LOG_OFFSET_OUT_OF_RANGE') {
        const earliest = await this.log.earliestOffset(part.topic, part.partition);
        if (part.fetchOffset < earliest) {
          await recordGap(this.log, this.o.group, {
            topic: part.topic,
            partition: part.partition,
            from: part.fetchOffset,
            to: earliest,
            reason: 'retention',
            at: Date.now(),
          });
          this.report(
            `${part.topic}/${part.partition}: offsets ${part.fetchOffset}..${earliest - 1} were removed by retention before being processed; recorded as a gap`,
          );
          this.stats.skipped += earliest - part.fetchOffset;
          part.fetchOffset = earliest;
          part.tracker.skipTo(earliest);
          return [];
        }
      }
      throw e;
    }
  }

  private enqueue(part: PartitionState, records: LogRecord[]): number {
    if (records.length === 0 || part.revoked) return 0;
    const partitioner = this.o.partitioner;
    const subs = part.subs;
    const single = subs.length === 1 ? subs[0] : undefined;
    const tracker = part.tracker;
    const limit = this.o.queueBytes;
    for (const raw of records) {
      const offset = raw.offset;
      if (offset < part.fetchOffset) continue;
      const record = new QueuedRecord(part.topic, raw, 0);
      let sub = single;
      if (sub === undefined) {
        const index = (partitioner as NonNullable<typeof partitioner>).subpartition(record);
        record.subpartition = index;
        sub = subs[index];
        if (sub === undefined) {
          throw new ReckonError(
            'RECKON_WORKER_PARTITIONER',
            `partitioner returned sub-partition ${index} for ${part.topic}/${part.partition}, which has ${subs.length}`,
          );
        }
      }
      tracker.register(offset);
      sub.push(record);
      if (sub.bytes > limit && !part.pausedByPressure) {
        part.pausedByPressure = true;
        this.stats.pauses++;
      }
      part.fetchOffset = offset + 1;
    }
    for (const sub of subs) if (sub.head < sub.queue.length) this.drain(sub);
    return records.length;
  }

  /**
   * Feeds the sub-partition's task while it is free and records are queued. Tasks that finish
   * synchronously or in microtasks would feed a backlog without ever returning to the event loop,
   * and timers (a sink's flush, punctuation) would wait for the whole backlog: after
   * YIELD_EVERY_MS of that, the rest of the drain waits for the next turn of the event loop.
   */
  private drain(sub: SubPartitionQueue<PartitionState>): void {
    if (sub.draining || sub.yieldPending) return;
    sub.draining = true;
    try {
      while (
        !sub.busy &&
        sub.retryTimer === undefined &&
        sub.head < sub.queue.length &&
        !sub.part.revoked &&
        !this.stopping &&
        this.fatal === undefined
      ) {
        // The clock is read every 32 records: reading it per record halved a no-op task's rate.
        if ((++this.fedSinceClock & 31) === 0 && performance.now() - this.yieldedAt >= YIELD_EVERY_MS) {
          sub.yieldPending = true;
          setImmediate(() => {
            this.yieldedAt = performance.now();
            sub.yieldPending = false;
            this.drain(sub);
          });
          break;
        }
        const task = sub.task;
        const first = sub.queue[sub.head] as QueuedRecord;
        if (task.accept !== undefined && !task.accept(first)) break;
        const batch =
          task.processBatch === undefined
            ? undefined
            : sub.queue.slice(sub.head, Math.min(sub.queue.length, sub.head + this.o.maxBatchRecords));
        sub.busy = true;
        const completion = new Completion(this, sub, first, batch);
        let result: void | Promise<void>;
        try {
          result =
            batch !== undefined
              ? (task.processBatch as NonNullable<WorkerTask['processBatch']>)(batch, completion)
              : task.process(first, completion);
        } catch (e) {
          completion.failure(e as Error);
          continue;
        }
        if (completion.done) continue;
        completion.timer = setTimeout(() => completion.timeout(this.o.processingTimeoutMs), this.o.processingTimeoutMs);
        if (result !== undefined && typeof (result as Promise<void>).then === 'function') {
          (result as Promise<void>).then(undefined, (e: unknown) => completion.failure(e as Error));
        }
      }
    } finally {
      sub.draining = false;
    }
  }

  private dequeue(
    sub: SubPartitionQueue<PartitionState>,
    first: QueuedRecord,
    batch: QueuedRecord[] | undefined,
  ): void {
    sub.dequeue(first, batch);
    const part = sub.part;
    if (part.pausedByPressure && part.subs.every((s) => s.bytes <= this.o.queueBytes * this.o.resumeRatio)) {
      part.pausedByPressure = false;
      this.wake();
    }
  }

  /** Called by a completion's success. */
  completed(completion: Completion<PartitionState>): void {
    const sub = completion.sub;
    this.stats.processed += completion.batch === undefined ? 1 : completion.batch.length;
    sub.busy = false;
    this.dequeue(sub, completion.first, completion.batch);
    this.drain(sub);
  }

  /** Called by a completion's failure or timeout. */
  failed(completion: Completion<PartitionState>, error: Error): void {
    const sub = completion.sub;
    const first = completion.records[0] as QueuedRecord;
    this.stats.failed++;
    if (this.o.guarantee === 'none') {
      this.report(
        `${first.topic}/${first.partition}@${first.offset}: ${error.message} (skipped: guarantee none)`,
        error,
      );
      this.completed(completion);
      return;
    }
    if (first.attempt < this.o.maxAttempts) {
      this.stats.retried++;
      const backoff = Math.min(this.o.maxBackoffMs, this.o.initialBackoffMs * 2 ** (first.attempt - 1));
      for (const r of completion.records) r.attempt++;
      sub.busy = false;
      sub.retryTimer = setTimeout(() => {
        sub.retryTimer = undefined;
        this.drain(sub);
      }, backoff);
      return;
    }
    if (this.o.onExhausted === 'stop') {
      this.die(
        new ReckonError(
          'RECKON_WORKER_EXHAUSTED',
          `${first.topic}/${first.partition}@${first.offset} failed ${first.attempt} times: ${error.message}`,
          { cause: error },
        ),
      );
      sub.busy = false;
      return;
    }
    // Dead-letter, then move on; a failing write is retried, never skipped.
    const attempts = first.attempt;
    const write = (): void => {
      writeDeadLetters(this.log, this.o.group, completion.records, error, attempts).then(
        () => {
          this.stats.deadLettered += completion.records.length;
          sub.busy = false;
          this.dequeue(sub, completion.first, completion.batch);
          this.drain(sub);
        },
        (e: unknown) => {
          this.report(`dead-letter write failed (${(e as Error).message}); retrying`);
          setTimeout(write, this.o.initialBackoffMs);
        },
      );
    };
    write();
  }

  private async punctuate(): Promise<void> {
    const now = Date.now();
    for (const part of this.parts) {
      for (const sub of part.subs) {
        try {
          await sub.task.punctuate?.(now);
        } catch (e) {
          this.report(`punctuate of ${part.topic}/${part.partition}#${sub.index} failed: ${(e as Error).message}`);
        }
        this.drain(sub);
      }
    }
  }

  /** Commits every partition's contiguous position that moved since the last commit. */
  commit(): Promise<void> {
    this.committing = this.committing.then(async () => {
      if (this.o.sinkOffsets !== undefined) return;
      const byTopic = new Map<string, { partition: number; offset: number }[]>();
      for (const part of this.parts) {
        const position = part.tracker.position();
        if (position === part.lastCommitted) continue;
        const list = byTopic.get(part.topic) ?? [];
        list.push({ partition: part.partition, offset: position });
        byTopic.set(part.topic, list);
      }
      for (const [topic, offsets] of byTopic) {
        try {
          if (this.member !== undefined) await this.member.commit(topic, offsets);
          else await this.log.commitOffsets(this.o.group, topic, offsets);
          this.stats.commits++;
          for (const o of offsets) {
            const part = this.parts.find((p) => p.topic === topic && p.partition === o.partition);
            if (part !== undefined) part.lastCommitted = o.offset;
          }
        } catch (e) {
          this.report(`commit of ${topic} failed (${(e as Error).message}); will retry`);
        }
      }
    });
    return this.committing;
  }

  /** Per-partition state, for metrics. */
  status(): PartitionStatus[] {
    return this.parts.map((p) => ({
      topic: p.topic,
      partition: p.partition,
      fetchOffset: p.fetchOffset,
      committed: p.lastCommitted,
      queuedRecords: p.subs.reduce((n, s) => n + s.queue.length - s.head, 0),
      queuedBytes: p.subs.reduce((n, s) => n + s.bytes, 0),
      inFlight: p.tracker.inFlight,
      paused: p.pausedByPressure || p.pausedByTask,
    }));
  }

  /** Lag per partition: records between the committed position and the end of the log. */
  async lag(): Promise<(TopicPartition & { lag: number })[]> {
    const out: (TopicPartition & { lag: number })[] = [];
    for (const p of this.parts) {
      out.push({
        topic: p.topic,
        partition: p.partition,
        lag: (await this.log.latestOffset(p.topic, p.partition)) - p.tracker.position(),
      });
    }
    return out;
  }

  /**
   * Stops gracefully: no more fetching, in-flight work finishes or times out (up to
   * `timeoutMs`), contiguous offsets are committed, tasks are closed.
   */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (!this.running && this.stopping) return;
    this.running = false;
    this.stopping = true;
    this.wake();
    await this.fetchLoopDone;
    if (this.commitTimer !== undefined) clearInterval(this.commitTimer);
    if (this.punctuateTimer !== undefined) clearInterval(this.punctuateTimer);
    const busy = () => this.parts.some((p) => p.subs.some((s) => s.busy));
    const deadline = Date.now() + timeoutMs;
    while (busy() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    for (const p of this.parts) for (const s of p.subs) if (s.retryTimer !== undefined) clearTimeout(s.retryTimer);
    await this.commit();
    await this.rebalancing;
    await this.member?.leave();
    for (const p of this.parts) {
      for (const s of p.subs) {
        try {
          await s.task.close?.();
        } catch (e) {
          this.report(`close of ${p.topic}/${p.partition}#${s.index} failed: ${(e as Error).message}`);
        }
      }
    }
  }
}

/** Stops the runtime gracefully on SIGTERM or SIGINT, then calls `exit`. */
export function stopOnSignals(runtime: WorkerRuntime, exit: (code: number) => void = (c) => process.exit(c)): void {
  const handler = (): void => {
    runtime.stop().then(
      () => exit(runtime.error === undefined ? 0 : 1),
      () => exit(1),
    );
  };
  process.once('SIGTERM', handler);
  process.once('SIGINT', handler);
}

function partitionKey(tp: TopicPartition): string {
  return `${tp.topic}/${tp.partition}`;
}
