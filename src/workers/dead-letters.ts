/**
 * The dead-letter topic and the gap records of a consumer group, both kept in the log itself so
 * that they are as durable as the data: `<group>.dead-letters` holds each record that failed
 * permanently with its origin, error and attempt count; `<group>.gaps` holds each offset range a
 * consumer skipped, so that the batch layer can report it.
 */
import type { Log, LogRecord } from '../log/index.ts';
import type { TopicPartition, WorkerRecord } from './types.ts';

/** Name of a group's dead-letter topic. */
export const deadLetterTopic = (group: string): string => `${group}.dead-letters`;
/** Name of a group's skipped-ranges topic. */
export const gapTopic = (group: string): string => `${group}.gaps`;

const H = {
  topic: 'reckon.dlq.topic',
  partition: 'reckon.dlq.partition',
  offset: 'reckon.dlq.offset',
  error: 'reckon.dlq.error',
  attempts: 'reckon.dlq.attempts',
  failedAt: 'reckon.dlq.failed-at',
  replayOf: 'reckon.dlq.replay-of',
};

/** A dead-lettered record. */
export interface DeadLetter {
  /** Its offset in the dead-letter topic: what replay takes. */
  id: number;
  topic: string;
  partition: number;
  offset: number;
  key: Buffer | null;
  value: Buffer;
  headers: Record<string, Buffer>;
  error: string;
  attempts: number;
  failedAt: number;
  replayed: boolean;
}

/** A skipped offset range [from, to) of one partition. */
export interface Gap extends TopicPartition {
  from: number;
  to: number;
  reason: 'skip_forward' | 'retention';
  at: number;
}

/** Creates the group's dead-letter and gap topics (one partition each) if missing. */
export async function ensureGroupTopics(log: Log, group: string): Promise<void> {
  for (const name of [deadLetterTopic(group), gapTopic(group)]) {
    try {
      await log.partitionCount(name);
    } catch {
      await log.createTopic({ name, partitions: 1 });
    }
  }
}

/** Appends failed records to the dead-letter topic; resolves when durable. */
export async function writeDeadLetters(
  log: Log,
  group: string,
  records: WorkerRecord[],
  error: Error,
  attempts: number,
): Promise<void> {
  const now = Date.now();
  await log.append(
    deadLetterTopic(group),
    records.map((r) => ({
      partition: 0,
      key: r.key,
      value: r.value,
      timestamp: r.timestamp,
      headers: {
        ...r.headers,
        [H.topic]: r.topic,
        [H.partition]: String(r.partition),
        [H.offset]: String(r.offset),
        [H.error]: (error.message || String(error)).slice(0, 4000),
        [H.attempts]: String(attempts),
        [H.failedAt]: String(now),
      },
    })),
  );
}

async function readTopic(log: Log, topic: string): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  let offset = await log.earliestOffset(topic, 0);
  const end = await log.latestOffset(topic, 0);
  while (offset < end) {
    const batch = await log.read(topic, 0, offset);
    if (batch.length === 0) break;
    out.push(...batch);
    offset = (batch[batch.length - 1] as LogRecord).offset + 1;
  }
  return out;
}

/**
 * Lists a group's dead letters, oldest first, marking those already replayed. A record is
 * dead-lettered at least once (a crash between the write and the commit repeats it): letters
 * are listed once per origin (topic, partition, offset), the first one kept.
 */
export async function listDeadLetters(log: Log, group: string): Promise<DeadLetter[]> {
  const records = await readTopic(log, deadLetterTopic(group));
  const replayed = new Set<number>();
  const letters: DeadLetter[] = [];
  const origins = new Set<string>();
  for (const r of records) {
    const h = r.headers;
    if (h[H.replayOf] !== undefined) {
      replayed.add(Number(h[H.replayOf]?.toString()));
      continue;
    }
    const origin = `${h[H.topic]?.toString()}/${h[H.partition]?.toString()}/${h[H.offset]?.toString()}`;
    if (origins.has(origin)) continue;
    origins.add(origin);
    const headers: Record<string, Buffer> = {};
    for (const [k, v] of Object.entries(h)) if (!k.startsWith('reckon.dlq.')) headers[k] = v;
    letters.push({
      id: r.offset,
      topic: h[H.topic]?.toString() ?? '',
      partition: Number(h[H.partition]?.toString()),
      offset: Number(h[H.offset]?.toString()),
      key: r.key,
      value: r.value,
      headers,
      error: h[H.error]?.toString() ?? '',
      attempts: Number(h[H.attempts]?.toString()),
      failedAt: Number(h[H.failedAt]?.toString()),
      replayed: false,
    });
  }
  for (const l of letters) l.replayed = replayed.has(l.id);
  return letters;
}

/**
 * Puts dead letters back on their original topics (same key, so the same partition) and marks
 * them replayed. Without `ids`, replays every letter not yet replayed. Returns how many.
 */
export async function replayDeadLetters(log: Log, group: string, ids?: number[]): Promise<number> {
  const wanted = ids === undefined ? undefined : new Set(ids);
  const letters = (await listDeadLetters(log, group)).filter(
    (l) => !l.replayed && (wanted === undefined || wanted.has(l.id)),
  );
  for (const l of letters) {
    await log.append(l.topic, [{ key: l.key, value: l.value, timestamp: Date.now(), headers: l.headers }]);
    await log.append(deadLetterTopic(group), [
      { partition: 0, value: Buffer.alloc(0), headers: { [H.replayOf]: String(l.id) } },
    ]);
  }
  return letters.length;
}

/** Durably records a skipped range. */
export async function recordGap(log: Log, group: string, gap: Gap): Promise<void> {
  await log.append(gapTopic(group), [
    { partition: 0, key: `${gap.topic}/${gap.partition}`, value: Buffer.from(JSON.stringify(gap)) },
  ]);
}

/** Lists a group's skipped ranges. */
export async function listGaps(log: Log, group: string): Promise<Gap[]> {
  return (await readTopic(log, gapTopic(group))).map((r) => JSON.parse(r.value.toString()) as Gap);
}
