/**
 * Event time. On the wire a timestamp is an RFC 3339 string with a zone ("2026-11-21T10:00:00Z",
 * "2026-11-21T11:00:00.5+01:00") or integer epoch milliseconds; inside reckon it is UTC epoch ms.
 */

/** Latest accepted instant: 9999-12-31T23:59:59.999Z. */
export const MAX_TIMESTAMP_MS = 253_402_300_799_999;

const RFC3339 =
  /^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))$/;

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function isLeapYear(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

/**
 * Parses an RFC 3339 timestamp with a zone into UTC epoch ms (sub-millisecond digits are
 * truncated). Returns a reason string when the text is not a valid RFC 3339 instant.
 */
export function parseRfc3339(text: string): number | string {
  const fast = canonicalUtc(text);
  if (fast !== undefined) return fast;
  const m = RFC3339.exec(text);
  if (m === null) {
    const shown = JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}...` : text);
    return `expected an RFC 3339 timestamp with a zone like "2026-11-21T10:00:00.000Z", got ${shown}`;
  }
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const hour = Number(m[4]);
  const minute = Number(m[5]);
  const second = Number(m[6]);
  if (month < 1 || month > 12) return `month ${m[2]} is out of range 01-12 in "${text}"`;
  const dim = month === 2 && isLeapYear(year) ? 29 : (DAYS_IN_MONTH[month - 1] as number);
  if (day < 1 || day > dim) return `day ${m[3]} does not exist in ${m[1]}-${m[2]} in "${text}"`;
  if (hour > 23) return `hour ${m[4]} is out of range 00-23 in "${text}"`;
  if (minute > 59) return `minute ${m[5]} is out of range 00-59 in "${text}"`;
  if (second > 59) return `second ${m[6]} is out of range 00-59 (leap seconds are not accepted) in "${text}"`;
  const millis = m[7] === undefined ? 0 : Number(m[7].slice(0, 3).padEnd(3, '0'));
  let offsetMinutes = 0;
  if (m[8] === undefined) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return `zone offset ${m[9]}${m[10]}:${m[11]} is out of range in "${text}"`;
    offsetMinutes = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  if (year < 1970) return `is outside 1970-01-01 .. 9999-12-31 in "${text}"`;
  const ms = Date.UTC(year, month - 1, day, hour, minute, second, millis) - offsetMinutes * 60_000;
  if (ms < 0 || ms > MAX_TIMESTAMP_MS) return `is outside 1970-01-01 .. 9999-12-31 in "${text}"`;
  return ms;
}

function digits(text: string, from: number, count: number): number {
  let n = 0;
  for (let i = from; i < from + count; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/**
 * Fast path for the canonical form `YYYY-MM-DDTHH:MM:SS.sssZ` that most producers send.
 * Returns undefined for anything else, which the full parser then handles (and explains).
 */
function canonicalUtc(text: string): number | undefined {
  if (
    text.length !== 24 ||
    text.charCodeAt(4) !== 45 ||
    text.charCodeAt(7) !== 45 ||
    text.charCodeAt(10) !== 84 ||
    text.charCodeAt(13) !== 58 ||
    text.charCodeAt(16) !== 58 ||
    text.charCodeAt(19) !== 46 ||
    text.charCodeAt(23) !== 90
  ) {
    return undefined;
  }
  const year = digits(text, 0, 4);
  const month = digits(text, 5, 2);
  const day = digits(text, 8, 2);
  const hour = digits(text, 11, 2);
  const minute = digits(text, 14, 2);
  const second = digits(text, 17, 2);
  const millis = digits(text, 20, 3);
  if (year < 1970 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23) return undefined;
  if (minute < 0 || minute > 59 || second < 0 || second > 59 || millis < 0) return undefined;
  const dim = month === 2 && isLeapYear(year) ? 29 : (DAYS_IN_MONTH[month - 1] as number);
  if (day > dim) return undefined;
  return Date.UTC(year, month - 1, day, hour, minute, second, millis);
}

/**
 * Parses a wire timestamp: an RFC 3339 string with a zone, or integer epoch milliseconds.
 * Returns UTC epoch ms, or a reason string.
 */
export function parseTimestamp(value: unknown): number | string {
  if (typeof value === 'string') return parseRfc3339(value);
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) return `epoch milliseconds must be an integer, got ${value}`;
    if (value < 0 || value > MAX_TIMESTAMP_MS) return `epoch milliseconds ${value} is outside 1970-01-01 .. 9999-12-31`;
    return value;
  }
  return `expected an RFC 3339 string or integer epoch milliseconds, got ${describeType(value)}`;
}

/** Formats UTC epoch ms as RFC 3339 with milliseconds and `Z`. */
export function formatTimestamp(ms: number): string {
  return new Date(ms).toISOString();
}

/** Names the JSON type of a value for error messages. */
export function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return 'a string';
  return `${typeof value} ${String(value)}`;
}
