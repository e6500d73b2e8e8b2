/** File names and small durable-file helpers of the embedded log. */
import { closeSync, fsyncSync, openSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';

/** Segment file name for a base offset: 20 zero-padded digits, so names sort by offset. */
export function segmentName(base: number, ext: 'log' | 'index' | 'sealed'): string {
  return `${String(base).padStart(20, '0')}.${ext}`;
}

/** Base offset of a segment file name, or undefined when the name is not a segment log. */
export function segmentBaseOf(name: string): number | undefined {
  const m = /^([0-9]{20})\.log$/.exec(name);
  return m === null ? undefined : Number(m[1]);
}

/** Makes a directory entry durable (new or renamed files in it). */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes a small file atomically and durably: temp file, fsync, rename, fsync of the directory. */
export function writeFileDurably(dir: string, name: string, data: string | Buffer, syncDir = true): void {
  const tmp = join(dir, `.${name}.tmp-${process.pid}`);
  writeFileSync(tmp, data);
  const fd = openSync(tmp, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, join(dir, name));
  if (syncDir) fsyncDir(dir);
}

/** The published end of a partition's durable log, shared with reader processes through the `hw` file. */
export interface HighWatermark {
  /** Offset of the next record; every offset below it is durable and readable. */
  nextOffset: number;
  /** Base offset of the segment the end lies in. */
  segmentBase: number;
  /** Readable bytes of that segment. */
  segmentSize: number;
}

const HW_MAGIC = 0x524b4831; // "RKH1"
/** Size of the hw file. */
export const HW_BYTES = 32;
const TWO_32 = 2 ** 32;

/** Encodes a high watermark (magic, CRC, fields), written in place with one 32-byte write. */
export function encodeHighWatermark(hw: HighWatermark): Buffer {
  const b = Buffer.alloc(HW_BYTES);
  b.writeUInt32BE(HW_MAGIC, 0);
  b.writeUInt32BE(Math.floor(hw.nextOffset / TWO_32), 8);
  b.writeUInt32BE(hw.nextOffset % TWO_32, 12);
  b.writeUInt32BE(Math.floor(hw.segmentBase / TWO_32), 16);
  b.writeUInt32BE(hw.segmentBase % TWO_32, 20);
  b.writeUInt32BE(hw.segmentSize, 24);
  b.writeUInt32BE(crc32(b.subarray(8)), 4);
  return b;
}

/** Decodes a high watermark; undefined when the bytes are torn or not one. */
export function decodeHighWatermark(b: Buffer): HighWatermark | undefined {
  if (b.length < HW_BYTES || b.readUInt32BE(0) !== HW_MAGIC) return undefined;
  if (crc32(b.subarray(8, HW_BYTES)) !== b.readUInt32BE(4)) return undefined;
  return {
    nextOffset: b.readUInt32BE(8) * TWO_32 + b.readUInt32BE(12),
    segmentBase: b.readUInt32BE(16) * TWO_32 + b.readUInt32BE(20),
    segmentSize: b.readUInt32BE(24),
  };
}

/** True when a process with this pid exists (signal 0 probes without disturbing it). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
