/**
 * WorkerSupervisor: runs between `min` and `max` worker processes of one consumer group on this
 * machine, following the scaling signal (see {@link ScalingAdvisor}), and restarts a worker
 * that dies. The workers share the partitions through the group's membership.
 */
import type { ChildProcess } from 'node:child_process';
import type { Log } from '../log/index.ts';
import { ScalingAdvisor } from './scaling.ts';

/** Options of a supervisor. */
export interface SupervisorOptions {
  log: Log;
  group: string;
  topics: string[];
  /** Starts one worker process of the group. */
  spawnWorker: () => ChildProcess;
  min: number;
  max: number;
  /** How often lag is sampled. Default 1 s. */
  intervalMs?: number;
  /** Consecutive growing samples before scaling out. Default 3. */
  growthSamples?: number;
  /** Told about every scaling decision and restart. */
  onEvent?: (message: string) => void;
}

/** Supervises the worker processes of one group. */
export class WorkerSupervisor {
  private readonly workers = new Set<ChildProcess>();
  /** Workers told to stop (scaled in), until they exit. */
  private readonly retiring = new Set<ChildProcess>();
  private readonly advisor: ScalingAdvisor;
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;
  private sampling = false;
  /** Recommendations made so far, newest last (for metrics and tests). */
  readonly history: { at: number; lag: number; workers: number }[] = [];

  constructor(private readonly options: SupervisorOptions) {
    this.advisor = new ScalingAdvisor(options.min, options.max, options.growthSamples ?? 3);
  }

  /** Number of live worker processes. */
  get size(): number {
    return this.workers.size;
  }

  private event(message: string): void {
    this.options.onEvent?.(message);
  }

  private spawn(): void {
    const child = this.options.spawnWorker();
    this.workers.add(child);
    child.once('exit', (code, signal) => {
      this.workers.delete(child);
      if (this.retiring.delete(child) || this.stopping) return;
      this.event(`worker ${child.pid} died (${signal ?? code}); starting another`);
      this.spawn();
    });
  }

  private retire(): void {
    const child = [...this.workers].pop();
    if (child === undefined) return;
    this.workers.delete(child);
    this.retiring.add(child);
    child.kill('SIGTERM');
  }

  /** Total records between the group's committed positions and the end of its topics. */
  async lag(): Promise<number> {
    let lag = 0;
    for (const topic of this.options.topics) {
      const committed = await this.options.log.committedOffsets(this.options.group, topic);
      const n = await this.options.log.partitionCount(topic);
      for (let p = 0; p < n; p++) {
        lag +=
          (await this.options.log.latestOffset(topic, p)) -
          (committed.get(p) ?? (await this.options.log.earliestOffset(topic, p)));
      }
    }
    return lag;
  }

  private async sample(): Promise<void> {
    if (this.sampling || this.stopping) return;
    this.sampling = true;
    try {
      const lag = await this.lag();
      // Committed positions trail processing: with no lag left nothing is in flight either.
      const desired = this.advisor.desiredWorkers(this.workers.size, { lag, inFlight: lag });
      this.history.push({ at: Date.now(), lag, workers: desired });
      if (desired > this.workers.size) {
        this.event(`lag ${lag} keeps growing: scaling out to ${desired} workers`);
        while (this.workers.size < desired) this.spawn();
      } else if (desired < this.workers.size) {
        this.event(`nothing in flight: scaling in to ${desired} workers`);
        while (this.workers.size > desired) this.retire();
      }
    } finally {
      this.sampling = false;
    }
  }

  /** Starts `min` workers and the scaling loop. */
  start(): void {
    for (let i = 0; i < this.options.min; i++) this.spawn();
    this.timer = setInterval(() => {
      this.sample().catch((e: unknown) => this.event(`sampling failed: ${(e as Error).message}`));
    }, this.options.intervalMs ?? 1000);
  }

  /** Stops every worker gracefully (SIGTERM), waiting up to `timeoutMs` before SIGKILL. */
  async stop(timeoutMs = 15_000): Promise<void> {
    this.stopping = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    const exits = [...this.workers].map(
      (c) => new Promise<void>((r) => (c.exitCode !== null ? r() : c.once('exit', () => r()))),
    );
    for (const c of this.workers) c.kill('SIGTERM');
    const timer = setTimeout(() => {
      for (const c of this.workers) c.kill('SIGKILL');
    }, timeoutMs);
    await Promise.all(exits);
    clearTimeout(timer);
  }
}
