// DOM building and formatting shared by the pages. Text from the server is only ever set as
// text (never parsed as HTML): rejected lines and dead letters are whatever a producer sent.

/**
 * Makes an element: `h('td', { class: 'num', dataset: { testid: 'x' } }, 'text', child)`.
 * `on*` attributes taking functions become listeners; null and false children are skipped.
 */
export function h(tag, attributes = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'style') Object.assign(el.style, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'testid') el.setAttribute('data-testid', value);
    else if (key in el && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** An SVG element (for the flow diagram and the Gantt chart). */
export function svgElement(tag, attributes = {}) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null) continue;
    if (key === 'testid') el.setAttribute('data-testid', value);
    else el.setAttribute(key, String(value));
  }
  return el;
}

/** Replaces an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const integer = new Intl.NumberFormat('en-US');
const decimal = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });

/** A count with thousands separators; non-integers with at most 2 decimals. */
export function formatNumber(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  return Number.isInteger(n) ? integer.format(n) : decimal.format(n);
}

/** A relative difference as a signed percentage. */
export function formatPercent(r) {
  if (r === null || r === undefined) return '–';
  const p = r * 100;
  return `${p > 0 ? '+' : ''}${Math.abs(p) < 10 ? p.toFixed(2) : p.toFixed(1)}%`;
}

/** `2026-11-01 10:00:00` from an ISO time (UTC, as everything in reckon). */
export function formatTime(iso) {
  if (iso === null || iso === undefined) return '–';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d
    .toISOString()
    .replace('T', ' ')
    .replace(/\.000Z$|Z$/, '')
    .replace(/\.\d{3}$/, '');
}

/** A duration in seconds, e.g. `850 ms`, `12.3 s`, `4 min 5 s`. */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) return '–';
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  const m = Math.floor(seconds / 60);
  return m < 60 ? `${m} min ${Math.round(seconds % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** Money columns travel as decimal strings; the rest are integers. */
export const MONEY_COLUMNS = new Set(['clickCost', 'fraudCost']);

/** A decimal string (at most 6 fraction digits) as integer micros, so that comparisons are exact. */
export function micros(value) {
  if (typeof value === 'number') return BigInt(Math.round(value * 1e6));
  const m = /^(-?)(\d+)(?:\.(\d{1,6}))?$/.exec(String(value));
  if (m === null) return 0n;
  const v = BigInt(m[2]) * 1_000_000n + BigInt((m[3] ?? '').padEnd(6, '0'));
  return m[1] === '-' ? -v : v;
}

/** Integer micros as a decimal string (`1.2`, `-0.35`, `0`). */
export function formatMicros(v) {
  const sign = v < 0n ? '-' : '';
  const a = v < 0n ? -v : v;
  const frac = (a % 1_000_000n).toString().padStart(6, '0').replace(/0+$/, '');
  return `${sign}${a / 1_000_000n}${frac === '' ? '' : `.${frac}`}`;
}

/** A column's value as exact integer units (micros for money). */
export function exact(column, value) {
  return MONEY_COLUMNS.has(column) ? micros(value) : BigInt(value ?? 0);
}

/** A column's value for display. */
export function formatValue(column, value) {
  if (value === null || value === undefined) return '–';
  return MONEY_COLUMNS.has(column) ? String(value) : formatNumber(value);
}

/** A column's value for a chart (floats are fine for drawing). */
export function plotValue(column, value) {
  if (value === null || value === undefined) return null;
  return MONEY_COLUMNS.has(column) ? Number(value) : value;
}

/** A message box: `kind` is `empty`, `error` or `info`. */
export function notice(kind, text, testid = kind === 'error' ? 'error' : 'empty') {
  return h('div', { class: `notice ${kind}`, testid, role: kind === 'error' ? 'alert' : undefined }, text);
}

/** A health or state badge. */
export function badge(state, testid) {
  return h('span', { class: `badge state-${state}`, testid, dataset: { state } }, String(state).replace(/_/g, ' '));
}

/** Milliseconds of a day. */
export const DAY_MS = 86_400_000;

/** `YYYY-MM-DDTHH:MM` (UTC) for a datetime-local input. */
export function toInputValue(ms) {
  return new Date(ms).toISOString().slice(0, 16);
}

/** Epoch ms of a datetime-local input's value, read as UTC. */
export function fromInputValue(value) {
  return Date.parse(`${value}:00Z`);
}
