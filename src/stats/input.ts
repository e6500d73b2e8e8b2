/**
 * Checks of what callers hand the statistics store, and the query cursor. Both dialects run
 * the same checks, so bad input fails the same way (a non-retriable {@link ReckonError} naming
 * the field) before anything is written.
 */
import { describeType, ReckonError } from '../events/index.ts';
import type { BatchRows, Granularity, MinuteStats, MinuteStatsColumns, SinkOffset, StatsQuery } from './types.ts';

/** Milliseconds in a minute: every stored bucket starts on one. */
export const MINUTE_MS = 60_000;

/** Bucket length of each granularity; UTC has no leap seconds in epoch time, so days are fixed. */
export const GRANULARITY_MS: Readonly<Record<Granularity, number>> = {
  minute: MINUTE_MS,
  hour: 3_600_000,
  day: 86_400_000,
};

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

const COUNT_FIELDS = ['emissions', 'clicks', 'duplicateClicks', 'fraudClicks', 'invalidClicks'] as const;
const MONEY_FIELDS = ['clickCost', 'fraudCost'] as const;

/** A cursor's position: the key of the last row of the previous page. */
export interface CursorKey {
  bucketStart: number;
  offerId: string;
  placement: string;
}

function invalid(code: string, message: string): ReckonError {
  return new ReckonError(code, message);
}

function isMinuteStart(ms: unknown): ms is number {
  return Number.isSafeInteger(ms) && (ms as number) >= 0 && (ms as number) % MINUTE_MS === 0;
}

/**
 * Throws RECKON_STATS_OFFSETS_MOVED unless each expected position is the stored one (`current`,
 * keyed `topic/partition`; -1 expected means none stored).
 */
export function checkExpectedOffsets(
  group: string,
  expected: readonly SinkOffset[],
  current: ReadonlyMap<string, number>,
): void {
  for (const e of expected) {
    const now = current.get(`${e.topic}/${e.partition}`) ?? -1;
    if (now !== e.offset) {
      throw new ReckonError(
        'RECKON_STATS_OFFSETS_MOVED',
        `speed offsets of group ${group}: ${e.topic}/${e.partition} is at ${now < 0 ? 'no offset' : now}, ` +
          `this writer expected ${e.offset < 0 ? 'none' : e.offset}: another process has written the partition since; nothing was written`,
      );
    }
  }
}

/** Throws RECKON_STATS_INVALID_ROW unless every row has a minute-aligned bucket, non-empty keys, integer counts and bigint micros. */
export function checkMinuteRows(rows: readonly MinuteStats[], what: string): void {
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i] as MinuteStats;
    const where = `${what}[${i}]`;
    if (!isMinuteStart(r.bucketStart)) {
      throw invalid(
        'RECKON_STATS_INVALID_ROW',
        `${where}.bucketStart: expected the epoch milliseconds of a UTC minute start (a multiple of 60000, >= 0), got ${describeType(r.bucketStart)}`,
      );
    }
    if (typeof r.offerId !== 'string' || r.offerId === '') {
      throw invalid(
        'RECKON_STATS_INVALID_ROW',
        `${where}.offerId: expected a non-empty string, got ${describeType(r.offerId)}`,
      );
    }
    if (typeof r.placement !== 'string' || r.placement === '') {
      throw invalid(
        'RECKON_STATS_INVALID_ROW',
        `${where}.placement: expected a non-empty string, got ${describeType(r.placement)}`,
      );
    }
    for (const f of COUNT_FIELDS) {
      if (!Number.isSafeInteger(r[f])) {
        throw invalid('RECKON_STATS_INVALID_ROW', `${where}.${f}: expected an integer, got ${describeType(r[f])}`);
      }
    }
    for (const f of MONEY_FIELDS) {
      const v = r[f];
      if (typeof v !== 'bigint' || v < INT64_MIN || v > INT64_MAX) {
        throw invalid(
          'RECKON_STATS_INVALID_ROW',
          `${where}.${f}: expected a bigint count of micros within 64 bits, got ${describeType(v)}`,
        );
      }
    }
  }
}

/** Throws RECKON_STATS_INVALID_OFFSET unless every offset names a topic, a partition >= 0 and an offset >= 0. */
export function checkOffsets(group: string, offsets: readonly SinkOffset[]): void {
  if (typeof group !== 'string' || group === '') {
    throw invalid('RECKON_STATS_INVALID_OFFSET', `group: expected a non-empty string, got ${describeType(group)}`);
  }
  for (const [i, o] of offsets.entries()) {
    if (typeof o.topic !== 'string' || o.topic === '') {
      throw invalid(
        'RECKON_STATS_INVALID_OFFSET',
        `offsets[${i}].topic: expected a non-empty string, got ${describeType(o.topic)}`,
      );
    }
    if (!Number.isSafeInteger(o.partition) || o.partition < 0 || o.partition > 2 ** 31 - 1) {
      throw invalid(
        'RECKON_STATS_INVALID_OFFSET',
        `offsets[${i}].partition: expected an integer from 0 to 2147483647, got ${describeType(o.partition)}`,
      );
    }
    if (!Number.isSafeInteger(o.offset) || o.offset < 0) {
      throw invalid(
        'RECKON_STATS_INVALID_OFFSET',
        `offsets[${i}].offset: expected an integer >= 0, got ${describeType(o.offset)}`,
      );
    }
  }
}

/**
 * Throws RECKON_STATS_INVALID_INTERVAL unless [from, to) is a non-empty minute-aligned interval
 * holding every row. Rows given as columns are checked as they are written, by
 * {@link batchColumnsChecker}.
 */
export function checkBatchInterval(from: number, to: number, rows: BatchRows, runId: string): void {
  if (!isMinuteStart(from) || !isMinuteStart(to) || from >= to) {
    throw invalid(
      'RECKON_STATS_INVALID_INTERVAL',
      `batch interval [${String(from)}, ${String(to)}): expected minute-aligned epoch milliseconds with 0 <= from < to`,
    );
  }
  if (typeof runId !== 'string' || runId === '') {
    throw invalid('RECKON_STATS_INVALID_INTERVAL', `runId: expected a non-empty string, got ${describeType(runId)}`);
  }
  if (!Array.isArray(rows)) return;
  checkMinuteRows(rows, 'rows');
  const keys = new Set<string>();
  for (const [i, r] of rows.entries()) {
    const key = `${r.bucketStart}:${r.offerId.length}:${r.offerId}${r.placement}`;
    if (keys.has(key)) {
      throw invalid(
        'RECKON_STATS_INVALID_ROW',
        `rows[${i}]: a second row for (${new Date(r.bucketStart).toISOString()}, ${JSON.stringify(r.offerId)}, ` +
          `${JSON.stringify(r.placement)}); a batch run writes each key once`,
      );
    }
    keys.add(key);
    if (r.bucketStart < from || r.bucketStart >= to) {
      throw invalid(
        'RECKON_STATS_INVALID_INTERVAL',
        `rows[${i}].bucketStart: ${new Date(r.bucketStart).toISOString()} lies outside the batch interval ` +
          `[${new Date(from).toISOString()}, ${new Date(to).toISOString()})`,
      );
    }
  }
}

/** Minute rows given as `columns` (see {@link BatchRows}), or undefined for an array of rows. */
export function batchColumnsOf(rows: BatchRows): Iterable<MinuteStatsColumns> | undefined {
  return Array.isArray(rows) ? undefined : (rows as { columns: Iterable<MinuteStatsColumns> }).columns;
}

/** A surrogate starts a code point above U+FFFF: it moves after U+E000..U+FFFF. */
const surrogatesLast = (unit: number): number => (unit >= 0xe000 ? unit - 0x800 : unit + 0x2000);

/** Compares two strings by code point (UTF-16 order differs only between surrogates and U+E000..U+FFFF). */
export function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    return x >= 0xd800 && y >= 0xd800 ? surrogatesLast(x) - surrogatesLast(y) : x - y;
  }
  return a.length - b.length;
}

/** Integer typed arrays hold safe integers only; BigInt64Array holds 64-bit values only. */
const holdsIntegers = (a: ArrayLike<unknown>): boolean =>
  a instanceof Int32Array ||
  a instanceof Uint32Array ||
  a instanceof Int16Array ||
  a instanceof Uint16Array ||
  a instanceof Int8Array ||
  a instanceof Uint8Array;

/**
 * A check of rows given as columns, one batch after the other, before each batch is written:
 * each row as {@link checkMinuteRows} checks it, inside [from, to), and after the row before it
 * (strictly ascending keys, so no key comes twice). Rows are named by their position over all
 * batches, with the errors {@link checkBatchInterval} throws for arrays.
 */
export function batchColumnsChecker(from: number, to: number): (batch: MinuteStatsColumns) => void {
  let index = 0;
  let lastBucket = -1;
  let lastOffer = '';
  let lastPlacement = '';
  return (b) => {
    const counts = COUNT_FIELDS.filter((f) => !holdsIntegers(b[f]));
    const money = MONEY_FIELDS.filter((f) => !(b[f] instanceof BigInt64Array));
    for (let i = 0; i < b.length; i++, index++) {
      const bucketStart = b.bucketStart[i];
      const offerId = b.offerId[i];
      const placement = b.placement[i];
      if (!isMinuteStart(bucketStart)) {
        throw invalid(
          'RECKON_STATS_INVALID_ROW',
          `rows[${index}].bucketStart: expected the epoch milliseconds of a UTC minute start (a multiple of 60000, >= 0), got ${describeType(bucketStart)}`,
        );
      }
      if (typeof offerId !== 'string' || offerId === '') {
        throw invalid(
          'RECKON_STATS_INVALID_ROW',
          `rows[${index}].offerId: expected a non-empty string, got ${describeType(offerId)}`,
        );
      }
      if (typeof placement !== 'string' || placement === '') {
        throw invalid(
          'RECKON_STATS_INVALID_ROW',
          `rows[${index}].placement: expected a non-empty string, got ${describeType(placement)}`,
        );
      }
      for (const f of counts) {
        const v = b[f][i];
        if (!Number.isSafeInteger(v)) {
          throw invalid('RECKON_STATS_INVALID_ROW', `rows[${index}].${f}: expected an integer, got ${describeType(v)}`);
        }
      }
      for (const f of money) {
        const v = b[f][i];
        if (typeof v !== 'bigint' || v < INT64_MIN || v > INT64_MAX) {
          throw invalid(
            'RECKON_STATS_INVALID_ROW',
            `rows[${index}].${f}: expected a bigint count of micros within 64 bits, got ${describeType(v)}`,
          );
        }
      }
      const order =
        bucketStart - lastBucket ||
        compareCodePoints(offerId, lastOffer) ||
        compareCodePoints(placement, lastPlacement);
      if (order <= 0) {
        throw invalid(
          'RECKON_STATS_INVALID_ROW',
          `rows[${index}]: (${new Date(bucketStart).toISOString()}, ${JSON.stringify(offerId)}, ${JSON.stringify(placement)}) ` +
            `${order === 0 ? 'a second time' : 'before the row above it'}; rows given as columns come in strictly ascending key order`,
        );
      }
      if (bucketStart < from || bucketStart >= to) {
        throw invalid(
          'RECKON_STATS_INVALID_INTERVAL',
          `rows[${index}].bucketStart: ${new Date(bucketStart).toISOString()} lies outside the batch interval ` +
            `[${new Date(from).toISOString()}, ${new Date(to).toISOString()})`,
        );
      }
      lastBucket = bucketStart;
      lastOffer = offerId;
      lastPlacement = placement;
    }
  };
}

/** Throws RECKON_STATS_INVALID_QUERY for a query no answer fits; returns the cursor's position, if any. */
export function checkQuery(q: StatsQuery): CursorKey | undefined {
  const bad = (message: string) => invalid('RECKON_STATS_INVALID_QUERY', message);
  if (!Number.isSafeInteger(q.from) || q.from < 0)
    throw bad(`from: expected epoch milliseconds >= 0, got ${describeType(q.from)}`);
  if (!Number.isSafeInteger(q.to) || q.to < 0)
    throw bad(`to: expected epoch milliseconds >= 0, got ${describeType(q.to)}`);
  if (q.from >= q.to) throw bad(`from (${q.from}) must be before to (${q.to})`);
  if (!Object.hasOwn(GRANULARITY_MS, q.granularity)) {
    throw bad(`granularity: expected minute, hour or day, got ${describeType(q.granularity)}`);
  }
  if (!Number.isSafeInteger(q.limit) || q.limit < 1)
    throw bad(`limit: expected an integer >= 1, got ${describeType(q.limit)}`);
  for (const f of ['offerId', 'placement'] as const) {
    if (q[f] !== undefined && typeof q[f] !== 'string') throw bad(`${f}: expected a string, got ${describeType(q[f])}`);
  }
  return q.cursor === undefined ? undefined : decodeCursor(q.cursor);
}

/** The opaque cursor that continues after `key`. */
export function encodeCursor(key: CursorKey): string {
  return Buffer.from(JSON.stringify([key.bucketStart, key.offerId, key.placement]), 'utf8').toString('base64url');
}

/** The position a cursor from {@link encodeCursor} names; RECKON_STATS_INVALID_CURSOR for anything else. */
export function decodeCursor(cursor: string): CursorKey {
  let parsed: unknown;
  try {
    parsed = typeof cursor === 'string' ? JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) : undefined;
  } catch {
    parsed = undefined;
  }
  if (
    Array.isArray(parsed) &&
    parsed.length === 3 &&
    Number.isSafeInteger(parsed[0]) &&
    parsed[0] >= 0 &&
    typeof parsed[1] === 'string' &&
    typeof parsed[2] === 'string'
  ) {
    return { bucketStart: parsed[0], offerId: parsed[1], placement: parsed[2] };
  }
  throw invalid(
    'RECKON_STATS_INVALID_CURSOR',
    `cursor: ${describeType(cursor)} is not a cursor this store handed out; pass nextCursor of the previous page unchanged`,
  );
}
