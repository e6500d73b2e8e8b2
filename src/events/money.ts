/**
 * Exact decimal money. Inside reckon an amount is a bigint count of micros (1e-6 of the
 * currency unit); outside it is a decimal string. No float ever touches an amount.
 */

/** An amount of money in micros (millionths of the currency unit). */
export type Micros = bigint;

/** Micros per currency unit. */
export const MICROS_PER_UNIT = 1_000_000n;

/** Largest amount a single price may carry: fits Avro decimal(18, 6) and SQL NUMERIC(18, 6). */
export const MAX_PRICE_MICROS: Micros = 10n ** 18n - 1n;

/** Most fraction digits a price may have. */
export const MONEY_SCALE = 6;

const DECIMAL = /^(0|[1-9][0-9]{0,11})(?:\.([0-9]{1,6}))?$/;

/**
 * Parses a non-negative decimal string with at most 6 fraction digits ("0.35", "12", "1.000001")
 * into micros. Returns a reason string instead when the text is not such a decimal.
 */
export function parseMoney(text: string): Micros | string {
  const m = DECIMAL.exec(text);
  if (m === null) return moneyReason(text);
  const int = m[1] as string;
  const frac = m[2] === undefined ? 0 : Number(m[2].padEnd(MONEY_SCALE, '0'));
  // Up to 9 integer digits the micros stay below 2^53, so one exact Number suffices.
  if (int.length <= 9) return BigInt(Number(int) * 1_000_000 + frac);
  return BigInt(int) * MICROS_PER_UNIT + BigInt(frac);
}

function moneyReason(text: string): string {
  const shown = JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}...` : text);
  if (text.startsWith('-')) return `must be >= 0, got ${shown}`;
  if (/^[0-9]*\.[0-9]{7,}$/.test(text)) return `has more than 6 fraction digits: ${shown}`;
  if (/^[0-9]{13,}(\.[0-9]*)?$/.test(text)) return `is larger than 999999999999.999999: ${shown}`;
  return `expected a decimal string like "0.35" (digits, optional '.', at most 6 fraction digits), got ${shown}`;
}

/** Formats micros as the canonical decimal string: no exponent, no trailing fraction zeros. */
export function formatMoney(micros: Micros): string {
  const negative = micros < 0n;
  const abs = negative ? -micros : micros;
  const units = abs / MICROS_PER_UNIT;
  const frac = abs % MICROS_PER_UNIT;
  const sign = negative ? '-' : '';
  if (frac === 0n) return `${sign}${units}`;
  return `${sign}${units}.${frac.toString().padStart(MONEY_SCALE, '0').replace(/0+$/, '')}`;
}

/** Sums amounts exactly. */
export function sumMoney(amounts: Iterable<Micros>): Micros {
  let total = 0n;
  for (const a of amounts) total += a;
  return total;
}
