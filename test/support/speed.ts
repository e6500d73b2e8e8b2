/** Test helpers for the speed layer: simulated events into a log, and store rows in the oracle's format. */
import {
  clickType,
  decodeClick,
  decodeEmission,
  emissionType,
  encodeClick,
  encodeEmission,
  type EventDecoder,
  formatMoney,
  parseEventLine,
} from '../../src/events/index.ts';
import type { Log, RecordInput } from '../../src/log/index.ts';
import type { MinuteDelta } from '../../src/speed/index.ts';
import type { ExpectedRow } from '../../src/sim/index.ts';
import type { Granularity, StatsStore } from '../../src/stats/index.ts';

/** Schema ids of events written without a registry. */
export const IDS = { emission: 1, click: 2 };

/** Decodes events written with {@link IDS} (reckon's own schemas). */
export const plainDecoder: EventDecoder = {
  emission: (v) => decodeEmission(v),
  click: (v) => decodeClick(v),
  // The tests write emissions with schema id 1 and clicks with 2, both reckon's own schemas.
  writerOf: (id) => (id === 1 ? emissionType : id === 2 ? clickType : undefined),
};

/** Where an event goes: `emissions`/`clicks` by default; per-DC topics for the merger. */
export type TopicOf = (kind: 'emission' | 'click', dc: string | undefined) => string;

/** Appends simulator lines to `emissions`/`clicks` (or `topicOf`) as the collector would (arrival order, keyed by emission). */
export async function appendLines(
  log: Log,
  lines: string[],
  batch = 1000,
  topicOf: TopicOf = (kind) => (kind === 'emission' ? 'emissions' : 'clicks'),
): Promise<number> {
  let pending = new Map<string, RecordInput[]>();
  let n = 0;
  const flush = async () => {
    await Promise.all([...pending].map(([topic, records]) => log.append(topic, records)));
    pending = new Map();
  };
  const add = (topic: string, record: RecordInput) => {
    let records = pending.get(topic);
    if (records === undefined) pending.set(topic, (records = []));
    records.push(record);
  };
  for (const line of lines) {
    const r = parseEventLine(line);
    if (!r.ok) continue;
    const e = r.event;
    if (e.type === 'emission')
      add(topicOf('emission', e.dc), { key: e.id, value: encodeEmission(IDS.emission, e), timestamp: e.ts });
    else add(topicOf('click', e.dc), { key: e.emissionId, value: encodeClick(IDS.click, e), timestamp: e.ts });
    if (++n % batch === 0) await flush();
  }
  await flush();
  return n;
}

/** A minute row or delta (money in micros) in the oracle's row format (decimal strings, ISO bucket). */
export function expectedRowOf(r: MinuteDelta): ExpectedRow {
  return {
    bucket: new Date(r.bucketStart).toISOString(),
    offerId: r.offerId,
    placement: r.placement,
    emissions: r.emissions,
    clicks: r.clicks,
    clickCost: formatMoney(r.clickCost),
    duplicateClicks: r.duplicateClicks,
    fraudClicks: r.fraudClicks,
    fraudCost: formatMoney(r.fraudCost),
    invalidClicks: r.invalidClicks,
  };
}

/** Every row of the store in [from, to) at a granularity, in the oracle's row format. */
export async function storeRows(
  store: StatsStore,
  from: number,
  to: number,
  granularity: Granularity,
): Promise<ExpectedRow[]> {
  const out: ExpectedRow[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.query({ from, to, granularity, limit: 5000, ...(cursor !== undefined ? { cursor } : {}) });
    for (const r of page.rows) {
      out.push(expectedRowOf(r));
    }
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return out;
}

/** Sorts rows the oracle's way (by bucket, offer, placement in code-unit order). */
export function sortRows(rows: ExpectedRow[]): ExpectedRow[] {
  const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  return [...rows].sort(
    (a, b) => cmp(a.bucket, b.bucket) || cmp(a.offerId, b.offerId) || cmp(a.placement, b.placement),
  );
}

const NUMBER_COLUMNS = ['emissions', 'clicks', 'duplicateClicks', 'fraudClicks', 'invalidClicks'] as const;

/**
 * A short account of how two row sets differ, for assertion messages: the totals of each count
 * column on both sides and the first few rows that differ.
 */
export function describeRowDifference(expected: ExpectedRow[], actual: ExpectedRow[], show = 6): string {
  const key = (r: ExpectedRow) => `${r.bucket} ${r.offerId} ${r.placement}`;
  const totals = (rows: ExpectedRow[]) =>
    NUMBER_COLUMNS.map((c) => `${c}=${rows.reduce((s, r) => s + r[c], 0)}`).join(' ');
  const byKey = new Map(actual.map((r) => [key(r), r]));
  const lines = [`expected ${totals(expected)}`, `actual   ${totals(actual)}`];
  const seen = new Set<string>();
  for (const e of expected) {
    seen.add(key(e));
    const a = byKey.get(key(e));
    if (JSON.stringify(a) !== JSON.stringify(e) && lines.length < show + 2) {
      lines.push(`  ${key(e)}: expected ${JSON.stringify(e)}, got ${a === undefined ? 'no row' : JSON.stringify(a)}`);
    }
  }
  for (const a of actual) {
    if (!seen.has(key(a)) && lines.length < show + 2) lines.push(`  ${key(a)}: unexpected ${JSON.stringify(a)}`);
  }
  return lines.join('\n');
}
