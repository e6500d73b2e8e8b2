/**
 * One partition of the embedded log: a directory of segments `<base>.log` with a sparse offset
 * index `<base>.index`, a `<base>.sealed` summary once a segment is full, and the `hw` file
 * that publishes the durable end to readers in any process.
 */
import {
  write as writeCallback,
  closeSync,
  existsSync,
  fdatasync,
  fdatasyncSync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { batchCrcOk, decodeBatch, encodeBatch, readBatchHeader, stampBatch } from './batch.ts';
import { LogErrors } from './errors.ts';
import {
  decodeHighWatermark,
  encodeHighWatermark,
  fsyncDir,
  type HighWatermark,
  HW_BYTES,
  segmentBaseOf,
  segmentName,
  writeFileDurably,
} from './files.ts';
import type { AppendedRange, LogRecord, RecordInput, RetentionPolicy } from './types.ts';

const fdatasyncAsync = promisify(fdatasync);
const writeAsync = promisify(writeCallback);

/** Writes all of `buf` at `position` (pwrite) on the thread pool, so encoding the next batch overlaps it. */
async function pwriteFully(fd: number, buf: Buffer, position: number): Promise<void> {
  let written = 0;
  while (written < buf.length) {
    written += (await writeAsync(fd, buf, written, buf.length - written, position + written)).bytesWritten;
  }
}

/** Bytes of log between two index entries. */
const INDEX_INTERVAL_BYTES = 4096;
/** Smallest read from a segment file. */
const MIN_READ_BYTES = 64 * 1024;

interface SealedInfo {
  size: number;
  nextOffset: number;
  maxTimestamp: number;
}

interface IndexCache {
  /** Flat pairs [relativeOffset, position, ...], all below the readable limit. */
  entries: number[];
  /** Bytes of the index file consumed so far. */
  consumed: number;
}

function listSegments(dir: string): number[] {
  const bases: number[] = [];
  for (const name of readdirSync(dir)) {
    const base = segmentBaseOf(name);
    if (base !== undefined) bases.push(base);
  }
  return bases.sort((a, b) => a - b);
}

function preadFully(fd: number, length: number, position: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, buf, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got === length ? buf : buf.subarray(0, got);
}

/** Reads one partition: shared by the writer's process and reader processes. */
export class PartitionReader {
  private bases: number[] = [];
  private readonly sealedSizes = new Map<number, number>();
  private readonly fds = new Map<number, number>();
  private readonly indexes = new Map<number, IndexCache>();

  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly dir: string,
    /** The current durable end: the writer's memory, or the hw file for other processes. */
    readonly highWatermark: () => HighWatermark,
  ) {}

  /** Re-lists the segment files (after a roll or a retention pass). */
  refresh(): void {
    this.bases = listSegments(this.dir);
    for (const [base, fd] of this.fds) {
      if (!this.bases.includes(base)) {
        closeSync(fd);
        this.fds.delete(base);
        this.indexes.delete(base);
        this.sealedSizes.delete(base);
      }
    }
  }

  /** The first offset still present. */
  earliest(): number {
    this.refresh();
    return this.bases[0] ?? this.highWatermark().nextOffset;
  }

  private fdOf(base: number): number {
    let fd = this.fds.get(base);
    if (fd === undefined) {
      fd = openSync(join(this.dir, segmentName(base, 'log')), 'r');
      this.fds.set(base, fd);
    }
    return fd;
  }

  private limitOf(base: number, hw: HighWatermark): number {
    if (base === hw.segmentBase) return hw.segmentSize;
    if (base > hw.segmentBase) return 0;
    let size = this.sealedSizes.get(base);
    if (size === undefined) {
      size = fstatSync(this.fdOf(base)).size;
      this.sealedSizes.set(base, size);
    }
    return size;
  }

  /** Greatest indexed position at or before `offset` in segment `base`. */
  private positionFor(base: number, offset: number, limit: number): number {
    let cache = this.indexes.get(base);
    if (cache === undefined) {
      cache = { entries: [], consumed: 0 };
      this.indexes.set(base, cache);
    }
    const rel = offset - base;
    const last = cache.entries.length - 2;
    if (last < 0 || (cache.entries[last] as number) < rel) {
      // Load index entries written since the last look, keeping only those below the readable limit.
      const path = join(this.dir, segmentName(base, 'index'));
      if (existsSync(path)) {
        const fd = openSync(path, 'r');
        try {
          const size = fstatSync(fd).size;
          const fresh = preadFully(fd, size - cache.consumed, cache.consumed);
          let p = 0;
          for (; p + 8 <= fresh.length; p += 8) {
            const position = fresh.readUInt32BE(p + 4);
            if (position >= limit) break;
            cache.entries.push(fresh.readUInt32BE(p), position);
          }
          cache.consumed += p;
        } finally {
          closeSync(fd);
        }
      }
    }
    const e = cache.entries;
    let lo = 0;
    let hi = e.length / 2 - 1;
    let found = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if ((e[mid * 2] as number) <= rel) {
        found = e[mid * 2 + 1] as number;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found;
  }

  /** Reads records at and after `offset`, about `maxBytes` of them (at least one when any exists). */
  read(offset: number, maxBytes: number): LogRecord[] {
    const hw = this.highWatermark();
    const out: LogRecord[] = [];
    if (offset >= hw.nextOffset) {
      if (offset > hw.nextOffset)
        throw LogErrors.offsetOutOfRange(this.topic, this.partition, offset, this.earliest(), hw.nextOffset);
      return out;
    }
    if (
      this.bases.length === 0 ||
      (this.bases[this.bases.length - 1] as number) < hw.segmentBase ||
      offset < (this.bases[0] as number)
    ) {
      this.refresh();
    }
    if (this.bases.length === 0 || offset < (this.bases[0] as number)) {
      throw LogErrors.offsetOutOfRange(this.topic, this.partition, offset, this.earliest(), hw.nextOffset);
    }
    let i = this.bases.length - 1;
    while (i > 0 && (this.bases[i] as number) > offset) i--;
    let bytes = 0;
    let first = true;
    for (; i < this.bases.length && bytes < maxBytes; i++) {
      const base = this.bases[i] as number;
      if (base > hw.segmentBase) break;
      let fd: number;
      try {
        fd = this.fdOf(base);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        // Removed by retention since we listed: the caller's offset may now be out of range.
        this.refresh();
        throw LogErrors.offsetOutOfRange(this.topic, this.partition, offset, this.earliest(), hw.nextOffset);
      }
      const limit = this.limitOf(base, hw);
      let pos = first ? this.positionFor(base, offset, limit) : 0;
      first = false;
      while (pos < limit && bytes < maxBytes) {
        const want = Math.min(limit - pos, Math.max(MIN_READ_BYTES, maxBytes - bytes));
        let chunk = preadFully(fd, want, pos);
        let p = 0;
        while (p < chunk.length && bytes < maxBytes) {
          const header = readBatchHeader(chunk, p);
          if (header === 'invalid')
            throw LogErrors.corrupt(join(this.dir, segmentName(base, 'log')), `no batch at byte ${pos + p}`);
          if (header === undefined || p + header.length > chunk.length) {
            if (p > 0) break;
            // A batch larger than the chunk: read exactly that batch.
            const h = header ?? readBatchHeader(preadFully(fd, 32, pos), 0);
            if (h === undefined || h === 'invalid' || pos + h.length > limit) {
              throw LogErrors.corrupt(join(this.dir, segmentName(base, 'log')), `truncated batch at byte ${pos}`);
            }
            chunk = preadFully(fd, h.length, pos);
            continue;
          }
          if (header.baseOffset + header.count > offset) {
            if (!batchCrcOk(chunk, p, header.length)) {
              throw LogErrors.corrupt(
                join(this.dir, segmentName(base, 'log')),
                `batch at byte ${pos + p} fails its CRC`,
              );
            }
            let ok: boolean;
            try {
              ok = decodeBatch(chunk, p, header, this.partition, offset, out);
            } catch {
              ok = false;
            }
            if (!ok)
              throw LogErrors.corrupt(
                join(this.dir, segmentName(base, 'log')),
                `batch at byte ${pos + p} is malformed`,
              );
            bytes += header.length;
          }
          p += header.length;
        }
        pos += p;
      }
    }
    return out;
  }

  /** Closes cached file descriptors. */
  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
    this.indexes.clear();
  }
}

/** Reads the hw file of a partition written by another process. */
export function readHighWatermarkFile(dir: string): HighWatermark {
  const path = join(dir, 'hw');
  for (let attempt = 0; attempt < 5; attempt++) {
    let b: Buffer;
    try {
      b = readFileSync(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { nextOffset: 0, segmentBase: 0, segmentSize: 0 };
      throw e;
    }
    const hw = decodeHighWatermark(b);
    if (hw !== undefined) return hw;
  }
  throw LogErrors.corrupt(path, 'the high-watermark file stays unreadable');
}

/** Options of a partition writer. */
export interface PartitionWriterOptions {
  segmentBytes: number;
  /** Told about recovery actions (a truncated torn tail). */
  onWarning: (message: string) => void;
}

/** The single writer of one partition: appends batches, fsyncs, rolls segments, recovers on open. */
export class PartitionWriter {
  readonly reader: PartitionReader;
  private nextOffset = 0;
  private activeBase = 0;
  private activeFd = -1;
  private activeSize = 0;
  private activeMaxTimestamp = 0;
  private indexFd = -1;
  private indexSize = 0;
  private lastIndexedPosition = -INDEX_INTERVAL_BYTES;
  /** Writes handed to the thread pool and not yet awaited by a sync. */
  private pendingWrites: Promise<void>[] = [];
  /** Sealing of rolled segments, not yet awaited by a sync. */
  private sealing: Promise<void>[] = [];
  /** Descriptors of sealed segments, closed at the end of the next sync (no one else holds them then). */
  private closable: number[] = [];
  private published: HighWatermark = { nextOffset: 0, segmentBase: 0, segmentSize: 0 };
  private readonly hwFd: number;
  private readonly sealed = new Map<number, SealedInfo>();
  private readonly listeners = new Set<() => void>();

  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly dir: string,
    private readonly options: PartitionWriterOptions,
  ) {
    mkdirSync(dir, { recursive: true });
    this.reader = new PartitionReader(topic, partition, dir, () => this.published);
    this.recover();
    this.hwFd = openSync(join(dir, 'hw'), existsSync(join(dir, 'hw')) ? 'r+' : 'w+');
    this.publish(this.snapshot());
  }

  private path(base: number, ext: 'log' | 'index' | 'sealed'): string {
    return join(this.dir, segmentName(base, ext));
  }

  /** Scans a segment, validating every batch; stops at the first bad one. */
  private scan(base: number, expectedFirst: number) {
    const data = readFileSync(this.path(base, 'log'));
    const index: number[] = [];
    let pos = 0;
    let next = expectedFirst;
    let maxTimestamp = 0;
    let lastIndexed = -INDEX_INTERVAL_BYTES;
    let bad: string | undefined;
    while (pos < data.length) {
      const h = readBatchHeader(data, pos);
      if (h === undefined || h === 'invalid') {
        bad = h === undefined ? 'a torn batch header' : 'no batch header';
        break;
      }
      if (pos + h.length > data.length) {
        bad = 'a torn batch';
        break;
      }
      if (!batchCrcOk(data, pos, h.length)) {
        bad = 'a batch failing its CRC';
        break;
      }
      if (h.baseOffset !== next) {
        bad = `a batch at offset ${h.baseOffset} where ${next} was expected`;
        break;
      }
      if (pos - lastIndexed >= INDEX_INTERVAL_BYTES) {
        index.push(next - base, pos);
        lastIndexed = pos;
      }
      next += h.count;
      if (h.maxTimestamp > maxTimestamp) maxTimestamp = h.maxTimestamp;
      pos += h.length;
    }
    return { validEnd: pos, fileSize: data.length, next, maxTimestamp, index, bad, lastIndexed };
  }

  private recover(): void {
    for (const name of readdirSync(this.dir)) {
      if (name.startsWith('.') && name.includes('.tmp-')) rmSync(join(this.dir, name), { force: true });
    }
    const bases = listSegments(this.dir);
    if (bases.length === 0) {
      this.openActive(0, true);
      return;
    }
    // The published durable end: every byte below it was acknowledged, so a bad batch there is
    // corruption. Past it, bytes were never acknowledged (writes run in parallel, and a crash can
    // leave holes): they are a torn tail, cut off even if valid-looking batches follow.
    const hw = existsSync(join(this.dir, 'hw')) ? decodeHighWatermark(readFileSync(join(this.dir, 'hw'))) : undefined;
    const acknowledgedEnd = (base: number): number =>
      hw === undefined || hw.segmentBase < base ? 0 : hw.segmentBase > base ? Number.POSITIVE_INFINITY : hw.segmentSize;
    let expected = bases[0] as number;
    let last = bases[bases.length - 1] as number;
    for (const base of bases.slice(0, -1)) {
      if (base !== expected)
        throw LogErrors.corrupt(this.path(base, 'log'), `segment starts at ${base} where ${expected} was expected`);
      let info: SealedInfo | undefined;
      try {
        info = JSON.parse(readFileSync(this.path(base, 'sealed'), 'utf8')) as SealedInfo;
      } catch {
        info = undefined;
      }
      if (info === undefined && acknowledgedEnd(base) === Number.POSITIVE_INFINITY) {
        // Acknowledged past this segment, so it was sealed: rebuild the lost summary.
        const scanned = this.scan(base, base);
        if (scanned.bad !== undefined) {
          throw LogErrors.corrupt(
            this.path(base, 'log'),
            `sealed segment contains ${scanned.bad} at byte ${scanned.validEnd}`,
          );
        }
        info = { size: scanned.validEnd, nextOffset: scanned.next, maxTimestamp: scanned.maxTimestamp };
        writeFileDurably(this.dir, segmentName(base, 'sealed'), JSON.stringify(info));
      }
      if (info === undefined) {
        // A roll that did not finish: later segments hold only unacknowledged records.
        const later = bases.filter((b) => b > base);
        for (const b of later) {
          for (const ext of ['log', 'index', 'sealed'] as const) rmSync(this.path(b, ext), { force: true });
        }
        if (later.length > 0) {
          fsyncDir(this.dir);
          this.options.onWarning(
            `${this.topic}/${this.partition}: removed ${later.length} unacknowledged segment(s) after an unfinished roll of ${segmentName(base, 'log')}`,
          );
        }
        last = base;
        break;
      }
      this.sealed.set(base, info);
      expected = info.nextOffset;
    }
    if (last !== expected)
      throw LogErrors.corrupt(this.path(last, 'log'), `segment starts at ${last} where ${expected} was expected`);
    const s = this.scan(last, last);
    if (s.bad !== undefined && s.validEnd < acknowledgedEnd(last)) {
      throw LogErrors.corrupt(this.path(last, 'log'), `${s.bad} at byte ${s.validEnd}, inside acknowledged data`);
    }
    if (s.validEnd < s.fileSize) {
      this.options.onWarning(
        `${this.topic}/${this.partition}: truncated ${s.fileSize - s.validEnd} bytes of unacknowledged torn tail (${s.bad}) at byte ${s.validEnd} of ${segmentName(last, 'log')}`,
      );
      const fd = openSync(this.path(last, 'log'), 'r+');
      ftruncateSync(fd, s.validEnd);
      fdatasyncSync(fd);
      closeSync(fd);
    }
    // Rebuild the index of the active segment from the scan.
    const index = Buffer.alloc(s.index.length * 4);
    for (let i = 0; i < s.index.length; i++) index.writeUInt32BE(s.index[i] as number, i * 4);
    writeFileDurably(this.dir, segmentName(last, 'index'), index);
    this.rmStale(last);
    this.openActive(last, false);
    this.nextOffset = s.next;
    this.activeSize = s.validEnd;
    this.activeMaxTimestamp = s.maxTimestamp;
    this.lastIndexedPosition = s.lastIndexed;
  }

  private rmStale(activeBase: number): void {
    rmSync(this.path(activeBase, 'sealed'), { force: true });
  }

  private openActive(base: number, create: boolean): void {
    this.activeBase = base;
    this.activeFd = openSync(this.path(base, 'log'), create ? 'w+' : 'r+');
    this.indexFd = openSync(this.path(base, 'index'), create ? 'w+' : 'r+');
    this.indexSize = create ? 0 : fstatSync(this.indexFd).size;
    if (create) {
      fsyncDir(this.dir);
      this.nextOffset = base;
      this.activeSize = 0;
      this.activeMaxTimestamp = 0;
      this.lastIndexedPosition = -INDEX_INTERVAL_BYTES;
    }
  }

  /** Writes one batch (not yet durable, nor even written: see {@link sync}). */
  append(records: readonly RecordInput[], keyLengths: readonly number[], now: number): AppendedRange {
    return this.place(encodeBatch(records, keyLengths, this.nextOffset, now), records.length);
  }

  /**
   * Writes one batch laid out elsewhere (`BatchBuilder`, header checked by the caller): it gets
   * the next offsets and its CRC here. Not yet durable: see {@link sync}.
   */
  appendEncoded(batch: Buffer, count: number): AppendedRange {
    stampBatch(batch, this.nextOffset);
    return this.place(batch, count);
  }

  private place(batch: Buffer, count: number): AppendedRange {
    const baseOffset = this.nextOffset;
    const position = this.activeSize;
    this.pendingWrites.push(pwriteFully(this.activeFd, batch, position));
    if (position - this.lastIndexedPosition >= INDEX_INTERVAL_BYTES) {
      const entry = Buffer.allocUnsafe(8);
      entry.writeUInt32BE(baseOffset - this.activeBase, 0);
      entry.writeUInt32BE(position, 4);
      // Written with the batch, off the event loop: the next sync waits for both before it
      // publishes, so a reader never finds an entry missing below the published end (and
      // recovery rebuilds the index from the segment anyway).
      this.pendingWrites.push(pwriteFully(this.indexFd, entry, this.indexSize));
      this.indexSize += 8;
      this.lastIndexedPosition = position;
    }
    this.activeSize += batch.length;
    this.nextOffset += count;
    const maxTs = batch.readDoubleBE(24);
    if (maxTs > this.activeMaxTimestamp) this.activeMaxTimestamp = maxTs;
    if (this.activeSize >= this.options.segmentBytes) this.roll();
    return { partition: this.partition, baseOffset, count };
  }

  /** Starts a new segment at the next offset; the full one is sealed (durably) in the background. */
  private roll(): void {
    const base = this.activeBase;
    const fd = this.activeFd;
    const indexFd = this.indexFd;
    const writes = this.pendingWrites;
    this.pendingWrites = [];
    const info: SealedInfo = {
      size: this.activeSize,
      nextOffset: this.nextOffset,
      maxTimestamp: this.activeMaxTimestamp,
    };
    this.sealing.push(
      (async () => {
        await Promise.all(writes);
        await Promise.all([fdatasyncAsync(fd), fdatasyncAsync(indexFd)]);
        writeFileDurably(this.dir, segmentName(base, 'sealed'), JSON.stringify(info));
        this.sealed.set(base, info);
        this.closable.push(fd, indexFd);
      })(),
    );
    this.openActive(this.nextOffset, true);
  }

  /** The end of what has been written so far. */
  snapshot(): HighWatermark {
    return { nextOffset: this.nextOffset, segmentBase: this.activeBase, segmentSize: this.activeSize };
  }

  /** True when writes are not yet covered by a sync. */
  get dirty(): boolean {
    return this.published.nextOffset !== this.nextOffset;
  }

  /**
   * Waits for everything appended so far to be written and, when `durable`, fdatasyncs it.
   * One sync at a time per writer (the log's group commit guarantees it).
   */
  async sync(durable: boolean): Promise<void> {
    const fd = this.activeFd;
    const waits = [...this.pendingWrites, ...this.sealing];
    this.pendingWrites = [];
    this.sealing = [];
    try {
      await Promise.all(waits);
      if (durable) await fdatasyncAsync(fd);
    } finally {
      for (const c of this.closable) closeSync(c);
      this.closable = [];
    }
  }

  /** Publishes a durable end to readers in this and other processes. */
  publish(hw: HighWatermark): void {
    if (hw.nextOffset < this.published.nextOffset) return;
    this.published = hw;
    writeSync(this.hwFd, encodeHighWatermark(hw), 0, HW_BYTES, 0);
    for (const listener of this.listeners) listener();
  }

  /** The published end. */
  get highWatermark(): HighWatermark {
    return this.published;
  }

  /** Calls `listener` whenever the published end moves; returns the unsubscribe function. */
  onPublish(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Deletes sealed segments past the retention policy; never the active one. */
  applyRetention(policy: RetentionPolicy, now: number): { segments: number; bytes: number } {
    let segments = 0;
    let bytes = 0;
    let total = this.activeSize;
    for (const info of this.sealed.values()) total += info.size;
    for (const [base, info] of [...this.sealed.entries()].sort((a, b) => a[0] - b[0])) {
      const tooOld = policy.ms !== undefined && info.maxTimestamp < now - policy.ms;
      const tooBig = policy.bytes !== undefined && total > policy.bytes;
      if (!tooOld && !tooBig) break;
      rmSync(this.path(base, 'log'), { force: true });
      rmSync(this.path(base, 'index'), { force: true });
      rmSync(this.path(base, 'sealed'), { force: true });
      this.sealed.delete(base);
      total -= info.size;
      segments++;
      bytes += info.size;
    }
    if (segments > 0) {
      fsyncDir(this.dir);
      this.reader.refresh();
    }
    return { segments, bytes };
  }

  /** Closes the files (after a final sync by the caller). */
  close(): void {
    for (const fd of this.closable) closeSync(fd);
    closeSync(this.activeFd);
    closeSync(this.indexFd);
    closeSync(this.hwFd);
    this.reader.close();
  }
}

/** The total size of a partition directory's segments, for reports. */
export function partitionBytes(dir: string): number {
  return listSegments(dir).reduce((n, base) => n + statSync(join(dir, segmentName(base, 'log'))).size, 0);
}
