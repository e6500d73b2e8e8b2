/**
 * Append forwarding for the embedded log. One process (the writer) owns the segment files; other
 * processes open the log as readers. A reader's `append` and `createTopic` travel over a local
 * socket to the writer, which appends them with its group commit and answers with the appended
 * ranges once they are durable. So worker processes can write dead letters, gap records and
 * results without a second writer.
 *
 * Frames are length-prefixed and binary: `u32 length | u32 request id | u8 op | body`; answers
 * are `u32 length | u32 request id | u8 status | body`. Requests on one connection are pipelined
 * and answered as they complete.
 *
 * A request whose answer never comes (the writer died or restarted) fails with the retriable
 * `RECKON_LOG_WRITER_UNAVAILABLE`: its records may or may not have been appended, so a retry is
 * at-least-once, like a Kafka producer without idempotence.
 */
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { ReckonError } from '../events/index.ts';
import type { AppendedRange, RecordInput, TopicSpec } from './types.ts';

const OP_APPEND = 1;
const OP_CREATE_TOPIC = 2;
const STATUS_OK = 0;
const STATUS_ERROR = 1;
/** Largest frame accepted either way. */
const MAX_FRAME_BYTES = 256 * 1024 * 1024;
/** Unix socket paths are limited to 108 bytes; longer ones use Linux's abstract namespace. */
const MAX_SOCKET_PATH = 100;

/** What the writer does with forwarded requests. */
export interface AppendTarget {
  append(topic: string, records: readonly RecordInput[]): Promise<AppendedRange[]>;
  createTopic(spec: TopicSpec): Promise<void>;
}

/** The socket a log directory's writer listens on. */
export function appendSocketPath(logDir: string): string {
  const path = join(logDir, 'writer.sock');
  if (Buffer.byteLength(path) <= MAX_SOCKET_PATH) return path;
  return `\0reckon-log-${createHash('sha256').update(logDir).digest('hex').slice(0, 24)}`;
}

function unavailable(logDir: string, detail: string): ReckonError {
  return new ReckonError(
    'RECKON_LOG_WRITER_UNAVAILABLE',
    `cannot forward to the log writer of ${logDir} (${detail}); the writer process (reckon start, or the process that opened the log as writer) must be running. Retry: a forwarded append that got no answer may or may not have been appended`,
    { retriable: true },
  );
}

/** Per record: i32 partition, f64 timestamp, i32 key length, u32 value length, u16 header count. */
const FIXED_BYTES = 22;

/** Encodes records: `u16 topic | u32 count | per record: i32 partition, f64 timestamp, i32 key, u32 value, u16 headers`. */
function encodeAppend(topic: string, records: readonly RecordInput[]): Buffer[] {
  // One buffer for the whole request (a socket write per part cost more than the encoding):
  // sized for the worst case of each string, cut to what was written.
  let bound = 2 + Buffer.byteLength(topic) + 4;
  for (const r of records) {
    bound += FIXED_BYTES + r.value.length;
    if (r.key !== undefined && r.key !== null) bound += typeof r.key === 'string' ? r.key.length * 3 : r.key.length;
    if (r.headers !== undefined)
      for (const name in r.headers) {
        const v = r.headers[name]!;
        bound += 6 + name.length * 3 + (typeof v === 'string' ? v.length * 3 : v.length);
      }
  }
  const out = Buffer.allocUnsafe(bound);
  let at = 2;
  const topicLength = out.write(topic, at);
  out.writeUInt16BE(topicLength, 0);
  at += topicLength;
  out.writeUInt32BE(records.length, at);
  at += 4;
  for (const r of records) {
    const fixed = at;
    at += FIXED_BYTES;
    out.writeInt32BE(r.partition ?? -1, fixed);
    out.writeDoubleBE(r.timestamp ?? Number.NaN, fixed + 4);
    let keyLength = -1;
    if (r.key !== undefined && r.key !== null) {
      keyLength = typeof r.key === 'string' ? out.write(r.key, at) : r.key.copy(out, at);
      at += keyLength;
    }
    out.writeInt32BE(keyLength, fixed + 12);
    out.writeUInt32BE(r.value.length, fixed + 16);
    at += r.value.copy(out, at);
    let headerCount = 0;
    if (r.headers !== undefined)
      for (const name in r.headers) {
        const v = r.headers[name]!;
        const h = at;
        at += 6;
        const nameLength = out.write(name, at);
        at += nameLength;
        const valueLength = typeof v === 'string' ? out.write(v, at) : v.copy(out, at);
        at += valueLength;
        out.writeUInt16BE(nameLength, h);
        out.writeUInt32BE(valueLength, h + 2);
        headerCount++;
      }
    out.writeUInt16BE(headerCount, fixed + 20);
  }
  return [out.subarray(0, at)];
}

function decodeAppend(body: Buffer): { topic: string; records: RecordInput[] } {
  let at = 0;
  const topicLength = body.readUInt16BE(at);
  const topic = body.toString('utf8', 2, 2 + topicLength);
  at = 2 + topicLength;
  const count = body.readUInt32BE(at);
  at += 4;
  const records: RecordInput[] = [];
  for (let i = 0; i < count; i++) {
    const partition = body.readInt32BE(at);
    const timestamp = body.readDoubleBE(at + 4);
    const keyLength = body.readInt32BE(at + 12);
    const valueLength = body.readUInt32BE(at + 16);
    const headerCount = body.readUInt16BE(at + 20);
    at += 22;
    const key = keyLength >= 0 ? body.subarray(at, at + keyLength) : undefined;
    if (keyLength > 0) at += keyLength;
    const record: RecordInput = { value: body.subarray(at, at + valueLength) };
    if (key !== undefined) record.key = key;
    at += valueLength;
    if (partition >= 0) record.partition = partition;
    if (!Number.isNaN(timestamp)) record.timestamp = timestamp;
    if (headerCount > 0) {
      const headers: Record<string, Buffer> = {};
      for (let h = 0; h < headerCount; h++) {
        const nameLength = body.readUInt16BE(at);
        const valueLen = body.readUInt32BE(at + 2);
        at += 6;
        const name = body.toString('utf8', at, at + nameLength);
        at += nameLength;
        headers[name] = body.subarray(at, at + valueLen);
        at += valueLen;
      }
      record.headers = headers;
    }
    records.push(record);
  }
  if (at !== body.length) throw new Error(`append frame has ${body.length - at} trailing bytes`);
  return { topic, records };
}

function encodeRanges(ranges: AppendedRange[]): Buffer {
  const out = Buffer.allocUnsafe(4 + ranges.length * 16);
  out.writeUInt32BE(ranges.length, 0);
  ranges.forEach((r, i) => {
    out.writeInt32BE(r.partition, 4 + i * 16);
    out.writeDoubleBE(r.baseOffset, 8 + i * 16);
    out.writeInt32BE(r.count, 16 + i * 16);
  });
  return out;
}

function decodeRanges(body: Buffer): AppendedRange[] {
  const n = body.readUInt32BE(0);
  const ranges: AppendedRange[] = [];
  for (let i = 0; i < n; i++) {
    ranges.push({
      partition: body.readInt32BE(4 + i * 16),
      baseOffset: body.readDoubleBE(8 + i * 16),
      count: body.readInt32BE(16 + i * 16),
    });
  }
  return ranges;
}

/** Writes one frame: length, request id, op or status, then the body parts. */
function writeFrame(socket: Socket, id: number, tag: number, body: Buffer[]): void {
  const bodyLength = body.reduce((n, b) => n + b.length, 0);
  const head = Buffer.allocUnsafe(9);
  head.writeUInt32BE(5 + bodyLength, 0);
  head.writeUInt32BE(id, 4);
  head.writeUInt8(tag, 8);
  socket.cork();
  socket.write(head);
  for (const b of body) socket.write(b);
  socket.uncork();
}

/** Splits a byte stream into frames and calls `onFrame(id, tag, body)` for each; chunks are joined once per frame. */
function frameReader(onFrame: (id: number, tag: number, body: Buffer) => void, onTooLarge: (n: number) => void) {
  let chunks: Buffer[] = [];
  let buffered = 0;
  return (chunk: Buffer): void => {
    chunks.push(chunk);
    buffered += chunk.length;
    while (buffered >= 4) {
      if ((chunks[0] as Buffer).length < 4) chunks = [Buffer.concat(chunks)];
      const length = (chunks[0] as Buffer).readUInt32BE(0);
      if (length > MAX_FRAME_BYTES || length < 5) return onTooLarge(length);
      if (buffered < 4 + length) return;
      const data = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
      const frame = data.subarray(4, 4 + length);
      const rest = data.subarray(4 + length);
      chunks = rest.length > 0 ? [rest] : [];
      buffered = rest.length;
      onFrame(frame.readUInt32BE(0), frame.readUInt8(4), frame.subarray(5));
    }
  };
}

function errorBody(e: unknown): Buffer[] {
  const err = e as { code?: string; message?: string; retriable?: boolean };
  return [
    Buffer.from(
      JSON.stringify({
        code: err.code ?? 'RECKON_LOG_FORWARD_FAILED',
        message: err.message,
        retriable: !!err.retriable,
      }),
    ),
  ];
}

/** The writer's end: serves forwarded appends for one log directory. */
export class AppendServer {
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;

  private constructor(
    readonly path: string,
    private readonly target: AppendTarget,
  ) {
    this.server = createServer((socket) => this.serve(socket));
  }

  /** Listens on the directory's socket. Call only while holding the writer lock (a stale socket file is replaced). */
  static async listen(logDir: string, target: AppendTarget): Promise<AppendServer> {
    const out = new AppendServer(appendSocketPath(logDir), target);
    if (!out.path.startsWith('\0')) rmSync(out.path, { force: true });
    await new Promise<void>((resolve, reject) => {
      out.server.once('error', reject);
      out.server.listen(out.path, () => {
        out.server.off('error', reject);
        resolve();
      });
    });
    // Serving readers never keeps the writer process alive by itself.
    out.server.unref();
    return out;
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    const answer = (id: number, work: () => Promise<Buffer[]>): void => {
      work().then(
        (body) => !socket.destroyed && writeFrame(socket, id, STATUS_OK, body),
        (e: unknown) => !socket.destroyed && writeFrame(socket, id, STATUS_ERROR, errorBody(e)),
      );
    };
    const onFrame = (id: number, op: number, body: Buffer): void => {
      if (op === OP_APPEND) {
        answer(id, async () => {
          const { topic, records } = decodeAppend(body);
          return [encodeRanges(await this.target.append(topic, records))];
        });
      } else if (op === OP_CREATE_TOPIC) {
        answer(id, async () => {
          await this.target.createTopic(JSON.parse(body.toString('utf8')) as TopicSpec);
          return [];
        });
      } else {
        answer(id, async () => {
          throw new Error(`unknown request type ${op}`);
        });
      }
    };
    socket.on(
      'data',
      frameReader(onFrame, (n) => socket.destroy(new Error(`frame of ${n} bytes refused`))),
    );
  }

  /** Stops serving; requests in flight get no answer (their clients see the writer as gone). */
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
    if (!this.path.startsWith('\0')) rmSync(this.path, { force: true });
  }
}

interface Pending {
  resolve: (body: Buffer) => void;
  reject: (e: Error) => void;
}

/** A reader's end: forwards appends and topic creation to the writer. Connects on first use and again after a loss. */
export class AppendClient {
  private socket: Socket | undefined;
  private connecting: Promise<Socket> | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(private readonly logDir: string) {}

  async append(topic: string, records: readonly RecordInput[]): Promise<AppendedRange[]> {
    if (records.length === 0) return [];
    return decodeRanges(await this.request(OP_APPEND, encodeAppend(topic, records)));
  }

  async createTopic(spec: TopicSpec): Promise<void> {
    await this.request(OP_CREATE_TOPIC, [Buffer.from(JSON.stringify(spec))]);
  }

  private async request(op: number, body: Buffer[]): Promise<Buffer> {
    const socket = await this.connect();
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    return new Promise<Buffer>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // An idle connection never keeps the process alive; one with requests in flight does.
      if (this.pending.size === 1) socket.ref();
      writeFrame(socket, id, op, body);
    });
  }

  private connect(): Promise<Socket> {
    if (this.socket !== undefined && !this.socket.destroyed) return Promise.resolve(this.socket);
    this.connecting ??= new Promise<Socket>((resolve, reject) => {
      const socket = createConnection(appendSocketPath(this.logDir));
      const failConnect = (e: Error): void => {
        this.connecting = undefined;
        reject(unavailable(this.logDir, (e as NodeJS.ErrnoException).code ?? e.message));
      };
      socket.once('error', failConnect);
      socket.once('connect', () => {
        socket.off('error', failConnect);
        this.connecting = undefined;
        this.socket = socket;
        socket.on('error', () => undefined);
        socket.on('close', () => this.lost(socket, 'the connection to the writer closed'));
        socket.on(
          'data',
          frameReader(
            (id, status, answer) => this.settle(id, status, answer),
            (n) => socket.destroy(new Error(`frame of ${n} bytes refused`)),
          ),
        );
        resolve(socket);
      });
    });
    return this.connecting;
  }

  private settle(id: number, status: number, body: Buffer): void {
    const waiting = this.pending.get(id);
    if (waiting === undefined) return;
    this.pending.delete(id);
    if (this.pending.size === 0) this.socket?.unref();
    if (status === STATUS_OK) return waiting.resolve(body);
    const e = JSON.parse(body.toString('utf8')) as { code: string; message: string; retriable: boolean };
    waiting.reject(new ReckonError(e.code, e.message, { retriable: e.retriable }));
  }

  private lost(socket: Socket, detail: string): void {
    if (this.socket === socket) this.socket = undefined;
    const failed = [...this.pending.values()];
    this.pending.clear();
    for (const p of failed) p.reject(unavailable(this.logDir, detail));
  }

  close(): void {
    this.socket?.destroy();
    this.socket = undefined;
  }
}
