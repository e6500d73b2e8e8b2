/**
 * The embedded log: reckon's own durable segment log on a local directory. One writer process
 * appends; any number of reader processes read and tail the same directory.
 *
 * Durability (the fsync policy): with `fsync: 'group'` (the default) an append resolves only
 * after an fdatasync that covers it. Appends that arrive while an fsync runs share the next one
 * (group commit), so throughput grows with concurrency instead of paying one fsync per call;
 * `lingerMs` optionally waits that long before starting an fsync, to gather more. With
 * `fsync: 'none'` an append resolves once written to the OS: it survives a crash of the process
 * (kill -9) but not of the machine.
 */
import { existsSync, watch, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { access, constants } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ReckonError } from '../events/index.ts';
import { AppendClient, AppendServer } from './append-service.ts';
import {
  type BatchHeader,
  decodeBatch,
  encodedBatchProblem,
  keyByteLength,
  readBatchHeader,
  writeKey,
} from './batch.ts';
import { checkName, LogErrors } from './errors.ts';
import { fsyncDir, processAlive, writeFileDurably } from './files.ts';
import { partitionForKeyBytes } from './murmur2.ts';
import { PartitionReader, PartitionWriter, readHighWatermarkFile } from './partition.ts';
import { joinEmbeddedGroup } from './group.ts';
import type {
  AppendedRange,
  AssignmentListener,
  EncodedBatch,
  GroupMember,
  Log,
  LogRecord,
  PartitionOffset,
  ReadOptions,
  RecordInput,
  RetentionReport,
  TopicSpec,
} from './types.ts';

/** Scratch space for hashing string keys without allocating. */
const KEY_SCRATCH = Buffer.allocUnsafe(64 * 1024);

/** Format version of the embedded log's directory; a different one is refused. */
export const LOG_FORMAT_VERSION = 1;
const META_FILE = 'reckon-log.json';

/** Options of {@link openEmbeddedLog}. */
export interface EmbeddedLogOptions {
  /** The log's directory (e.g. `data/log`). */
  dir: string;
  /**
   * `writer` (default): the one process that owns the files and appends. `reader`: reads, tails
   * and commits offsets itself, and forwards appends and topic creation to the writer process.
   */
  role?: 'writer' | 'reader';
  /** Writer only: serve appends forwarded by reader processes on `<dir>/writer.sock`. Default true. */
  serveReaders?: boolean;
  /** `group` (default): appends resolve after a shared fdatasync. `none`: after the write to the OS. */
  fsync?: 'group' | 'none';
  /** Wait this long before starting a group fsync, to gather more appends. Default 0. */
  lingerMs?: number;
  /** Roll to a new segment past this size. Default 64 MiB. */
  segmentBytes?: number;
  /** Apply retention this often (writer only; 0 disables). Default 5 minutes. */
  retentionIntervalMs?: number;
  /** Recovery actions (a truncated torn tail) are reported here. Default: stderr. */
  onWarning?: (message: string) => void;
}

interface TopicState {
  spec: TopicSpec;
  writers: PartitionWriter[];
  readers: PartitionReader[];
  roundRobin: number;
}

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (e: unknown) => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Opens (and for a writer, creates and recovers) an embedded log directory. */
export async function openEmbeddedLog(options: EmbeddedLogOptions): Promise<EmbeddedLog> {
  const dir = resolve(options.dir);
  const role = options.role ?? 'writer';
  const metaPath = join(dir, META_FILE);
  if (!existsSync(dir)) {
    if (role === 'reader') {
      throw new ReckonError(
        'RECKON_LOG_NO_DIRECTORY',
        `log directory ${dir} does not exist: start the writer first, or check --data`,
        {
          retriable: true,
        },
      );
    }
    try {
      mkdirSync(dir, { recursive: true });
    } catch (e) {
      throw new ReckonError(
        'RECKON_LOG_NOT_WRITABLE',
        `cannot create log directory ${dir}: ${(e as Error).message}; check --data and permissions`,
        { cause: e },
      );
    }
  }
  try {
    await access(dir, role === 'writer' ? constants.W_OK | constants.R_OK : constants.R_OK);
  } catch (e) {
    throw new ReckonError(
      'RECKON_LOG_NOT_WRITABLE',
      `log directory ${dir} is not ${role === 'writer' ? 'writable' : 'readable'} by this process (${(e as NodeJS.ErrnoException).code}); fix its permissions or choose another --data`,
      { cause: e },
    );
  }
  if (existsSync(metaPath)) {
    let meta: { format?: string; version?: number };
    try {
      meta = JSON.parse(readFileSync(metaPath, 'utf8')) as typeof meta;
    } catch (e) {
      throw new ReckonError(
        'RECKON_LOG_VERSION',
        `${metaPath} is unreadable (${(e as Error).message}); is this a reckon log directory?`,
      );
    }
    if (meta.format !== 'reckon-log' || meta.version !== LOG_FORMAT_VERSION) {
      throw new ReckonError(
        'RECKON_LOG_VERSION',
        `log directory ${dir} holds format ${meta.format} version ${meta.version}; this reckon reads reckon-log version ${LOG_FORMAT_VERSION}. Use a matching reckon, or another --data`,
      );
    }
  } else if (role === 'writer') {
    const foreign = readdirSync(dir).filter((n) => !n.startsWith('.'));
    if (foreign.length > 0) {
      throw new ReckonError(
        'RECKON_LOG_VERSION',
        `${dir} is not empty and is not a reckon log (no ${META_FILE}; found ${foreign.slice(0, 3).join(', ')}); choose an empty or reckon directory`,
      );
    }
    writeFileDurably(dir, META_FILE, JSON.stringify({ format: 'reckon-log', version: LOG_FORMAT_VERSION }));
  } else {
    throw new ReckonError(
      'RECKON_LOG_NO_DIRECTORY',
      `${dir} is not a reckon log yet (no ${META_FILE}): start the writer first`,
      { retriable: true },
    );
  }
  const log = new EmbeddedLog(dir, role, options);
  if (role === 'writer') {
    log.lock();
    log.recoverAll();
    if (options.serveReaders ?? true) await log.serveReaders();
  }
  return log;
}

/** The embedded implementation of {@link Log}. Create it with {@link openEmbeddedLog}. */
export class EmbeddedLog implements Log {
  readonly kind = 'embedded' as const;
  private readonly topicStates = new Map<string, TopicState>();
  private readonly dirty = new Set<PartitionWriter>();
  private next: Deferred | undefined;
  private syncing = false;
  private failed: Error | undefined;
  private closed = false;
  private retentionTimer: NodeJS.Timeout | undefined;
  private appendServer: AppendServer | undefined;
  /** A reader's way to the writer. */
  private readonly forward: AppendClient | undefined;
  private readonly fsyncPolicy: 'group' | 'none';
  private readonly lingerMs: number;
  private readonly segmentBytes: number;
  private readonly warn: (message: string) => void;

  /** Use {@link openEmbeddedLog}. */
  constructor(
    readonly dir: string,
    readonly role: 'writer' | 'reader',
    options: EmbeddedLogOptions,
  ) {
    this.fsyncPolicy = options.fsync ?? 'group';
    this.lingerMs = options.lingerMs ?? 0;
    this.segmentBytes = options.segmentBytes ?? 64 * 1024 * 1024;
    this.warn = options.onWarning ?? ((m) => process.stderr.write(`reckon log: ${m}\n`));
    if (role === 'reader') this.forward = new AppendClient(dir);
    const interval = options.retentionIntervalMs ?? 5 * 60_000;
    if (role === 'writer' && interval > 0) {
      this.retentionTimer = setInterval(() => {
        this.applyRetention().catch((e: unknown) => this.warn(`retention failed: ${(e as Error).message}`));
      }, interval);
      this.retentionTimer.unref();
    }
  }

  /** Takes the writer lock: one writing process per directory. */
  lock(): void {
    const path = join(this.dir, 'writer.lock');
    if (existsSync(path)) {
      const pid = Number(readFileSync(path, 'utf8').trim());
      if (Number.isInteger(pid) && pid !== process.pid && processAlive(pid)) {
        throw new ReckonError(
          'RECKON_LOG_LOCKED',
          `another process (pid ${pid}) is writing the log in ${this.dir}; stop it first, or open this one as a reader`,
          {
            retriable: true,
          },
        );
      }
    }
    writeFileSync(path, String(process.pid));
  }

  /** Serves appends forwarded by reader processes. */
  async serveReaders(): Promise<void> {
    this.appendServer ??= await AppendServer.listen(this.dir, {
      append: (topic, records) => this.append(topic, records),
      createTopic: (spec) => this.createTopic(spec),
    });
  }

  /** Opens every topic now, so that recovery (and its warnings) happens at start, not at first use. */
  recoverAll(): void {
    const topicsDir = join(this.dir, 'topics');
    if (!existsSync(topicsDir)) return;
    for (const topic of readdirSync(topicsDir)) this.state(topic);
  }

  private topicDir(topic: string): string {
    return join(this.dir, 'topics', topic);
  }

  private state(topic: string): TopicState {
    if (this.closed) throw LogErrors.closed();
    let state = this.topicStates.get(topic);
    if (state !== undefined) return state;
    checkName('topic', topic);
    const specPath = join(this.topicDir(topic), 'topic.json');
    if (!existsSync(specPath)) throw LogErrors.unknownTopic(topic);
    const spec = JSON.parse(readFileSync(specPath, 'utf8')) as TopicSpec;
    state = { spec, writers: [], readers: [], roundRobin: 0 };
    for (let p = 0; p < spec.partitions; p++) {
      const dir = join(this.topicDir(topic), String(p));
      if (this.role === 'writer') {
        const writer = new PartitionWriter(topic, p, dir, { segmentBytes: this.segmentBytes, onWarning: this.warn });
        state.writers.push(writer);
        state.readers.push(writer.reader);
      } else {
        state.readers.push(new PartitionReader(topic, p, dir, () => readHighWatermarkFile(dir)));
      }
    }
    this.topicStates.set(topic, state);
    return state;
  }

  private checkPartition(state: TopicState, partition: number): void {
    if (!Number.isInteger(partition) || partition < 0 || partition >= state.spec.partitions) {
      throw LogErrors.unknownPartition(state.spec.name, partition, state.spec.partitions);
    }
  }

  private requireWriter(what: string): void {
    if (this.role !== 'writer')
      throw new ReckonError(
        'RECKON_LOG_READ_ONLY',
        `${what} needs the writer; this process opened the log as a reader`,
      );
  }

  async createTopic(spec: TopicSpec): Promise<void> {
    checkName('topic', spec.name);
    if (this.forward !== undefined) {
      if (this.closed) throw LogErrors.closed();
      return this.forward.createTopic(spec);
    }
    if (!Number.isInteger(spec.partitions) || spec.partitions < 1 || spec.partitions > 10_000) {
      throw new ReckonError(
        'RECKON_LOG_BAD_TOPIC',
        `topic "${spec.name}": partitions must be an integer from 1 to 10000, got ${spec.partitions}`,
      );
    }
    const dir = this.topicDir(spec.name);
    const specPath = join(dir, 'topic.json');
    if (existsSync(specPath)) {
      const existing = JSON.parse(readFileSync(specPath, 'utf8')) as TopicSpec;
      if (existing.partitions !== spec.partitions) {
        throw new ReckonError(
          'RECKON_LOG_TOPIC_EXISTS',
          `topic "${spec.name}" exists with ${existing.partitions} partitions, not ${spec.partitions}; partition counts are fixed`,
        );
      }
      if (JSON.stringify(existing.retention ?? {}) !== JSON.stringify(spec.retention ?? {})) {
        writeFileDurably(dir, 'topic.json', JSON.stringify({ ...existing, retention: spec.retention }));
        const state = this.topicStates.get(spec.name);
        if (state !== undefined) state.spec = { ...existing, retention: spec.retention };
      }
      return;
    }
    mkdirSync(dir, { recursive: true });
    writeFileDurably(dir, 'topic.json', JSON.stringify(spec));
    this.state(spec.name);
  }

  async partitionCount(topic: string): Promise<number> {
    return this.state(topic).spec.partitions;
  }

  async append(topic: string, records: readonly RecordInput[]): Promise<AppendedRange[]> {
    if (this.forward !== undefined) {
      this.state(topic);
      return this.forward.append(topic, records);
    }
    if (this.failed !== undefined) throw this.failed;
    const state = this.state(topic);
    const n = state.spec.partitions;
    const now = Date.now();
    const ranges: AppendedRange[] = [];
    if (records.length === 0) return ranges;
    // Split by partition, keeping each partition's records in call order. String keys are
    // hashed from a scratch buffer, so no per-record Buffer is allocated.
    const byPartition = new Map<number, { records: RecordInput[]; keyLengths: number[] }>();
    for (const r of records) {
      const key = r.key;
      let keyLength = -1;
      let p: number;
      if (key !== undefined && key !== null) {
        if (typeof key === 'string') {
          keyLength = keyByteLength(key);
          if (keyLength > KEY_SCRATCH.length) {
            p = partitionForKeyBytes(Buffer.from(key), n);
          } else {
            writeKey(KEY_SCRATCH, key, 0, keyLength);
            p = partitionForKeyBytes(KEY_SCRATCH, n, keyLength);
          }
        } else {
          keyLength = key.length;
          p = partitionForKeyBytes(key, n);
        }
      } else {
        p = state.roundRobin++ % n;
      }
      if (r.partition !== undefined) {
        this.checkPartition(state, r.partition);
        p = r.partition;
      }
      let list = byPartition.get(p);
      if (list === undefined) {
        list = { records: [], keyLengths: [] };
        byPartition.set(p, list);
      }
      list.records.push(r);
      list.keyLengths.push(keyLength);
    }
    for (const [p, list] of byPartition) {
      const writer = state.writers[p] as PartitionWriter;
      ranges.push(writer.append(list.records, list.keyLengths, now));
      this.dirty.add(writer);
    }
    await this.requestSync();
    return ranges;
  }

  async appendEncoded(topic: string, batches: readonly EncodedBatch[]): Promise<AppendedRange[]> {
    const state = this.state(topic);
    // Checked whole before anything is written: all or none.
    for (const batch of batches) {
      this.checkPartition(state, batch.partition);
      const problem = encodedBatchProblem(batch);
      if (problem !== undefined)
        throw new ReckonError(
          'RECKON_LOG_BAD_BATCH',
          `an encoded batch for ${topic}/${batch.partition} cannot be appended: ${problem}`,
        );
    }
    if (this.forward !== undefined) {
      // A reader forwards records: its batches are taken apart again.
      const records: RecordInput[] = [];
      for (const batch of batches) {
        const decoded: LogRecord[] = [];
        decodeBatch(batch.bytes, 0, readBatchHeader(batch.bytes, 0) as BatchHeader, batch.partition, 0, decoded);
        for (const r of decoded)
          records.push({ key: r.key ?? undefined, value: r.value, timestamp: r.timestamp, partition: batch.partition });
      }
      return this.forward.append(topic, records);
    }
    if (this.failed !== undefined) throw this.failed;
    const ranges: AppendedRange[] = [];
    for (const batch of batches) {
      const writer = state.writers[batch.partition] as PartitionWriter;
      ranges.push(writer.appendEncoded(batch.bytes, batch.count));
      this.dirty.add(writer);
    }
    if (ranges.length > 0) await this.requestSync();
    return ranges;
  }

  /** Resolves after an fsync that started after this call (group commit). */
  private requestSync(): Promise<void> {
    if (this.next === undefined) {
      this.next = deferred();
      if (!this.syncing) this.scheduleSync();
    }
    return this.next.promise;
  }

  private scheduleSync(): void {
    this.syncing = true;
    if (this.lingerMs > 0) setTimeout(() => void this.runSync(), this.lingerMs);
    else queueMicrotask(() => void this.runSync());
  }

  private async runSync(): Promise<void> {
    const waiting = this.next as Deferred;
    this.next = undefined;
    const writers = [...this.dirty];
    this.dirty.clear();
    const snapshots = writers.map((w) => w.snapshot());
    try {
      await Promise.all(writers.map((w) => w.sync(this.fsyncPolicy === 'group')));
      writers.forEach((w, i) => w.publish(snapshots[i] as ReturnType<PartitionWriter['snapshot']>));
      waiting.resolve();
    } catch (e) {
      // After a failed fsync the page cache can no longer be trusted: refuse further appends.
      this.failed = new ReckonError(
        'RECKON_LOG_FSYNC_FAILED',
        `fsync of the log failed (${(e as Error).message}); restart reckon to recover the log`,
        {
          cause: e,
        },
      );
      waiting.reject(this.failed);
    }
    this.syncing = false;
    if (this.next !== undefined) this.scheduleSync();
  }

  async read(topic: string, partition: number, offset: number, options: ReadOptions = {}): Promise<LogRecord[]> {
    const state = this.state(topic);
    this.checkPartition(state, partition);
    if (!Number.isInteger(offset) || offset < 0) {
      throw new ReckonError('RECKON_LOG_BAD_OFFSET', `offset must be a non-negative integer, got ${offset}`);
    }
    const reader = state.readers[partition] as PartitionReader;
    const maxBytes = options.maxBytes ?? 1024 * 1024;
    const records = reader.read(offset, maxBytes);
    if (records.length > 0 || !options.waitMs) return records;
    await this.waitForData(state, partition, offset, options.waitMs, options.signal);
    return reader.read(offset, maxBytes);
  }

  /** Waits until the partition's durable end passes `offset`, without polling: in-process events, or inotify on the hw file. */
  private waitForData(
    state: TopicState,
    partition: number,
    offset: number,
    waitMs: number,
    signal?: AbortSignal,
  ): Promise<void> {
    const reader = state.readers[partition] as PartitionReader;
    return new Promise<void>((resolveWait) => {
      const cleanups: (() => void)[] = [];
      const done = (): void => {
        for (const c of cleanups) c();
        resolveWait();
      };
      const check = (): void => {
        if (reader.highWatermark().nextOffset > offset) done();
      };
      const timer = setTimeout(done, waitMs);
      cleanups.push(() => clearTimeout(timer));
      if (signal !== undefined) {
        if (signal.aborted) return done();
        signal.addEventListener('abort', done, { once: true });
        cleanups.push(() => signal.removeEventListener('abort', done));
      }
      const writer = state.writers[partition];
      if (writer !== undefined) {
        cleanups.push(writer.onPublish(check));
      } else {
        const watcher = watch(join(reader.dir, 'hw'), { persistent: false }, check);
        watcher.on('error', () => undefined);
        cleanups.push(() => watcher.close());
        // inotify covers the writer's updates; a slow safety tick covers a replaced file.
        const tick = setInterval(check, 1000);
        cleanups.push(() => clearInterval(tick));
      }
      check();
    });
  }

  async earliestOffset(topic: string, partition: number): Promise<number> {
    const state = this.state(topic);
    this.checkPartition(state, partition);
    return (state.readers[partition] as PartitionReader).earliest();
  }

  async latestOffset(topic: string, partition: number): Promise<number> {
    const state = this.state(topic);
    this.checkPartition(state, partition);
    return (state.readers[partition] as PartitionReader).highWatermark().nextOffset;
  }

  async commitOffsets(group: string, topic: string, offsets: readonly PartitionOffset[]): Promise<void> {
    checkName('group', group);
    const state = this.state(topic);
    const dir = join(this.dir, 'groups', group, topic);
    mkdirSync(dir, { recursive: true });
    for (const { partition, offset } of offsets) {
      this.checkPartition(state, partition);
      if (!Number.isInteger(offset) || offset < 0)
        throw new ReckonError(
          'RECKON_LOG_BAD_OFFSET',
          `committed offset must be a non-negative integer, got ${offset}`,
        );
      writeFileDurably(dir, `${partition}.offset`, `${offset}\n`, false);
    }
    if (offsets.length > 0) fsyncDir(dir);
  }

  async committedOffsets(group: string, topic: string): Promise<Map<number, number>> {
    checkName('group', group);
    this.state(topic);
    const dir = join(this.dir, 'groups', group, topic);
    const out = new Map<number, number>();
    if (!existsSync(dir)) return out;
    for (const name of readdirSync(dir)) {
      const m = /^([0-9]+)\.offset$/.exec(name);
      if (m !== null) out.set(Number(m[1]), Number(readFileSync(join(dir, name), 'utf8').trim()));
    }
    return out;
  }

  async joinGroup(group: string, topics: string[], onAssignment: AssignmentListener): Promise<GroupMember> {
    checkName('group', group);
    return joinEmbeddedGroup(this, this.dir, group, topics, onAssignment);
  }

  async checkWritable(): Promise<void> {
    if (this.closed) throw LogErrors.closed();
    if (this.failed !== undefined) throw this.failed;
    if (this.role === 'reader') {
      const lock = join(this.dir, 'writer.lock');
      const pid = existsSync(lock) ? Number(readFileSync(lock, 'utf8').trim()) : NaN;
      if (!Number.isInteger(pid) || !processAlive(pid))
        throw new ReckonError('RECKON_LOG_WRITER_UNAVAILABLE', `no log writer process is running for ${this.dir}`, {
          retriable: true,
        });
      return;
    }
    try {
      await access(this.dir, constants.W_OK);
    } catch (e) {
      throw new ReckonError(
        'RECKON_LOG_NOT_WRITABLE',
        `log directory ${this.dir} is not writable (${(e as NodeJS.ErrnoException).code}); fix its permissions or free disk space`,
        { retriable: true, cause: e },
      );
    }
  }

  async applyRetention(now = Date.now()): Promise<RetentionReport> {
    this.requireWriter('applyRetention');
    const report: RetentionReport = { segmentsDeleted: 0, bytesDeleted: 0 };
    const topicsDir = join(this.dir, 'topics');
    if (!existsSync(topicsDir)) return report;
    for (const topic of readdirSync(topicsDir)) {
      const state = this.state(topic);
      const policy = state.spec.retention;
      if (policy === undefined || (policy.ms === undefined && policy.bytes === undefined)) continue;
      for (const w of state.writers) {
        const r = w.applyRetention(policy, now);
        report.segmentsDeleted += r.segments;
        report.bytesDeleted += r.bytes;
      }
    }
    return report;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.retentionTimer !== undefined) clearInterval(this.retentionTimer);
    this.forward?.close();
    // Forwarded appends already taken are answered before the server goes.
    while (this.syncing || this.next !== undefined)
      await (this.next?.promise.catch(() => undefined) ?? new Promise((r) => setTimeout(r, 1)));
    await this.appendServer?.close();
    this.closed = true;
    for (const state of this.topicStates.values()) {
      for (const w of state.writers) w.close();
      if (state.writers.length === 0) for (const r of state.readers) r.close();
    }
    if (this.role === 'writer') rmSync(join(this.dir, 'writer.lock'), { force: true });
  }
}
