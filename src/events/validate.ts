/**
 * Parsing and validation of untrusted JSON into typed events. Never throws on bad input:
 * every rejection names the field that is wrong and why.
 */
import { isIP } from 'node:net';
import { parseMoney } from './money.ts';
import { describeType, parseTimestamp } from './time.ts';
import type { Click, Emission, Offer, ReckonEvent } from './types.ts';

/** Why a record was rejected: the field (a JSON path like `offers[2].clickCost`, or `$` for the whole record) and the reason. */
export interface Rejection {
  ok: false;
  field: string;
  reason: string;
}

/** The outcome of validating one record. */
export type ParseResult = { ok: true; event: ReckonEvent } | Rejection;

/** Longest accepted id or name. */
export const MAX_ID_LENGTH = 256;
/** Most offers one emission may list. */
export const MAX_OFFERS = 100;

const EMISSION_FIELDS = new Set(['type', 'id', 'ts', 'placement', 'dc', 'offers']);
const CLICK_FIELDS = new Set(['type', 'id', 'ts', 'emissionId', 'offerId', 'userId', 'ip', 'dc']);
const OFFER_FIELDS = new Set(['offerId', 'clickCost']);

/** Formats a rejection as one line: `field: reason`. */
export function describeRejection(r: Rejection): string {
  return `${r.field}: ${r.reason}`;
}

class Reject {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {}
}

function reject(field: string, reason: string): never {
  throw new Reject(field, reason);
}

function requireString(obj: Record<string, unknown>, key: string, path: string): string {
  const v = obj[key];
  if (v === undefined) reject(path, 'is required');
  if (typeof v !== 'string') reject(path, `expected a string, got ${describeType(v)}`);
  if (v.length === 0) reject(path, 'must not be empty');
  if (v.length > MAX_ID_LENGTH) reject(path, `is ${v.length} characters long, at most ${MAX_ID_LENGTH} allowed`);
  return v;
}

function checkFields(obj: Record<string, unknown>, allowed: Set<string>, prefix: string): void {
  for (const key in obj) {
    if (!allowed.has(key)) reject(`${prefix}${key}`, `unknown field (allowed: ${[...allowed].join(', ')})`);
  }
}

function timestamp(obj: Record<string, unknown>): number {
  const v = obj.ts;
  if (v === undefined) reject('ts', 'is required');
  const ts = parseTimestamp(v);
  if (typeof ts === 'string') reject('ts', ts);
  return ts;
}

function optionalDc(obj: Record<string, unknown>): string | undefined {
  return obj.dc === undefined ? undefined : requireString(obj, 'dc', 'dc');
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function emission(obj: Record<string, unknown>): Emission {
  checkFields(obj, EMISSION_FIELDS, '');
  const id = requireString(obj, 'id', 'id');
  const ts = timestamp(obj);
  const placement = requireString(obj, 'placement', 'placement');
  const dc = optionalDc(obj);
  const raw = obj.offers;
  if (raw === undefined) reject('offers', 'is required');
  if (!Array.isArray(raw)) reject('offers', `expected an array of offers, got ${describeType(raw)}`);
  if (raw.length === 0) reject('offers', 'must list at least one offer');
  if (raw.length > MAX_OFFERS) reject('offers', `lists ${raw.length} offers, at most ${MAX_OFFERS} allowed`);
  const offers: Offer[] = new Array(raw.length);
  const seen = new Set<string>();
  for (let i = 0; i < raw.length; i++) {
    const o: unknown = raw[i];
    const path = `offers[${i}]`;
    if (!isRecord(o)) reject(path, `expected an object, got ${describeType(o)}`);
    checkFields(o, OFFER_FIELDS, `${path}.`);
    const offerId = requireString(o, 'offerId', `${path}.offerId`);
    if (seen.has(offerId)) reject(`${path}.offerId`, `offer "${offerId}" is listed twice in this emission`);
    seen.add(offerId);
    const c = o.clickCost;
    if (c === undefined) reject(`${path}.clickCost`, 'is required');
    if (typeof c !== 'string')
      reject(`${path}.clickCost`, `expected a decimal string like "0.35", got ${describeType(c)}`);
    const clickCost = parseMoney(c);
    if (typeof clickCost === 'string') reject(`${path}.clickCost`, clickCost);
    offers[i] = { offerId, clickCost };
  }
  const e: Emission = { type: 'emission', id, ts, placement, offers };
  if (dc !== undefined) e.dc = dc;
  return e;
}

function click(obj: Record<string, unknown>): Click {
  checkFields(obj, CLICK_FIELDS, '');
  const id = requireString(obj, 'id', 'id');
  const ts = timestamp(obj);
  const emissionId = requireString(obj, 'emissionId', 'emissionId');
  const offerId = requireString(obj, 'offerId', 'offerId');
  const userId = requireString(obj, 'userId', 'userId');
  const ip = requireString(obj, 'ip', 'ip');
  if (isIP(ip) === 0) reject('ip', `expected an IPv4 or IPv6 address, got ${JSON.stringify(ip)}`);
  const dc = optionalDc(obj);
  const c: Click = { type: 'click', id, ts, emissionId, offerId, userId, ip };
  if (dc !== undefined) c.dc = dc;
  return c;
}

/** Validates an already-parsed JSON value as an event. */
export function validateEvent(value: unknown): ParseResult {
  try {
    if (!isRecord(value))
      return {
        ok: false,
        field: '$',
        reason: `expected an event object, got ${describeType(value)}`,
      };
    const type = value.type;
    if (type === 'emission') return { ok: true, event: emission(value) };
    if (type === 'click') return { ok: true, event: click(value) };
    if (type === undefined) return { ok: false, field: 'type', reason: 'is required ("emission" or "click")' };
    return {
      ok: false,
      field: 'type',
      reason: `expected "emission" or "click", got ${JSON.stringify(type)}`,
    };
  } catch (e) {
    if (e instanceof Reject) return { ok: false, field: e.field, reason: e.reason };
    throw e;
  }
}

/** Parses one line of JSON text (an NDJSON line) into an event. */
export function parseEventLine(line: string): ParseResult {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (e) {
    return { ok: false, field: '$', reason: `not valid JSON: ${(e as Error).message}` };
  }
  return validateEvent(value);
}
