// Look-ups more than one page needs.
import { api } from './api.js';
import { DAY_MS } from './format.js';

/** Columns of a statistics row, in the order the API documents them. */
export const COLUMNS = [
  'emissions',
  'clicks',
  'clickCost',
  'duplicateClicks',
  'fraudClicks',
  'fraudCost',
  'invalidClicks',
];

const hasData = (c) => c !== null && c !== undefined && COLUMNS.some((k) => c[k] !== 0 && c[k] !== '0');

let latest; // { day, at }: the last lookup, reused for a minute

/**
 * The start of the last UTC day that has statistics (speed or batch), looked up by day buckets
 * over the last 400 days and then the last 20 years; today when there is no data at all.
 */
export async function latestDataDay() {
  if (latest !== undefined && Date.now() - latest.at < 60_000) return latest.day;
  const today = Math.floor(Date.now() / DAY_MS) * DAY_MS;
  for (const days of [400, 7300]) {
    const from = new Date(today - days * DAY_MS).toISOString();
    const to = new Date(today + 2 * DAY_MS).toISOString();
    const { buckets } = await api(`/v1/stats/series?from=${from}&to=${to}&granularity=day`);
    const withData = buckets.filter((b) => hasData(b.speed) || hasData(b.batch)).map((b) => Date.parse(b.bucket));
    if (withData.length > 0) {
      latest = { day: Math.max(...withData), at: Date.now() };
      return latest.day;
    }
  }
  return today;
}
