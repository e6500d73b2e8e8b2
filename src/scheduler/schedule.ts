/**
 * Schedules and data intervals, with Airflow's semantics in UTC: a schedule is a cron expression
 * (five fields: minute, hour, day of month, month, day of week) or a preset (`@hourly`,
 * `@daily`, `@weekly`, `@monthly`, `@yearly`). Its ticks cut time into data intervals; a run
 * for logical date L covers [L, the next tick after L) and becomes due when that interval ends.
 */
import { ReckonError } from '../events/index.ts';

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;
/** How far ahead the next tick is searched before a schedule is called one that never fires. */
const SEARCH_YEARS = 8;

/** A parsed schedule: the allowed values of each cron field. */
export interface Schedule {
  /** The expression as given. */
  readonly expression: string;
  readonly minutes: ReadonlySet<number>;
  readonly hours: ReadonlySet<number>;
  readonly daysOfMonth: ReadonlySet<number>;
  readonly months: ReadonlySet<number>;
  /** 0 = Sunday. */
  readonly daysOfWeek: ReadonlySet<number>;
  /** Both day fields restricted: a day matches when either does (cron's rule). */
  readonly eitherDay: boolean;
}

/** A data interval [start, end), epoch ms. */
export interface DataInterval {
  start: number;
  end: number;
}

const PRESETS: Readonly<Record<string, string>> = {
  '@hourly': '0 * * * *',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@weekly': '0 0 * * 0',
  '@monthly': '0 0 1 * *',
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
};

const FIELDS = [
  { name: 'minute', min: 0, max: 59, names: [] as string[] },
  { name: 'hour', min: 0, max: 23, names: [] as string[] },
  { name: 'day of month', min: 1, max: 31, names: [] as string[] },
  {
    name: 'month',
    min: 1,
    max: 12,
    names: ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'],
  },
  { name: 'day of week', min: 0, max: 7, names: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] },
] as const;

function bad(expression: string, why: string): ReckonError {
  return new ReckonError('RECKON_SCHEDULER_BAD_SCHEDULE', `schedule ${JSON.stringify(expression)}: ${why}`);
}

/** The values one cron field allows: `*`, `a`, `a-b`, with `/step`, comma-separated. */
function parseField(expression: string, text: string, field: (typeof FIELDS)[number]): Set<number> {
  const value = (token: string): number => {
    const named = (field.names as readonly string[]).indexOf(token.toLowerCase());
    if (named >= 0) return named + (field.name === 'month' ? 1 : 0);
    if (!/^\d+$/.test(token)) throw bad(expression, `${field.name}: ${JSON.stringify(token)} is not a number`);
    const n = Number(token);
    if (n < field.min || n > field.max)
      throw bad(expression, `${field.name}: ${n} is outside ${field.min}-${field.max}`);
    return n;
  };
  const out = new Set<number>();
  for (const part of text.split(',')) {
    const [range = '', stepText, extra] = part.split('/');
    if (extra !== undefined || range === '')
      throw bad(expression, `${field.name}: cannot read ${JSON.stringify(part)}`);
    let step = 1;
    if (stepText !== undefined) {
      if (!/^\d+$/.test(stepText) || Number(stepText) === 0)
        throw bad(expression, `${field.name}: step ${JSON.stringify(stepText)} is not a positive number`);
      step = Number(stepText);
    }
    let lo: number;
    let hi: number;
    if (range === '*') {
      lo = field.min;
      hi = field.max;
    } else if (range.includes('-')) {
      const [a = '', b = ''] = range.split('-');
      lo = value(a);
      hi = value(b);
      if (lo > hi) throw bad(expression, `${field.name}: range ${range} runs backwards`);
    } else {
      lo = value(range);
      hi = stepText === undefined ? lo : field.max;
    }
    for (let v = lo; v <= hi; v += step) out.add(field.name === 'day of week' && v === 7 ? 0 : v);
  }
  return out;
}

/** Parses a cron expression or preset; a malformed one throws `RECKON_SCHEDULER_BAD_SCHEDULE` naming the field. */
export function parseSchedule(expression: string): Schedule {
  const text = PRESETS[expression.trim().toLowerCase()] ?? expression.trim();
  const parts = text.split(/\s+/);
  if (parts.length !== 5) {
    throw bad(
      expression,
      `expected 5 fields (minute hour day-of-month month day-of-week) or one of ${Object.keys(PRESETS).join(', ')}, got ${parts.length}`,
    );
  }
  const [minutes, hours, daysOfMonth, months, daysOfWeek] = FIELDS.map((f, i) =>
    parseField(expression, parts[i] as string, f),
  ) as [Set<number>, Set<number>, Set<number>, Set<number>, Set<number>];
  const schedule: Schedule = {
    expression,
    minutes,
    hours,
    daysOfMonth,
    months,
    daysOfWeek,
    eitherDay: !parts[2]?.startsWith('*') && !parts[4]?.startsWith('*'),
  };
  if (nextTick(schedule, Date.UTC(2000, 0, 1) - MINUTE_MS) === undefined)
    throw bad(expression, 'it never fires (no such date)');
  return schedule;
}

function dayMatches(s: Schedule, day: Date): boolean {
  if (!s.months.has(day.getUTCMonth() + 1)) return false;
  const dom = s.daysOfMonth.has(day.getUTCDate());
  const dow = s.daysOfWeek.has(day.getUTCDay());
  return s.eitherDay ? dom || dow : dom && dow;
}

/** Whether `t` (epoch ms) is a tick of the schedule: a whole minute the expression matches. */
export function isTick(s: Schedule, t: number): boolean {
  if (t % MINUTE_MS !== 0) return false;
  const d = new Date(t);
  return s.minutes.has(d.getUTCMinutes()) && s.hours.has(d.getUTCHours()) && dayMatches(s, d);
}

/** The first tick strictly after `t`, or undefined when there is none within years. */
function nextTick(s: Schedule, t: number): number | undefined {
  const minutes = [...s.minutes].sort((a, b) => a - b);
  const hours = [...s.hours].sort((a, b) => a - b);
  const after = Math.floor(t / MINUTE_MS) * MINUTE_MS + MINUTE_MS;
  let day = Math.floor(after / DAY_MS) * DAY_MS;
  for (let i = 0; i < SEARCH_YEARS * 366; i++, day += DAY_MS) {
    if (!dayMatches(s, new Date(day))) continue;
    for (const h of hours) {
      for (const m of minutes) {
        const at = day + h * 3_600_000 + m * MINUTE_MS;
        if (at >= after) return at;
      }
    }
  }
  return undefined;
}

/** The first tick strictly after `t`. */
export function nextTickAfter(s: Schedule, t: number): number {
  const next = nextTick(s, t);
  if (next === undefined)
    throw bad(s.expression, `no tick within ${SEARCH_YEARS} years after ${new Date(t).toISOString()}`);
  return next;
}

/**
 * The data interval of the run for `logicalDate`: [logicalDate, the next tick). The logical
 * date must be a tick (`2026-11-21` for `@daily`, `2026-11-21T05:00Z` for `@hourly`).
 */
export function dataIntervalOf(s: Schedule, logicalDate: number): DataInterval {
  if (!isTick(s, logicalDate)) {
    throw new ReckonError(
      'RECKON_SCHEDULER_BAD_LOGICAL_DATE',
      `${new Date(logicalDate).toISOString()} is not a tick of schedule ${JSON.stringify(s.expression)}`,
    );
  }
  return { start: logicalDate, end: nextTickAfter(s, logicalDate) };
}

/** The logical dates (ticks) in [from, to), in order: the runs a backfill of that range makes. */
export function logicalDatesIn(s: Schedule, from: number, to: number): number[] {
  const out: number[] = [];
  for (let t = isTick(s, from) ? from : nextTickAfter(s, from); t < to; t = nextTickAfter(s, t)) out.push(t);
  return out;
}

/**
 * The logical dates whose intervals have ended by `now`, after `last` (the latest logical date
 * already run; undefined: start with the interval that ends first after `since`). This is the
 * catch-up a scheduler does after being down.
 */
export function dueLogicalDates(s: Schedule, now: number, last: number | undefined, since: number): number[] {
  const out: number[] = [];
  let t = last === undefined ? (isTick(s, since) ? since : nextTickAfter(s, since)) : nextTickAfter(s, last);
  for (;;) {
    const end = nextTickAfter(s, t);
    if (end > now) return out;
    out.push(t);
    t = end;
  }
}

/** A duration in words a person reads at a glance: `90 ms`, `45 s`, `30 min`, `6 h`, `2 d 4 h`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min`;
  const hours = Math.round(ms / 3_600_000);
  if (hours < 48) return `${hours} h`;
  return `${Math.floor(hours / 24)} d${hours % 24 === 0 ? '' : ` ${hours % 24} h`}`;
}
