/**
 * Compacted hours. A flush writes one file per log partition and event hour, so a busy hour holds
 * thousands of small files; once the hour is sealed, each topic's files of it are merged into at
 * most `maxFilesPerHour` (4) large ones, sorted by `(ts, log_partition, log_offset)`, with the
 * same columns and types. Late events still land as new part files and are compacted again by a
 * later pass (a new generation, whose inputs are the previous outputs plus the new parts).
 *
 * Inputs are only files the manifests committed (found by reading them from where the last pass
 * stopped, `_state/compaction/state.json`) and the hour's present compacted files: a file of a
 * flush being committed is never one. A compaction of one topic's hour:
 *
 * 1. writes the sorted rows under `_tmp/compaction/<topic>/` and fsyncs them;
 * 2. adds the hour to the unfinished ones (`state.json`), then writes its journal
 *    (`_state/compaction/<topic>/<date>-<HH>.json`: inputs, outputs and their sizes, `started`);
 * 3. renames the outputs (`compacted-<generation>-<k>.parquet`) into the hour directory, fsyncs it;
 * 4. marks the journal `swapped`: readers now read the outputs and not the inputs;
 * 5. once `inputGraceMs` has passed (a reader that listed the inputs just before has had time to
 *    open them), unlinks the inputs, fsyncs the directory, marks the journal `done` and drops the
 *    hour from the unfinished ones.
 *
 * Every write is durable before the next step. Recovery (`recoverCompactions`, at the start of
 * each pass) takes an unfinished compaction forward when all its outputs are in place, else back
 * (it removes the outputs already renamed and marks the journal `undone`): the inputs are not
 * touched before every output is in place, so either way each row is in the hour exactly once.
 * `lakeHourFiles` lists an hour's files consistently with the journal at every step.
 *
 * One process compacts: the sealer (the owner of the first topic's partition 0), after each seal
 * pass; `checkOwner` (its lease check) runs before every step that changes the hour directory.
 */
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { crashPoint } from './crash-points.ts';
import {
  mkdirDurable,
  readJsonLinesFrom,
  readLastJsonLine,
  replaceJsonFile,
  replaceJsonFileDurably,
  syncDirectory,
  syncFile,
} from './durable-files.ts';
import {
  compactedFileName,
  compactedGeneration,
  compactionDirectory,
  compactionJournalPath,
  compactionStatePath,
  compactionTmpDirectory,
  HOUR_MS,
  hourDirectory,
  hourPartition,
  hourStartOfPartition,
  manifestDirectory,
  manifestPath,
  sealedPath,
} from './layout.ts';
import type { ManifestEntry } from './manifest.ts';
import type { SealedHour } from './sealing.ts';

/** The journal of one compaction of one topic's hour (the hour's last compaction is kept). */
export interface CompactionJournal {
  /** This attempt's id: two reads of the journal with the same text saw the same step of the same attempt. */
  id: string;
  topic: string;
  hourStartMs: number;
  /** One more than the generation of the compacted files it replaces. */
  generation: number;
  /**
   * `started`: outputs being renamed in (readers read them only once all are in place);
   * `swapped`: every output in place, inputs not yet removed (readers read the outputs);
   * `done`: inputs removed; `undone`: rolled back, outputs removed (readers read the inputs).
   */
  state: 'started' | 'swapped' | 'done' | 'undone';
  /** File names in the hour directory: the previous compacted files, then committed part files. */
  inputs: string[];
  /** File names in the hour directory, with their size and rows. */
  outputs: { name: string; bytes: number; rows: number }[];
  rows: number;
  startedAt: number;
  swappedAt?: number;
  endedAt?: number;
}

/** Options of {@link compactSealedHours} and {@link recoverCompactions}. */
export interface CompactionOptions {
  /** The clock (epoch ms), the one the manifests' `at` were written with. Default `Date.now`. */
  now?: () => number;
  /** Topic-hours compacted per pass at most. Default 2. */
  maxHoursPerPass?: number;
  /** A compacted file holds at most this many rows, unless that would take more than `maxFilesPerHour` files. Default 4M. */
  maxRowsPerFile?: number;
  /** Compacted files per topic and hour at most. Default 4. */
  maxFilesPerHour?: number;
  /** Compact an hour once no file was committed for it this long (late events come in bursts). Default 60 s. */
  quietMs?: number;
  /** ...or once its oldest waiting file was committed this long ago. Default 15 min. */
  maxWaitMs?: number;
  /** Inputs are removed this long after the swap: readers that listed them just before can still open them. Default 5 min. */
  inputGraceMs?: number;
  /** DuckDB threads. Default 1 (the archiver's cores go to consuming). */
  threads?: number;
  /** Throws when this process may no longer compact (the sealer's lease was lost); called before each change to an hour directory. */
  checkOwner?: () => Promise<void>;
}

/** One topic's hour compacted by a pass. */
export interface CompactedHour {
  topic: string;
  hourStartMs: number;
  generation: number;
  /** Input files (previous compacted files and part files) and output files. */
  filesBefore: number;
  filesAfter: number;
  rows: number;
  /** Whether the inputs are removed already (else they wait for `inputGraceMs`). */
  done: boolean;
  ms: number;
}

/** What a compaction pass did. */
export interface CompactionReport {
  hours: CompactedHour[];
  filesBefore: number;
  filesAfter: number;
  rows: number;
  /** Unfinished compactions recovery took forward or back (or finished after their grace). */
  recovered: number;
  /** Sealed topic-hours with files to compact that were left for later passes (`maxHoursPerPass`). */
  waiting: number;
}

/** A topic's hour with committed part files not compacted yet. */
interface WaitingHour {
  /** Names in the hour directory. */
  files: string[];
  /** When the oldest and the newest of them were committed (the manifests' `at`). */
  firstAt: number;
  lastAt: number;
}

/** Compaction's own state (`_state/compaction/state.json`). */
interface CompactionState {
  /** Where the scan stopped in each manifest (bytes), by `topic/partition`. */
  cursors: Record<string, number>;
  /** Per topic, per hour start: committed part files waiting to be compacted. */
  waiting: Record<string, Record<string, WaitingHour>>;
  /** Compactions whose journal is not `done` or `undone` yet. */
  unfinished: { topic: string; hourStartMs: number }[];
}

interface Settings {
  lakeDir: string;
  now: () => number;
  maxHoursPerPass: number;
  maxRowsPerFile: number;
  maxFilesPerHour: number;
  quietMs: number;
  maxWaitMs: number;
  inputGraceMs: number;
  threads: number;
  checkOwner: () => Promise<void>;
}

/** Bytes of a manifest read per pass at most: a long manifest of an older lake is read over several passes. */
const SCAN_BYTES = 4 << 20;

const ORDER = 'ts, log_partition, log_offset';

function settingsOf(lakeDir: string, o: CompactionOptions): Settings {
  return {
    lakeDir,
    now: o.now ?? Date.now,
    maxHoursPerPass: o.maxHoursPerPass ?? 2,
    maxRowsPerFile: o.maxRowsPerFile ?? 4_000_000,
    maxFilesPerHour: Math.max(1, o.maxFilesPerHour ?? 4),
    quietMs: o.quietMs ?? 60_000,
    maxWaitMs: o.maxWaitMs ?? 15 * 60_000,
    inputGraceMs: o.inputGraceMs ?? 5 * 60_000,
    threads: o.threads ?? 1,
    checkOwner: o.checkOwner ?? (async () => undefined),
  };
}

/** Kill tests stop a compaction at a step with this variable (see `crash-points.ts`). */
export const COMPACTION_CRASH_AT = 'RECKON_LAKE_COMPACTION_CRASH_AT';
/** The steps of a compaction, in order (`input-unlinked` and `output-renamed` once per file). */
export const COMPACTION_STEPS = [
  'outputs-written',
  'unfinished-recorded',
  'journal-started',
  'output-renamed',
  'outputs-renamed',
  'journal-swapped',
  'input-unlinked',
  'inputs-unlinked',
  'journal-done',
  'state-written',
] as const;

const step = (name: (typeof COMPACTION_STEPS)[number]): void => crashPoint(COMPACTION_CRASH_AT, name);

const sqlString = (s: string): string => `'${s.replaceAll("'", "''")}'`;

function isMissing(e: unknown): boolean {
  return (e as NodeJS.ErrnoException).code === 'ENOENT';
}

/** A data file a reader may read: a Parquet file that is not a temporary (dot) file. */
function isDataFile(name: string): boolean {
  return name.endsWith('.parquet') && !name.startsWith('.');
}

function readTextSync(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if (isMissing(e)) return undefined;
    throw e;
  }
}

function parseJournal(text: string | undefined): CompactionJournal | undefined {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as CompactionJournal;
  } catch {
    return undefined; // replaced whole by rename, so never torn; anything else is not ours
  }
}

/** The data files a reader must read among an hour directory's names, given its journal. */
function readableFiles(names: readonly string[], journal: CompactionJournal | undefined): string[] {
  let files = names.filter(isDataFile);
  if (journal !== undefined && (journal.state === 'started' || journal.state === 'swapped')) {
    const present = new Set(files);
    const inPlace = journal.state === 'swapped' || journal.outputs.every((o) => present.has(o.name));
    const hidden = new Set(inPlace ? journal.inputs : journal.outputs.map((o) => o.name));
    files = files.filter((n) => !hidden.has(n));
  }
  return files.sort();
}

/**
 * The data files of one topic's hour that a reader must read now (absolute paths, sorted): every
 * Parquet file of the hour directory but temporary ones, and while a compaction is unfinished,
 * its outputs once all are in place and then not its inputs, else its inputs and not its outputs.
 * The journal is read before and after the directory; a listing that straddled a step of a
 * compaction is taken again.
 */
export function lakeHourFiles(lakeDir: string, topic: string, hourStartMs: number): string[] {
  const dir = join(lakeDir, hourDirectory(topic, hourStartMs));
  const journalPath = compactionJournalPath(lakeDir, topic, hourStartMs);
  for (let attempt = 0; ; attempt++) {
    const before = readTextSync(journalPath);
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (e) {
      if (!isMissing(e)) throw e;
      names = [];
    }
    const after = readTextSync(journalPath);
    // Each step changes the journal's text; a step per listing for 100 listings in a row is not a compaction.
    if (before !== after && attempt < 100) continue;
    return readableFiles(names, parseJournal(after)).map((n) => join(dir, n));
  }
}

/** Every data file of a topic a reader must read now (`lakeHourFiles` of each hour directory), for whole-topic readers. */
export function lakeTopicFiles(lakeDir: string, topic: string): string[] {
  const names = (dir: string, prefix: string): string[] => {
    try {
      return readdirSync(dir)
        .filter((n) => n.startsWith(prefix))
        .sort();
    } catch (e) {
      if (isMissing(e)) return [];
      throw e;
    }
  };
  const files: string[] = [];
  for (const date of names(join(lakeDir, topic), 'date=')) {
    for (const hour of names(join(lakeDir, topic, date), 'hour=')) {
      const start = hourStartOfPartition(date.slice(5), hour.slice(5));
      if (Number.isFinite(start)) files.push(...lakeHourFiles(lakeDir, topic, start));
    }
  }
  return files;
}

async function readJournal(
  lakeDir: string,
  topic: string,
  hourStartMs: number,
): Promise<CompactionJournal | undefined> {
  try {
    return parseJournal(await readFile(compactionJournalPath(lakeDir, topic, hourStartMs), 'utf8'));
  } catch (e) {
    if (isMissing(e)) return undefined;
    throw e;
  }
}

async function writeJournal(lakeDir: string, journal: CompactionJournal): Promise<void> {
  const path = compactionJournalPath(lakeDir, journal.topic, journal.hourStartMs);
  await mkdirDurable(dirname(path));
  await replaceJsonFileDurably(path, journal);
}

async function readdirQuietly(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (e) {
    if (isMissing(e)) return [];
    throw e;
  }
}

async function unlinkQuietly(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (e) {
    if (isMissing(e)) return false;
    throw e;
  }
}

async function syncDirectoryIfPresent(dir: string): Promise<void> {
  try {
    await syncDirectory(dir);
  } catch (e) {
    if (!isMissing(e)) throw e;
  }
}

/** Compaction's state; a missing or unreadable one is rebuilt (the manifests read again, unfinished journals found). */
async function readState(lakeDir: string): Promise<{ state: CompactionState; rebuilt: boolean }> {
  try {
    const state = JSON.parse(await readFile(compactionStatePath(lakeDir), 'utf8')) as CompactionState;
    state.cursors ??= {};
    state.waiting ??= {};
    state.unfinished ??= [];
    return { state, rebuilt: false };
  } catch {
    // Reading every manifest again is harmless: files compacted already are no longer there.
    const state: CompactionState = { cursors: {}, waiting: {}, unfinished: [] };
    for (const topic of await readdirQuietly(compactionDirectory(lakeDir))) {
      const dir = join(compactionDirectory(lakeDir), topic);
      for (const name of await readdirQuietly(dir)) {
        if (!/^\d{4}-\d{2}-\d{2}-\d{2}\.json$/.test(name)) continue;
        const j = parseJournal(await readFile(join(dir, name), 'utf8').catch(() => undefined));
        if (j !== undefined && (j.state === 'started' || j.state === 'swapped'))
          state.unfinished.push({ topic: j.topic, hourStartMs: j.hourStartMs });
      }
    }
    return { state, rebuilt: true };
  }
}

/** Writes the state; durably when it changes what recovery will do (the unfinished compactions). */
function writeState(lakeDir: string, state: CompactionState, durably: boolean): Promise<void> {
  return durably
    ? replaceJsonFileDurably(compactionStatePath(lakeDir), state)
    : replaceJsonFile(compactionStatePath(lakeDir), state);
}

/** Adds the files of flushes committed since the last pass to the hours waiting for compaction. */
async function scanManifests(lakeDir: string, topics: readonly string[], state: CompactionState): Promise<boolean> {
  let changed = false;
  for (const topic of topics) {
    const names = (await readdirQuietly(manifestDirectory(lakeDir, topic))).filter((n) => /^\d+\.jsonl$/.test(n));
    const touched = new Set<WaitingHour>();
    for (const name of names) {
      const partition = Number.parseInt(name, 10);
      const id = `${topic}/${partition}`;
      const from = state.cursors[id] ?? 0;
      const { values, next } = await readJsonLinesFrom<ManifestEntry>(
        manifestPath(lakeDir, topic, partition),
        from,
        SCAN_BYTES,
      );
      if (next === from) continue;
      state.cursors[id] = next;
      changed = true;
      for (const e of values) {
        for (const f of e.files) {
          const m = /date=(\d{4}-\d{2}-\d{2})\/hour=(\d{2})\/([^/]+)$/.exec(f);
          if (m === null) continue;
          const hour = hourStartOfPartition(m[1] as string, m[2] as string);
          const byHour = (state.waiting[topic] ??= {});
          const w = (byHour[String(hour)] ??= { files: [], firstAt: e.at, lastAt: e.at });
          w.files.push(m[3] as string);
          w.firstAt = Math.min(w.firstAt, e.at);
          w.lastAt = Math.max(w.lastAt, e.at);
          touched.add(w);
        }
      }
    }
    // A crash before the state was written reads lines again: a file is listed once.
    for (const w of touched) w.files = [...new Set(w.files)];
  }
  return changed;
}

const sameHour = (a: { topic: string; hourStartMs: number }, topic: string, hourStartMs: number) =>
  a.topic === topic && a.hourStartMs === hourStartMs;

/** Drops a compaction from the unfinished ones, and its inputs from the files waiting for one. */
function forget(state: CompactionState, journal: CompactionJournal, compacted: boolean): void {
  state.unfinished = state.unfinished.filter((u) => !sameHour(u, journal.topic, journal.hourStartMs));
  if (!compacted) return;
  const byHour = state.waiting[journal.topic];
  const w = byHour?.[String(journal.hourStartMs)];
  if (byHour === undefined || w === undefined) return;
  const inputs = new Set(journal.inputs);
  w.files = w.files.filter((f) => !inputs.has(f));
  if (w.files.length === 0) delete byHour[String(journal.hourStartMs)];
}

/** Removes a swapped compaction's inputs and marks it done. */
async function finish(s: Settings, state: CompactionState, journal: CompactionJournal): Promise<void> {
  const dir = join(s.lakeDir, hourDirectory(journal.topic, journal.hourStartMs));
  await s.checkOwner();
  for (const name of journal.inputs) {
    await unlinkQuietly(join(dir, name));
    step('input-unlinked');
  }
  await syncDirectoryIfPresent(dir);
  step('inputs-unlinked');
  await writeJournal(s.lakeDir, { ...journal, state: 'done', endedAt: s.now() });
  step('journal-done');
  forget(state, journal, true);
  await writeState(s.lakeDir, state, true);
  step('state-written');
}

/**
 * Takes one unfinished compaction forward (every output in place: it is swapped, and finished
 * once its grace has passed) or back (outputs removed, journal `undone`). Returns whether it is
 * finished either way (false: swapped, inputs waiting for their grace).
 */
async function settle(s: Settings, state: CompactionState, journal: CompactionJournal): Promise<boolean> {
  const dir = join(s.lakeDir, hourDirectory(journal.topic, journal.hourStartMs));
  let j = journal;
  if (j.state === 'started') {
    let inPlace = true;
    for (const o of j.outputs) {
      const size = await stat(join(dir, o.name)).then(
        (st) => st.size,
        () => undefined,
      );
      if (size !== o.bytes) inPlace = false;
    }
    if (inPlace) {
      j = { ...j, state: 'swapped', swappedAt: s.now() };
      await writeJournal(s.lakeDir, j);
    } else {
      await s.checkOwner();
      for (const o of j.outputs) await unlinkQuietly(join(dir, o.name));
      await syncDirectoryIfPresent(dir);
      await writeJournal(s.lakeDir, { ...j, state: 'undone', endedAt: s.now() });
      forget(state, j, false);
      await writeState(s.lakeDir, state, true);
      return true;
    }
  }
  if (j.state === 'swapped') {
    if (s.now() - (j.swappedAt ?? 0) < s.inputGraceMs) return false;
    await finish(s, state, j);
    return true;
  }
  forget(state, j, j.state === 'done');
  return true;
}

/** Settles every unfinished compaction (see `settle`) and removes temporary files; returns how many it finished. */
async function recoverWith(s: Settings, state: CompactionState): Promise<number> {
  let finished = 0;
  for (const u of [...state.unfinished]) {
    const journal = await readJournal(s.lakeDir, u.topic, u.hourStartMs);
    if (journal === undefined) {
      // Recorded as unfinished, crashed before its journal was written: nothing was renamed.
      state.unfinished = state.unfinished.filter((x) => !sameHour(x, u.topic, u.hourStartMs));
      await writeState(s.lakeDir, state, true);
      finished++;
      continue;
    }
    if (await settle(s, state, journal)) finished++;
  }
  // Nothing of this process is being written now: whatever is under _tmp was cut short.
  await rm(join(s.lakeDir, '_tmp', 'compaction'), { recursive: true, force: true });
  return finished;
}

/**
 * Recovers the lake's compactions after a crash: takes every unfinished one forward (all its
 * outputs in place) or back, and finishes swapped ones whose inputs' grace has passed. Returns
 * how many it settled. `compactSealedHours` runs it first.
 */
export async function recoverCompactions(lakeDir: string, options: CompactionOptions = {}): Promise<number> {
  const s = settingsOf(lakeDir, options);
  const { state, rebuilt } = await readState(lakeDir);
  if (rebuilt) await mkdirDurable(compactionDirectory(lakeDir));
  const n = await recoverWith(s, state);
  if (rebuilt) await writeState(lakeDir, state, true);
  return n;
}

/** One pass's DuckDB: an in-memory instance of its own, opened for the first hour that needs it. */
class PassDatabase {
  private opened: { instance: DuckDBInstance; connection: DuckDBConnection } | undefined;

  constructor(private readonly s: Settings) {}

  async connection(): Promise<DuckDBConnection> {
    if (this.opened === undefined) {
      const spill = join(this.s.lakeDir, '_tmp', 'compaction', 'duckdb');
      await mkdir(spill, { recursive: true });
      const instance = await DuckDBInstance.create(':memory:', {
        threads: String(this.s.threads),
        temp_directory: spill,
        preserve_insertion_order: 'true',
      });
      this.opened = { instance, connection: await instance.connect() };
    }
    return this.opened.connection;
  }

  close(): void {
    this.opened?.connection.closeSync();
    this.opened?.instance.closeSync();
    this.opened = undefined;
  }
}

/**
 * Compacts one topic's sealed hour: its present compacted files and the waiting committed part
 * files into at most `maxFilesPerHour` sorted files; `nothing` when none of those part files is
 * there any more, `busy` when a compaction of the hour is unfinished.
 */
async function compactHour(
  s: Settings,
  db: PassDatabase,
  state: CompactionState,
  topic: string,
  hourStartMs: number,
  waiting: WaitingHour,
): Promise<CompactedHour | 'nothing' | 'busy'> {
  const started = performance.now();
  const dir = join(s.lakeDir, hourDirectory(topic, hourStartMs));
  const previous = await readJournal(s.lakeDir, topic, hourStartMs);
  if (previous?.state === 'started' || previous?.state === 'swapped') {
    // Unfinished but not listed (a state rebuilt while it ran): the next pass's recovery settles it first.
    state.unfinished.push({ topic, hourStartMs });
    await writeState(s.lakeDir, state, true);
    return 'busy';
  }
  const names = await readdirQuietly(dir);
  const present = new Set(names);
  const compacted = names.filter((n) => compactedGeneration(n) !== undefined).sort();
  const parts = waiting.files.filter((n) => present.has(n)).sort();
  if (parts.length === 0) return 'nothing';
  const generation = Math.max(previous?.generation ?? 0, ...compacted.map((n) => compactedGeneration(n) as number)) + 1;
  const inputs = [...compacted, ...parts];
  const source = `read_parquet([${inputs.map((n) => sqlString(join(dir, n))).join(', ')}], hive_partitioning = false)`;
  const c = await db.connection();
  const rows = Number((await c.runAndReadAll(`SELECT count(*) FROM ${source}`)).getRows()[0]?.[0] ?? 0);
  const k = Math.min(s.maxFilesPerHour, Math.max(1, Math.ceil(rows / s.maxRowsPerFile)));
  const per = Math.ceil(rows / k);
  const tmpDir = compactionTmpDirectory(s.lakeDir, topic);
  await mkdir(tmpDir, { recursive: true });
  const { date, hour } = hourPartition(hourStartMs);
  const outputs: CompactionJournal['outputs'] = [];
  const tmpPaths: string[] = [];
  try {
    for (let i = 0; i < k; i++) {
      const name = compactedFileName(generation, i);
      const tmp = join(tmpDir, `.tmp-${date}-${hour}-${name}`);
      tmpPaths.push(tmp);
      // Every row has its own (log_partition, log_offset): the order is total, and the slices are disjoint.
      const slice = k === 1 ? '' : ` LIMIT ${per} OFFSET ${i * per}`;
      const result = await c.run(
        `COPY (SELECT * FROM ${source} ORDER BY ${ORDER}${slice}) TO ${sqlString(tmp)} (FORMAT parquet, COMPRESSION zstd)`,
      );
      await syncFile(tmp);
      outputs.push({ name, bytes: (await stat(tmp)).size, rows: Number(result.rowsChanged) });
    }
    const written = outputs.reduce((n, o) => n + o.rows, 0);
    if (written !== rows) throw new Error(`compacting ${dir}: wrote ${written} rows of ${rows}`);
    step('outputs-written');

    const journal: CompactionJournal = {
      id: randomUUID(),
      topic,
      hourStartMs,
      generation,
      state: 'started',
      inputs,
      outputs,
      rows,
      startedAt: s.now(),
    };
    state.unfinished.push({ topic, hourStartMs });
    await writeState(s.lakeDir, state, true);
    step('unfinished-recorded');
    await writeJournal(s.lakeDir, journal);
    step('journal-started');
    await s.checkOwner();
    for (let i = 0; i < k; i++) {
      await rename(tmpPaths[i] as string, join(dir, (outputs[i] as { name: string }).name));
      step('output-renamed');
    }
    await syncDirectory(dir);
    step('outputs-renamed');
    const swapped: CompactionJournal = { ...journal, state: 'swapped', swappedAt: s.now() };
    await writeJournal(s.lakeDir, swapped);
    step('journal-swapped');
    const done = s.inputGraceMs <= 0;
    if (done) await finish(s, state, swapped);
    return {
      topic,
      hourStartMs,
      generation,
      filesBefore: inputs.length,
      filesAfter: outputs.length,
      rows,
      done,
      ms: Math.round(performance.now() - started),
    };
  } finally {
    await Promise.all(tmpPaths.map((p) => rm(p, { force: true })));
  }
}

/**
 * A compaction pass over `topics`: recovers unfinished compactions, reads the manifests' new
 * lines, and compacts up to `maxHoursPerPass` sealed topic-hours with committed part files (once
 * no file was committed for them for `quietMs`, or their oldest waited `maxWaitMs`), oldest first.
 */
export async function compactSealedHours(
  lakeDir: string,
  topics: readonly string[],
  options: CompactionOptions = {},
): Promise<CompactionReport> {
  const s = settingsOf(lakeDir, options);
  await mkdirDurable(compactionDirectory(lakeDir));
  const { state, rebuilt } = await readState(lakeDir);
  const report: CompactionReport = { hours: [], filesBefore: 0, filesAfter: 0, rows: 0, recovered: 0, waiting: 0 };
  report.recovered = await recoverWith(s, state);
  if ((await scanManifests(lakeDir, topics, state)) || rebuilt) await writeState(lakeDir, state, rebuilt);

  const last = await readLastJsonLine<SealedHour>(sealedPath(lakeDir));
  if (last === undefined) return report;
  const sealedBefore = last.hourStartMs + HOUR_MS;
  const now = s.now();
  const due: { topic: string; hourStartMs: number; waiting: WaitingHour }[] = [];
  for (const topic of topics) {
    for (const [key, waiting] of Object.entries(state.waiting[topic] ?? {})) {
      const hourStartMs = Number(key);
      if (hourStartMs >= sealedBefore) continue;
      if (state.unfinished.some((u) => sameHour(u, topic, hourStartMs))) continue;
      if (now - waiting.lastAt < s.quietMs && now - waiting.firstAt < s.maxWaitMs) continue;
      due.push({ topic, hourStartMs, waiting });
    }
  }
  due.sort((a, b) => a.hourStartMs - b.hourStartMs || a.topic.localeCompare(b.topic));
  const db = new PassDatabase(s);
  try {
    let compactedHours = 0;
    for (const d of due) {
      if (compactedHours >= s.maxHoursPerPass) {
        report.waiting++;
        continue;
      }
      const done = await compactHour(s, db, state, d.topic, d.hourStartMs, d.waiting);
      if (done === 'busy') continue;
      if (done === 'nothing') {
        // Nothing left to compact (its files were compacted before a crash, or removed).
        delete state.waiting[d.topic]?.[String(d.hourStartMs)];
        await writeState(lakeDir, state, false);
        continue;
      }
      compactedHours++;
      report.hours.push(done);
      report.filesBefore += done.filesBefore;
      report.filesAfter += done.filesAfter;
      report.rows += done.rows;
    }
  } finally {
    db.close();
  }
  return report;
}
