/**
 * The multi-DC merger: several streams of one kind of event (say `emissions.dc1` and
 * `emissions.dc2`, partition 3 of each) become one stream ordered by event time, as a merge
 * sort over the streams' heads (RTB House's merger, seed 002). Each stream is assumed sorted
 * by event time, as a data center's own log is, near enough.
 *
 * The merger does not buffer: it answers, for the record at the head of a stream, whether it
 * may go next. A head may go when no other stream can still deliver an earlier event: every
 * other stream has a later head waiting, or has already moved past it, or is idle (read to its
 * end after a quiet spell). A refused head stays in the worker runtime's bounded queue, whose
 * back-pressure pauses fetching the stream that runs ahead.
 */

interface StreamState {
  /** Position among the streams: breaks ties between equal event times. */
  rank: number;
  /** Event time of the head record waiting to go, if one is waiting. */
  head: number | undefined;
  /** Latest event time taken from this stream. */
  last: number;
  /** Read to its end after a quiet spell: does not hold the others back. */
  idle: boolean;
}

/** Figures of one merger. */
export interface MergerFigures {
  /** Records let through. */
  taken: number;
  /** Times a head was refused because another stream could still deliver earlier events. */
  held: number;
}

/** Orders the heads of several event-time-sorted streams into one stream. */
export class StreamMerger {
  private readonly streams = new Map<string, StreamState>();
  readonly figures: MergerFigures = { taken: 0, held: 0 };

  constructor(names: readonly string[]) {
    if (names.length < 2) throw new Error(`a merger needs at least two streams, got ${names.length}`);
    names.forEach((name, rank) =>
      this.streams.set(name, { rank, head: undefined, last: Number.NEGATIVE_INFINITY, idle: false }),
    );
  }

  /** May the head of `name`, with event time `ts`, go next? Remembers it as the waiting head either way. */
  mayTake(name: string, ts: number): boolean {
    const s = this.stream(name);
    s.head = ts;
    for (const o of this.streams.values()) {
      if (o === s || o.idle) continue;
      if (o.head !== undefined) {
        if (o.head < ts || (o.head === ts && o.rank < s.rank)) return this.hold();
      } else if (o.last < ts) {
        // Nothing of it is waiting and it has not passed `ts`: it may still deliver an earlier event.
        return this.hold();
      }
    }
    return true;
  }

  /** Records that the head of `name` went. */
  taken(name: string, ts: number): void {
    const s = this.stream(name);
    s.head = undefined;
    if (ts > s.last) s.last = ts;
    this.figures.taken++;
  }

  /** Marks a stream idle (read to its end after a quiet spell) or active; returns whether that changed. */
  setIdle(name: string, idle: boolean): boolean {
    const s = this.stream(name);
    if (s.idle === idle) return false;
    s.idle = idle;
    return true;
  }

  /** Forgets a stream's waiting head (its partition was closed). */
  dropHead(name: string): void {
    this.stream(name).head = undefined;
  }

  private hold(): false {
    this.figures.held++;
    return false;
  }

  private stream(name: string): StreamState {
    const s = this.streams.get(name);
    if (s === undefined) throw new Error(`unknown stream ${name}`);
    return s;
  }
}
