/**
 * Sealed hours and late arrivals, kept in the lake as append-only JSON-lines files.
 *
 * An hour is sealed when the wall clock is past its end plus the allowed lateness and the
 * archiver has made durable everything appended to the log before that moment. The archiver
 * seals hours in order: every hour before the last sealed one is sealed too (the first seal
 * also covers all earlier hours, which hold no data the archiver has not archived). An event
 * archived afterwards for a sealed hour is a late arrival: recorded, once per flush, before the
 * flush commits, so that the scheduler reruns the hour (a crash can repeat a record; a rerun
 * replaces, so that is harmless).
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { JsonLinesFile, mkdirDurable, readJsonLines, readLastJsonLine, syncDirectory } from './durable-files.ts';
import { HOUR_MS, hourPartition, hourStartOf, latePath, sealedPath, stateDirectory } from './layout.ts';

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
export function sealedHours(lakeDir: string): Promise<SealedHour[]> {
  return readJsonLines<SealedHour>(sealedPath(lakeDir));
}

/** Whether the hour containing `hourStartMs` is sealed for every archived topic. */
export async function isHourSealed(lakeDir: string, hourStartMs: number): Promise<boolean> {
  const last = await readLastJsonLine<SealedHour>(sealedPath(lakeDir));
  return last !== undefined && hourStartOf(hourStartMs) <= last.hourStartMs;
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
      const ms = Date.parse(`${date.slice(5)}T${first.slice(5)}:00:00.000Z`);
      if (Number.isFinite(ms) && (earliest === undefined || ms < earliest)) earliest = ms;
      break;
    }
  }
  return earliest;
}

/** What a seal pass needs to know about the log and the archiver. */
export interface SealInputs {
  /** The end of every partition of every topic now (per topic, per partition). */
  logEnds(): Promise<Record<string, number[]>>;
  /** Per topic, per partition: offsets below this are in the lake (or were skipped or dead-lettered). */
  consumed(): Record<string, number[]>;
  /** The earliest hour holding data, for the very first seal. */
  earliestDataHour(): Promise<number | undefined>;
}

/** The archiver's writer of sealed hours and late arrivals. One per lake. */
export class HourSealer {
  /** The log ends read once the next hour to seal was due: reaching them seals it. */
  private snapshot: { takenAt: number; ends: Record<string, number[]> } | undefined;

  private constructor(
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
    const last = await readLastJsonLine<SealedHour>(sealed.path);
    return new HourSealer(sealed, late, allowedLatenessMs, last === undefined ? undefined : last.hourStartMs + HOUR_MS);
  }

  /** Whether an hour (its start) is sealed. */
  isSealed(hourStartMs: number): boolean {
    return this.frontier !== undefined && hourStartMs < this.frontier;
  }

  /** The first hour not sealed yet; undefined before the first seal. */
  get sealedBefore(): number | undefined {
    return this.frontier;
  }

  /** Records late arrivals durably. */
  recordLate(arrivals: LateArrival[]): Promise<void> {
    return this.lateFile.append(arrivals);
  }

  /**
   * Seals every hour that is due and covered: due when `now` is past its end plus the allowed
   * lateness; covered once the archiver has reached the log ends read after it became due.
   * Returns the hours sealed by this pass.
   */
  async pass(now: number, inputs: SealInputs): Promise<SealedHour[]> {
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
    const consumed = inputs.consumed();
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
    this.frontier = upTo;
    return sealed;
  }

  async close(): Promise<void> {
    await this.sealedFile.close();
    await this.lateFile.close();
  }
}
