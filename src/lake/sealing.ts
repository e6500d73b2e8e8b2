/**
 * Sealed hours and late arrivals, kept in the lake as append-only JSON-lines files.
 *
 * An hour is sealed when the wall clock is past its end plus the allowed lateness and the lake
 * holds everything appended to the log before that moment. Hours are sealed in order: every hour
 * before the last sealed one is sealed too (the first seal also covers all earlier hours, which
 * hold no data the lake does not hold). One archiver of a group seals (the owner of the first
 * topic's partition 0); it reads how far the other partitions are from their manifests, so it
 * needs no word from the other archivers.
 *
 * A flush committed after the seal of an hour it holds events for is a late arrival. The sealer
 * finds them in the manifests: each seal line records the log ends it waited for, and a flush of
 * the hour that reaches past them came after the seal's snapshot. It reads every manifest from
 * where it last stopped (kept in `late-scan.json`) and records them for the scheduler to rerun the
 * hour (a crash, or two sealers for a moment during a rebalance, can repeat a record; a rerun
 * replaces, so that is harmless).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  JsonLinesFile,
  mkdirDurable,
  readJsonLines,
  readJsonLinesFrom,
  readLastJsonLine,
  replaceJsonFile,
  syncDirectory,
} from './durable-files.ts';
import {
  HOUR_MS,
  hourPartition,
  hourStartOf,
  hourStartOfPartition,
  latePath,
  lateScanPath,
  manifestPath,
  sealedPath,
  stateDirectory,
} from './layout.ts';
import type { ManifestEntry } from './manifest.ts';

/** The allowed lateness of DESIGN.md: an hour is sealed this long after its end. */
export const DEFAULT_ALLOWED_LATENESS_MS = 3_600_000;

/** The first seal lists at most this many hours (a month); earlier ones are sealed without a line. */
const FIRST_SEAL_MAX_HOURS = 31 * 24;

/** One sealed hour: nothing more is expected for it in any archived topic. */
export interface SealedHour {
  /** UTC date, YYYY-MM-DD (the `date=` partition). */
  date: string;
  /** UTC hour, 0-23 (the `hour=` partition). */
  hour: number;
  hourStartMs: number;
  /** When it was sealed (the archiver's clock, epoch ms). */
  sealedAt: number;
  /** Per topic, per partition: the log offsets the archiver had made durable (everything before them is in the lake). */
  ends: Record<string, number[]>;
}

/** Events of one topic archived, in one flush, for an hour that was already sealed. */
export interface LateArrival {
  topic: string;
  /** The log partition and offset range of the flush that archived them. */
  partition: number;
  from: number;
  to: number;
  date: string;
  hour: number;
  hourStartMs: number;
  /** How many events of the flush fell into the hour. */
  count: number;
  /** When the first of them was consumed (the archiver's clock). */
  firstSeenAt: number;
  /** When this was recorded (the archiver's clock): before its events were committed to the lake. */
  at: number;
}

/** Every sealed hour, in hour order (hours before the first one listed are sealed as well). */
export async function sealedHours(lakeDir: string): Promise<SealedHour[]> {
  // Two sealers for a moment (a rebalance) may both have sealed an hour: the first line counts.
  const seen = new Set<number>();
  return (await readJsonLines<SealedHour>(sealedPath(lakeDir)))
    .filter((s) => !seen.has(s.hourStartMs) && seen.add(s.hourStartMs))
    .sort((a, b) => a.hourStartMs - b.hourStartMs);
}

/** Whether the hour containing `hourStartMs` is sealed for every archived topic. */
export async function isHourSealed(lakeDir: string, hourStartMs: number): Promise<boolean> {
  const last = await readLastJsonLine<SealedHour>(sealedPath(lakeDir));
  if (last === undefined) return false;
  if (hourStartOf(hourStartMs) <= last.hourStartMs) return true;
  // The last line is the newest seal unless two sealers overlapped: then look at them all.
  return (await sealedHours(lakeDir)).some((s) => s.hourStartMs >= hourStartOf(hourStartMs));
}

/** Late arrivals recorded at or after `since` (epoch ms, default all), oldest first. */
export async function lateArrivals(lakeDir: string, since = Number.NEGATIVE_INFINITY): Promise<LateArrival[]> {
  return (await readJsonLines<LateArrival>(latePath(lakeDir))).filter((l) => l.at >= since);
}

/** The earliest hour any topic has a partition directory for, or undefined for an empty lake. */
export async function earliestLakeHour(lakeDir: string, topics: readonly string[]): Promise<number | undefined> {
  let earliest: number | undefined;
  const names = async (dir: string, prefix: string) => {
    try {
      return (await readdir(dir)).filter((n) => n.startsWith(prefix)).sort();
    } catch {
      return [];
    }
  };
  for (const topic of topics) {
    for (const date of await names(join(lakeDir, topic), 'date=')) {
      const hours = await names(join(lakeDir, topic, date), 'hour=');
      const first = hours[0];
      if (first === undefined) continue;
      const ms = hourStartOfPartition(date.slice(5), first.slice(5));
      if (Number.isFinite(ms) && (earliest === undefined || ms < earliest)) earliest = ms;
      break;
    }
  }
  return earliest;
}

/** What a seal pass needs to know about the log and the lake. */
export interface SealInputs {
  /** The end of every partition of every topic now (per topic, per partition). */
  logEnds(): Promise<Record<string, number[]>>;
  /** Per topic, per partition: offsets below this are in the lake (or were skipped or dead-lettered). */
  consumed(): Record<string, number[]> | Promise<Record<string, number[]>>;
  /** The earliest hour holding data, for the very first seal. */
  earliestDataHour(): Promise<number | undefined>;
}

/** Where the late-arrival scan stopped in each manifest (bytes), kept in `_state/late-scan.json`. */
type ScanCursors = Record<string, number>;

/** The hours a committed flush holds events for, with their counts (older lines name only files). */
function flushHours(e: ManifestEntry): { hourStartMs: number; rows: number; firstSeenAt: number }[] {
  if (e.hours !== undefined)
    return Object.entries(e.hours).map(([h, v]) => ({
      hourStartMs: Number(h),
      rows: v.rows,
      firstSeenAt: v.firstSeenAt,
    }));
  return e.files.flatMap((f) => {
    const m = /date=(\d{4}-\d{2}-\d{2})\/hour=(\d{2})\//.exec(f);
    return m === null
      ? []
      : [{ hourStartMs: hourStartOfPartition(m[1] as string, m[2] as string), rows: e.rows, firstSeenAt: e.at }];
  });
}

/** The lake's writer of sealed hours and late arrivals: run by one archiver of the group at a time. */
export class HourSealer {
  /** The log ends read once the next hour to seal was due: reaching them seals it. */
  private snapshot: { takenAt: number; ends: Record<string, number[]> } | undefined;
  /** Seals read so far (hour start -> the log ends it waited for), and where reading stopped. */
  private readonly seals = new Map<number, Record<string, number[]>>();
  private firstSeal: SealedHour | undefined;
  private sealedRead = 0;
  private cursors: ScanCursors | undefined;

  private constructor(
    private readonly lakeDir: string,
    private readonly sealedFile: JsonLinesFile,
    private readonly lateFile: JsonLinesFile,
    private readonly allowedLatenessMs: number,
    /** Hours starting before this are sealed; undefined before the first seal. */
    private frontier: number | undefined,
  ) {}

  /** Opens the lake's state files (repairing torn tails) and reads how far hours are sealed. */
  static async open(lakeDir: string, allowedLatenessMs: number): Promise<HourSealer> {
    await mkdirDurable(stateDirectory(lakeDir));
    const sealed = await JsonLinesFile.open(sealedPath(lakeDir));
    const late = await JsonLinesFile.open(latePath(lakeDir));
    await syncDirectory(stateDirectory(lakeDir));
    const sealer = new HourSealer(lakeDir, sealed, late, allowedLatenessMs, undefined);
    await sealer.readSeals();
    return sealer;
  }

  /** Reads seal lines appended since the last read (by this process or another sealer). */
  private async readSeals(): Promise<void> {
    const { values, next } = await readJsonLinesFrom<SealedHour>(sealedPath(this.lakeDir), this.sealedRead);
    this.sealedRead = next;
    for (const s of values) {
      this.firstSeal ??= s;
      if (!this.seals.has(s.hourStartMs)) this.seals.set(s.hourStartMs, s.ends);
      if (this.frontier === undefined || s.hourStartMs + HOUR_MS > this.frontier)
        this.frontier = s.hourStartMs + HOUR_MS;
    }
  }

  /** Whether an hour (its start) is sealed, as far as this process has read. */
  isSealed(hourStartMs: number): boolean {
    return this.frontier !== undefined && hourStartMs < this.frontier;
  }

  /** The first hour not sealed yet; undefined before the first seal. */
  get sealedBefore(): number | undefined {
    return this.frontier;
  }

  /**
   * Seals every hour that is due and covered: due when `now` is past its end plus the allowed
   * lateness; covered once the lake has reached the log ends read after it became due.
   * Returns the hours sealed by this pass.
   */
  async pass(now: number, inputs: SealInputs): Promise<SealedHour[]> {
    await this.readSeals(); // another archiver may have sealed since (it held the partition before)
    const lateness = this.allowedLatenessMs;
    // Hours starting before `due` have ended at least `lateness` ago.
    const due = hourStartOf(now - lateness);
    let next = this.frontier;
    if (next === undefined) {
      // The first seal lists the hours from the earliest data on (at most a month back); earlier
      // hours are sealed with it without a line each.
      const earliest = await inputs.earliestDataHour();
      next = Math.max(Math.min(earliest ?? due - HOUR_MS, due - HOUR_MS), due - FIRST_SEAL_MAX_HOURS * HOUR_MS);
    }
    if (next >= due) return [];
    if (this.snapshot === undefined || this.snapshot.takenAt < next + HOUR_MS + lateness) {
      this.snapshot = { takenAt: now, ends: await inputs.logEnds() };
    }
    const { takenAt, ends } = this.snapshot;
    const consumed = await inputs.consumed();
    for (const [topic, topicEnds] of Object.entries(ends)) {
      const positions = consumed[topic] ?? [];
      for (let p = 0; p < topicEnds.length; p++) if ((positions[p] ?? 0) < (topicEnds[p] as number)) return [];
    }
    // Everything appended before `takenAt` is in the lake: every hour due by then is sealed.
    const upTo = hourStartOf(takenAt - lateness);
    const sealed: SealedHour[] = [];
    for (let h = next; h < upTo; h += HOUR_MS) {
      const { date, hour } = hourPartition(h);
      sealed.push({ date, hour: Number(hour), hourStartMs: h, sealedAt: now, ends });
    }
    await this.sealedFile.append(sealed);
    await this.readSeals();
    return sealed;
  }

  /** The log ends a sealed hour waited for; undefined while it is not sealed. */
  private sealEnds(hourStartMs: number): Record<string, number[]> | undefined {
    const own = this.seals.get(hourStartMs);
    if (own !== undefined) return own;
    const first = this.firstSeal;
    return first !== undefined && hourStartMs < first.hourStartMs ? first.ends : undefined;
  }

  /**
   * Records the late arrivals among the flushes committed since the last scan: those holding
   * events of a sealed hour and reaching past the log ends its seal waited for. Returns them.
   */
  async scanLate(partitions: Record<string, number>, now: number): Promise<LateArrival[]> {
    await this.readSeals();
    const cursorFile = lateScanPath(this.lakeDir);
    if (this.cursors === undefined) {
      try {
        this.cursors = JSON.parse(await readFile(cursorFile, 'utf8')) as ScanCursors;
      } catch {
        this.cursors = {}; // first scan (or a torn write): from the start; repeats are harmless
      }
    }
    const cursors = this.cursors;
    const late: LateArrival[] = [];
    let moved = false;
    for (const [topic, count] of Object.entries(partitions)) {
      for (let partition = 0; partition < count; partition++) {
        const id = `${topic}/${partition}`;
        const from = cursors[id] ?? 0;
        const { values, next } = await readJsonLinesFrom<ManifestEntry>(
          manifestPath(this.lakeDir, topic, partition),
          from,
        );
        if (next === from) continue;
        // A file cut back (a torn tail repaired) is read again from where it now ends.
        cursors[id] = next;
        moved = true;
        for (const e of values) {
          for (const h of flushHours(e)) {
            const ends = this.sealEnds(h.hourStartMs);
            if (ends === undefined || e.to < (ends[topic]?.[partition] ?? 0)) continue;
            const { date, hour } = hourPartition(h.hourStartMs);
            late.push({
              topic,
              partition,
              from: e.from,
              to: e.to,
              date,
              hour: Number(hour),
              hourStartMs: h.hourStartMs,
              count: h.rows,
              firstSeenAt: h.firstSeenAt,
              at: now,
            });
          }
        }
      }
    }
    // The records first, then the cursors: a crash in between repeats records, never loses one.
    await this.lateFile.append(late);
    if (moved) await replaceJsonFile(cursorFile, cursors);
    return late;
  }

  async close(): Promise<void> {
    await this.sealedFile.close();
    await this.lateFile.close();
  }
}
