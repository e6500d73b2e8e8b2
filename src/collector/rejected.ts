/**
 * The collector's dead-letter store: every rejected line (or array element, or unreadable body)
 * is appended to the log topic `collector.rejected` with its reason, so bad input is kept as
 * durably as good input and can be inspected, fixed and sent again.
 */
import type { Log, LogRecord, RecordInput } from '../log/index.ts';
import type { RejectionKind } from './ingest.ts';

/** Topic of rejected input. */
export const REJECTED_TOPIC = 'collector.rejected';

/** Longest raw body kept for a wholly unreadable request (the rest is cut, and marked so). */
export const MAX_KEPT_BODY_BYTES = 64 * 1024;

const H = {
  reason: 'reckon.rejected.reason',
  kind: 'reckon.rejected.kind',
  line: 'reckon.rejected.line',
  request: 'reckon.rejected.request',
  receivedAt: 'reckon.rejected.received-at',
  truncated: 'reckon.rejected.truncated',
};

/** A kept rejection. */
export interface RejectedRecord {
  /** Offset in the rejected topic. */
  id: number;
  /** The request it came with. */
  requestId: string;
  /** 1-based line or array element number; 0 for a whole unreadable body. */
  line: number;
  kind: RejectionKind | 'unreadable_body';
  reason: string;
  raw: Buffer;
  receivedAt: number;
  /** The raw bytes were cut at {@link MAX_KEPT_BODY_BYTES} (or at the line limit). */
  truncated: boolean;
}

/** Builds the log record of one rejection. */
export function rejectedRecord(
  requestId: string,
  receivedAt: number,
  line: number,
  kind: RejectedRecord['kind'],
  reason: string,
  raw: Buffer,
  truncated = false,
): RecordInput {
  const headers: Record<string, string> = {
    [H.reason]: reason.slice(0, 4000),
    [H.kind]: kind,
    [H.line]: String(line),
    [H.request]: requestId,
    [H.receivedAt]: String(receivedAt),
  };
  if (truncated) headers[H.truncated] = '1';
  return { partition: 0, value: raw, timestamp: receivedAt, headers };
}

/** Creates the rejected topic if missing. */
export async function ensureRejectedTopic(log: Log): Promise<void> {
  try {
    await log.partitionCount(REJECTED_TOPIC);
  } catch {
    await log.createTopic({ name: REJECTED_TOPIC, partitions: 1 });
  }
}

/** Lists kept rejections from `fromId` on, oldest first, at most `limit`. */
export async function listRejected(
  log: Log,
  options: { fromId?: number; limit?: number } = {},
): Promise<RejectedRecord[]> {
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  const out: RejectedRecord[] = [];
  let offset = Math.max(options.fromId ?? 0, await log.earliestOffset(REJECTED_TOPIC, 0));
  const end = await log.latestOffset(REJECTED_TOPIC, 0);
  while (offset < end && out.length < limit) {
    const batch = await log.read(REJECTED_TOPIC, 0, offset);
    if (batch.length === 0) break;
    for (const r of batch) {
      if (out.length >= limit) break;
      const h = r.headers;
      out.push({
        id: r.offset,
        requestId: h[H.request]?.toString() ?? '',
        line: Number(h[H.line]?.toString()),
        kind: (h[H.kind]?.toString() ?? 'invalid_event') as RejectedRecord['kind'],
        reason: h[H.reason]?.toString() ?? '',
        raw: r.value,
        receivedAt: Number(h[H.receivedAt]?.toString()),
        truncated: h[H.truncated] !== undefined,
      });
    }
    offset = (batch[batch.length - 1] as LogRecord).offset + 1;
  }
  return out;
}
