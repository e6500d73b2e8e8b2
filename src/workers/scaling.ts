/**
 * The scaling signal of a consumer group, after the queue-depth rule of the Agari talk: scale
 * out while the backlog grows, scale in only when nothing is in flight.
 */

/** One observation of a group. */
export interface GroupSample {
  /** Records between committed positions and the end of the log, summed over partitions. */
  lag: number;
  /** Records fetched and not yet finished. */
  inFlight: number;
}

/** Recommends a worker count from recent samples. */
export class ScalingAdvisor {
  private readonly samples: GroupSample[] = [];

  constructor(
    readonly min: number,
    readonly max: number,
    /** How many consecutive growing samples trigger a scale-out. */
    readonly growthSamples = 3,
  ) {
    if (min < 1 || max < min) throw new RangeError(`need 1 <= min <= max, got min ${min}, max ${max}`);
  }

  /** Adds a sample and returns the recommended number of workers given the current one. */
  desiredWorkers(current: number, sample: GroupSample): number {
    this.samples.push(sample);
    if (this.samples.length > this.growthSamples + 1) this.samples.shift();
    const clamp = (n: number) => Math.max(this.min, Math.min(this.max, n));
    const recent = this.samples;
    const growing =
      recent.length === this.growthSamples + 1 &&
      recent.every((s, i) => i === 0 || s.lag > (recent[i - 1] as GroupSample).lag);
    if (growing) {
      this.samples.length = 0;
      return clamp(current + 1);
    }
    if (sample.lag === 0 && sample.inFlight === 0) return clamp(current - 1);
    return clamp(current);
  }
}
