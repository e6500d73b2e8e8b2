import { formatMoney } from './money.ts';
import { formatTimestamp } from './time.ts';
import type { ReckonEvent } from './types.ts';

/** The wire (JSON) form of an event: timestamps as RFC 3339 UTC, money as decimal strings. */
export function eventToWire(e: ReckonEvent): Record<string, unknown> {
  if (e.type === 'emission') {
    const out: Record<string, unknown> = {
      type: 'emission',
      id: e.id,
      ts: formatTimestamp(e.ts),
      placement: e.placement,
    };
    if (e.dc !== undefined) out.dc = e.dc;
    out.offers = e.offers.map((o) => ({ offerId: o.offerId, clickCost: formatMoney(o.clickCost) }));
    return out;
  }
  const out: Record<string, unknown> = {
    type: 'click',
    id: e.id,
    ts: formatTimestamp(e.ts),
    emissionId: e.emissionId,
    offerId: e.offerId,
    userId: e.userId,
    ip: e.ip,
  };
  if (e.dc !== undefined) out.dc = e.dc;
  return out;
}

/** One NDJSON line (without the newline) for an event. */
export function eventToJsonLine(e: ReckonEvent): string {
  return JSON.stringify(eventToWire(e));
}
