/** Parsers of setting values. Each returns the value, or an `Invalid` naming the expected form. */
import { BlockList, isIP } from 'node:net';

/** A value that did not parse; `expected` says what form was expected. */
export class Invalid {
  constructor(readonly expected: string) {}
}

/** Parses one raw setting (text from the environment or a flag, or any JSON value from a file). */
export type Parser<T> = (raw: unknown) => T | Invalid;

/** An integer within [min, max]; text is accepted when it is all digits. */
export function integer(min: number, max: number): Parser<number> {
  const expected = `an integer from ${min} to ${max}`;
  return (raw) => {
    const n = typeof raw === 'string' && /^-?[0-9]+$/.test(raw.trim()) ? Number(raw.trim()) : raw;
    return typeof n === 'number' && Number.isInteger(n) && n >= min && n <= max ? n : new Invalid(expected);
  };
}

/** A non-empty string. */
export function text(expected = 'a non-empty string'): Parser<string> {
  return (raw) => (typeof raw === 'string' && raw.trim() !== '' ? raw : new Invalid(expected));
}

/** A secret token: at least 16 characters, no white space. */
export const token: Parser<string> = (raw) =>
  typeof raw === 'string' && /^\S{16,}$/.test(raw)
    ? raw
    : new Invalid('a token of at least 16 characters without white space');

/** true/false (also 1/0, yes/no, on/off as text). */
export const boolean: Parser<boolean> = (raw) => {
  if (typeof raw === 'boolean') return raw;
  if (typeof raw === 'string') {
    const t = raw.trim().toLowerCase();
    if (['true', '1', 'yes', 'on'].includes(t)) return true;
    if (['false', '0', 'no', 'off'].includes(t)) return false;
  }
  return new Invalid('true or false');
};

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration: integer milliseconds, or a number with a unit ms, s, m, h or d ("90s", "1h"). */
export function duration(minMs: number, maxMs: number): Parser<number> {
  const expected = `a duration like "500ms", "90s", "15m", "1h" or "2d" (or integer ms) from ${minMs} ms to ${maxMs} ms`;
  return (raw) => {
    let ms: number | undefined;
    if (typeof raw === 'number' && Number.isInteger(raw)) ms = raw;
    if (typeof raw === 'string') {
      const m = /^([0-9]+)(ms|s|m|h|d)?$/.exec(raw.trim());
      if (m !== null) ms = Number(m[1]) * (UNIT_MS[m[2] ?? 'ms'] as number);
    }
    return ms !== undefined && ms >= minMs && ms <= maxMs ? ms : new Invalid(expected);
  };
}

/** One of a fixed set of words. */
export function oneOf<T extends string>(words: readonly T[]): Parser<T> {
  return (raw) =>
    typeof raw === 'string' && (words as readonly string[]).includes(raw)
      ? (raw as T)
      : new Invalid(`one of ${words.join(', ')}`);
}

function isAddressOrCidr(entry: string): boolean {
  const [address = '', prefix, extra] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || extra !== undefined) return false;
  if (prefix === undefined) return true;
  if (!/^[0-9]{1,3}$/.test(prefix)) return false;
  const bits = Number(prefix);
  if (bits > (family === 4 ? 32 : 128)) return false;
  new BlockList().addSubnet(address, bits, family === 4 ? 'ipv4' : 'ipv6');
  return true;
}

/** A list of strings each passing `valid`: a JSON array, or comma-separated text. */
function listOf(expected: string, valid: (item: string) => boolean, notOne: string): Parser<string[]> {
  return (raw) => {
    let items: unknown[];
    if (Array.isArray(raw)) items = raw;
    else if (typeof raw === 'string') items = raw.trim() === '' ? [] : raw.split(',').map((s) => s.trim());
    else return new Invalid(expected);
    for (const item of items) {
      if (typeof item !== 'string' || !valid(item))
        return new Invalid(`${expected}; ${JSON.stringify(item)} ${notOne}`);
    }
    return items as string[];
  };
}

/** A list of IP addresses or CIDR ranges: a JSON array, or comma-separated text. */
export const ipList: Parser<string[]> = listOf(
  'IP addresses or CIDR ranges, as a JSON array or comma-separated ("198.51.100.0/24,2001:db8::/32")',
  isAddressOrCidr,
  'is neither',
);

/** A list of data-center names (letters, digits, `_` and `-`), as used in per-DC topic names. */
export const dataCenterList: Parser<string[]> = listOf(
  'data-center names, as a JSON array or comma-separated ("dc1,dc2")',
  (item) => /^[A-Za-z0-9_-]{1,64}$/.test(item),
  'is not a name of letters, digits, _ and -',
);

/** A list of `host:port` addresses: a JSON array, or comma-separated text. */
export const hostPortList: Parser<string[]> = listOf(
  'host:port addresses, as a JSON array or comma-separated ("kafka1:9092,kafka2:9092")',
  (item) => {
    const m = /^(.+):([0-9]{1,5})$/.exec(item);
    return m !== null && Number(m[2]) <= 65535;
  },
  'is not one',
);

/** A list of http(s) URLs: a JSON array, or comma-separated text. */
export const urlList: Parser<string[]> = listOf(
  'http(s) URLs, as a JSON array or comma-separated ("http://127.0.0.1:9000/alerts")',
  (item) => {
    try {
      const u = new URL(item);
      return u.protocol === 'http:' || u.protocol === 'https:';
    } catch {
      return false;
    }
  },
  'is not an http(s) URL',
);

/** A UTC date (`2026-11-01`) or instant (`2026-11-01T05:00:00Z`), as epoch ms. */
export const utcDate: Parser<number> = (raw) => {
  if (typeof raw !== 'string' || !/^\d{4}-\d{2}-\d{2}(T[0-9:.]+Z)?$/.test(raw))
    return new Invalid('a UTC date like 2026-11-01');
  const t = Date.parse(raw.length === 10 ? `${raw}T00:00:00.000Z` : raw);
  return Number.isFinite(t) ? t : new Invalid('a UTC date like 2026-11-01');
};

/** A number in [min, max]. */
export function fraction(min: number, max: number): Parser<number> {
  return (raw) => {
    const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : Number.NaN;
    return Number.isFinite(n) && n >= min && n <= max ? n : new Invalid(`a number from ${min} to ${max}`);
  };
}
