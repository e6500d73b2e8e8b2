/**
 * Staging tables: the rows of one log partition waiting to be flushed, appended to an in-memory
 * DuckDB table as they are consumed (nothing piles up on the JavaScript heap). A flush closes
 * the table's appender and copies the table out, while the next table fills.
 */
import type { DuckDBAppender } from '@duckdb/node-api';
import type { Click, Emission } from '../events/index.ts';
import { hourStartOf } from './layout.ts';

/** The two kinds of topic the lake archives. */
export type ArchivedKind = 'emission' | 'click';

/** Rows of one event hour within a staging table. */
export interface HourRows {
  rows: number;
  /** The archiver's clock when the first of them was staged. */
  firstSeenAt: number;
}

/** Columns of each kind's staging table, in append order. */
export const STAGING_COLUMNS: Record<ArchivedKind, string> = {
  emission:
    'id VARCHAR, ts_ms DOUBLE, placement VARCHAR, dc VARCHAR, offers VARCHAR, log_offset DOUBLE, hour_ms DOUBLE',
  click:
    'id VARCHAR, ts_ms DOUBLE, emission_id VARCHAR, offer_id VARCHAR, user_id VARCHAR, ip VARCHAR, dc VARCHAR, log_offset DOUBLE, hour_ms DOUBLE',
};

/** JSON of one offer up to its cost, by offer id: offer catalogues are small next to event counts. */
const offerPrefixes = new Map<string, string>();

/**
 * Offers travel to DuckDB as a JSON array per emission and become `STRUCT(offer_id,
 * click_cost_micros)[]` in the COPY (`from_json`): one appended value per emission instead of one
 * row per offer, and no aggregation that could reorder them.
 */
function offersJson(e: Emission): string {
  let s = '[';
  for (let i = 0; i < e.offers.length; i++) {
    const o = e.offers[i] as Emission['offers'][number];
    let prefix = offerPrefixes.get(o.offerId);
    if (prefix === undefined) {
      if (offerPrefixes.size >= 100_000) offerPrefixes.clear();
      prefix = `{"offer_id":${JSON.stringify(o.offerId)},"click_cost_micros":`;
      offerPrefixes.set(o.offerId, prefix);
    }
    s += `${i === 0 ? '' : ','}${prefix}${o.clickCost}}`;
  }
  return `${s}]`;
}

/** One staging table and its open appender. */
export class StagingTable {
  /** Rows staged. */
  rows = 0;
  /** First and last log offset staged (offsets only grow). */
  from = -1;
  to = -1;
  /** Rows per event hour (start of the UTC hour, epoch ms). */
  readonly hours = new Map<number, HourRows>();
  private open = true;

  constructor(
    readonly kind: ArchivedKind,
    /** The table's name in the archiver's DuckDB. */
    readonly table: string,
    private readonly appender: DuckDBAppender,
  ) {}

  /** Appends one event; the appender is the only copy of it. */
  add(event: Emission | Click, offset: number, seenAt: number): void {
    const a = this.appender;
    const ts = event.ts;
    const hour = hourStartOf(ts);
    a.appendVarchar(event.id);
    a.appendDouble(ts);
    if (this.kind === 'emission') {
      const e = event as Emission;
      a.appendVarchar(e.placement);
      if (e.dc === undefined) a.appendNull();
      else a.appendVarchar(e.dc);
      a.appendVarchar(offersJson(e));
    } else {
      const c = event as Click;
      a.appendVarchar(c.emissionId);
      a.appendVarchar(c.offerId);
      a.appendVarchar(c.userId);
      a.appendVarchar(c.ip);
      if (c.dc === undefined) a.appendNull();
      else a.appendVarchar(c.dc);
    }
    a.appendDouble(offset);
    a.appendDouble(hour);
    a.endRow();
    if (this.rows === 0) this.from = offset;
    this.to = offset;
    this.rows++;
    const h = this.hours.get(hour);
    if (h === undefined) this.hours.set(hour, { rows: 1, firstSeenAt: seenAt });
    else h.rows++;
  }

  /** Makes every staged row visible to queries and closes the appender; idempotent. */
  close(): void {
    if (!this.open) return;
    this.open = false;
    try {
      this.appender.flushSync();
    } finally {
      this.appender.closeSync();
    }
  }
}
