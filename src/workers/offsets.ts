/**
 * ContiguousOffsetTracker: which offset of a partition may be committed. Records are registered
 * in fetch order and finish in any order; the committable position is the first offset not yet
 * finished, so nothing is ever committed past an unfinished record.
 */
export class ContiguousOffsetTracker {
  /** Registered offsets in order, from `head` on still unfinished or not yet passed. */
  private offsets: number[] = [];
  private head = 0;
  /** Finished offsets that are not yet at the head (out-of-order completions). */
  private readonly doneEarly = new Set<number>();
  /** The position when nothing is in flight: one past the last registered offset. */
  private next: number;

  constructor(start: number) {
    this.next = start;
  }

  /** Registers a fetched record; offsets must increase (gaps are allowed, e.g. after a skip). */
  register(offset: number): void {
    if (offset < this.next) throw new Error(`offset ${offset} registered after ${this.next - 1}`);
    this.offsets.push(offset);
    this.next = offset + 1;
  }

  /** Moves the position over a range that will never be registered (skipped forward). */
  skipTo(offset: number): void {
    if (offset < this.next) return;
    this.next = offset;
  }

  /** Marks a registered record finished (processed, or given up on by policy). */
  finish(offset: number): void {
    if (this.head < this.offsets.length && this.offsets[this.head] === offset) {
      this.head++;
      // Pass every finished offset that was waiting behind this one.
      while (this.head < this.offsets.length && this.doneEarly.delete(this.offsets[this.head] as number)) this.head++;
      if (this.head > 1024 && this.head * 2 > this.offsets.length) {
        this.offsets = this.offsets.slice(this.head);
        this.head = 0;
      }
    } else {
      this.doneEarly.add(offset);
    }
  }

  /** The offset to commit: the first unfinished one, or one past the last registered. */
  position(): number {
    return this.head < this.offsets.length ? (this.offsets[this.head] as number) : this.next;
  }

  /** Records registered and not yet passed by the position. */
  get inFlight(): number {
    return this.offsets.length - this.head;
  }
}
