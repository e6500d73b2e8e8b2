/**
 * Small durable-file helpers: fsync of files and directories, and append-only JSON-lines files
 * whose last line may be torn by a crash (a line counts only once its newline is on disk).
 */
import { type FileHandle, mkdir, open, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Flushes a file's data and metadata to disk. */
export async function syncFile(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Makes a directory's entries (created, renamed or removed files) durable. */
export async function syncDirectory(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Creates a directory (and missing parents) and makes each new name durable in its parent. */
export async function mkdirDurable(dir: string): Promise<void> {
  const created = await mkdir(dir, { recursive: true });
  if (created === undefined) return;
  for (let d = dir; ; d = dirname(d)) {
    await syncDirectory(dirname(d));
    if (d === created || dirname(d) === d) return;
  }
}

function isMissing(e: unknown): boolean {
  return (e as NodeJS.ErrnoException).code === 'ENOENT';
}

/** Parses complete lines; a last line without its newline, or one that does not parse, is torn and skipped. */
function parseLines<T>(text: string): T[] {
  const out: T[] = [];
  const end = text.lastIndexOf('\n');
  if (end < 0) return out;
  for (const line of text.slice(0, end).split('\n')) {
    if (line.length === 0) continue;
    try {
      out.push(JSON.parse(line) as T);
    } catch {
      // Only the last line can be torn, and it is cut off above; anything else is not ours.
    }
  }
  return out;
}

/** Every complete line of a JSON-lines file, parsed; a missing file has none. */
export async function readJsonLines<T>(path: string): Promise<T[]> {
  try {
    return parseLines<T>(await readFile(path, 'utf8'));
  } catch (e) {
    if (isMissing(e)) return [];
    throw e;
  }
}

/**
 * The complete lines of a JSON-lines file from byte `from` on, parsed, and the byte after the last
 * of them (where the next read starts); a missing file has none. A torn line is left for later.
 * With `maxBytes`, about that much is read (more only when one line is longer), so that a long
 * file is taken in steps.
 */
export async function readJsonLinesFrom<T>(
  path: string,
  from: number,
  maxBytes = Number.POSITIVE_INFINITY,
): Promise<{ values: T[]; next: number }> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    if (isMissing(e)) return { values: [], next: from };
    throw e;
  }
  try {
    const size = (await fh.stat()).size;
    // A file cut back below `from` (a torn tail repaired) has nothing new.
    if (size <= from) return { values: [], next: Math.min(from, size) };
    for (let want = Math.min(size - from, maxBytes); ; want = Math.min(size - from, want * 2)) {
      const buffer = Buffer.alloc(want);
      const { bytesRead } = await fh.read(buffer, 0, want, from);
      const end = buffer.subarray(0, bytesRead).lastIndexOf(NEWLINE);
      if (end < 0 && want < size - from) continue; // one line longer than maxBytes
      if (end < 0) return { values: [], next: from }; // a torn last line: left for later
      return { values: parseLines<T>(buffer.subarray(0, end + 1).toString('utf8')), next: from + end + 1 };
    }
  } finally {
    await fh.close();
  }
}

/** The last complete line of a JSON-lines file, parsed, reading only its tail; undefined when there is none. */
export async function readLastJsonLine<T>(path: string): Promise<T | undefined> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    if (isMissing(e)) return undefined;
    throw e;
  }
  try {
    const size = (await fh.stat()).size;
    for (let window = 16 * 1024; ; window *= 4) {
      const start = Math.max(0, size - window);
      const buffer = Buffer.alloc(size - start);
      await fh.read(buffer, 0, buffer.length, start);
      const text = buffer.toString('utf8');
      const end = text.lastIndexOf('\n');
      const begin = end < 0 ? -1 : text.lastIndexOf('\n', end - 1);
      // The whole last line is in the window when a newline precedes it or the window is the file.
      if (end >= 0 && (begin >= 0 || start === 0)) {
        try {
          return JSON.parse(text.slice(begin + 1, end)) as T;
        } catch {
          // A torn line that happens to end in a newline: fall back to a full parse.
          const all = parseLines<T>(text);
          if (start === 0) return all[all.length - 1];
        }
      }
      if (start === 0) return undefined;
    }
  } finally {
    await fh.close();
  }
}

/**
 * An append-only JSON-lines file. Opening cuts off a torn last line (left by a crash in the middle
 * of an append), so that the next append starts on a line of its own; each append is fsynced
 * before it resolves.
 */
export class JsonLinesFile {
  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
  ) {}

  /** Opens (creating) the file and repairs a torn tail, reading only the tail. */
  static async open(path: string): Promise<JsonLinesFile> {
    const fh = await open(path, 'a+');
    try {
      const size = (await fh.stat()).size;
      const keep = await completeLength(fh, size);
      if (keep !== size) {
        await fh.truncate(keep);
        await fh.sync();
      }
    } catch (e) {
      await fh.close();
      throw e;
    }
    return new JsonLinesFile(path, fh);
  }

  /** Appends values, one line each, and resolves once they are on disk. */
  async append(values: readonly unknown[]): Promise<void> {
    if (values.length === 0) return;
    let text = '';
    for (const v of values) text += `${JSON.stringify(v)}\n`;
    await this.fh.write(text);
    await this.fh.datasync();
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}

const NEWLINE = 0x0a;

/** Bytes of the file up to and including its last line that is complete and parses. */
async function completeLength(fh: FileHandle, size: number): Promise<number> {
  for (let window = 16 * 1024; ; window *= 4) {
    const start = Math.max(0, size - window);
    const buffer = Buffer.alloc(size - start);
    await fh.read(buffer, 0, buffer.length, start);
    let end = buffer.lastIndexOf(NEWLINE);
    while (end >= 0) {
      const begin = end === 0 ? -1 : buffer.lastIndexOf(NEWLINE, end - 1);
      if (begin < 0 && start > 0) break; // the line may begin before the window: widen it
      try {
        if (end > begin + 1) JSON.parse(buffer.subarray(begin + 1, end).toString('utf8'));
        return start + end + 1;
      } catch {
        end = begin;
      }
    }
    if (start === 0) return 0;
  }
}

/** Replaces a small JSON file whole (written aside, then renamed over it): a reader sees the old or the new. */
export async function replaceJsonFile(path: string, value: unknown): Promise<void> {
  await writeFile(`${path}.tmp`, JSON.stringify(value));
  await rename(`${path}.tmp`, path);
}

/**
 * Replaces a small JSON file whole and durably: written aside and fsynced, renamed over it, and
 * the directory fsynced. A reader sees the old or the new, and after a crash so does the disk.
 */
export async function replaceJsonFileDurably(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.tmp`;
  await writeFile(tmp, JSON.stringify(value));
  await syncFile(tmp);
  await rename(tmp, path);
  await syncDirectory(dirname(path));
}

/** Size of a file, or undefined when it does not exist. */
export async function fileSize(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch (e) {
    if (isMissing(e)) return undefined;
    throw e;
  }
}
