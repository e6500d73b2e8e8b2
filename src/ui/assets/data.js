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
 * over the last 400 days and then the last 13 years (the series answers at most 5,000 buckets); today when there is no data at all.
 */
export async function latestDataDay() {
  if (latest !== undefined && Date.now() - latest.at < 60_000) return latest.day;
  const today = Math.floor(Date.now() / DAY_MS) * DAY_MS;
  for (const days of [400, 4900]) {
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

/**
 * The last day that has statistics: from the start of the UTC day 23 hours before the last hour
 * with data to the end of that hour. A simulated day whose last clicks spill past midnight thus
 * shows whole, with the spill.
 */
export async function latestDataWindow() {
  const day = await latestDataDay();
  const from = new Date(day - DAY_MS).toISOString();
  const to = new Date(day + DAY_MS).toISOString();
  const { buckets } = await api(`/v1/stats/series?from=${from}&to=${to}&granularity=hour`);
  const hours = buckets.filter((b) => hasData(b.speed) || hasData(b.batch)).map((b) => Date.parse(b.bucket));
  const end = hours.length === 0 ? day + DAY_MS : Math.max(...hours) + 3_600_000;
  return { from: Math.floor((end - DAY_MS) / DAY_MS) * DAY_MS, to: end };
}
