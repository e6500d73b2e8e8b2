/**
 * Benchmark harness: every figure is measured against a baseline in the same run, rounds
 * alternate between the two so that machine noise hits both, and the median round is kept.
 */

import type { Log, LogRecord } from '../src/log/index.ts';

/** Reads every partition of a topic from offset 0 in 1 MiB reads, touching each value; returns the bytes seen. */
export async function readWholeTopic(log: Log, topic: string, partitions: number): Promise<number> {
  let bytes = 0;
  for (let p = 0; p < partitions; p++) {
    let offset = 0;
    for (;;) {
      const records = await log.read(topic, p, offset, { maxBytes: 1 << 20 });
      if (records.length === 0) break;
      for (const r of records) bytes += r.value.length;
      offset = (records[records.length - 1] as LogRecord).offset + 1;
    }
  }
  return bytes;
}

/** One line of `npm run bench` output. */
export interface BenchResult {
  name: string;
  unit: string;
  value: number;
  baseline: number;
  ratio: number;
}

/** Runs `work` (which processes `units` items) repeatedly for at least `minMs`; returns items per second. */
export function throughput(work: () => void, units: number, minMs = 300): number {
  let runs = 0;
  const start = performance.now();
  let elapsed = 0;
  do {
    work();
    runs++;
    elapsed = performance.now() - start;
  } while (elapsed < minMs);
  return (units * runs) / (elapsed / 1000);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

/** Measures a subject against its baseline over alternating rounds and returns the result line. */
export function compare(
  name: string,
  unit: string,
  subject: () => void,
  baseline: () => void,
  units: number,
  rounds = 5,
): BenchResult {
  subject();
  baseline();
  const values: number[] = [];
  const baselines: number[] = [];
  for (let i = 0; i < rounds; i++) {
    values.push(throughput(subject, units));
    baselines.push(throughput(baseline, units));
  }
  const value = median(values);
  const base = median(baselines);
  return {
    name,
    unit,
    value: Math.round(value),
    baseline: Math.round(base),
    ratio: Number((value / base).toFixed(3)),
  };
}

/** Prints one result as a JSON line. */
export function report(result: BenchResult): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/** Runs async `work` (processing `units` items) repeatedly for at least `minMs`; returns items per second. */
export async function throughputAsync(work: () => Promise<void>, units: number, minMs = 300): Promise<number> {
  let runs = 0;
  let elapsed = 0;
  const start = performance.now();
  do {
    await work();
    runs++;
    elapsed = performance.now() - start;
  } while (elapsed < minMs);
  return (units * runs) / (elapsed / 1000);
}

/** {@link compare} for asynchronous work. */
export async function compareAsync(
  name: string,
  unit: string,
  subject: () => Promise<void>,
  baseline: () => Promise<void>,
  units: number,
  rounds = 5,
): Promise<BenchResult> {
  await subject();
  await baseline();
  const values: number[] = [];
  const baselines: number[] = [];
  for (let i = 0; i < rounds; i++) {
    values.push(await throughputAsync(subject, units));
    baselines.push(await throughputAsync(baseline, units));
  }
  const value = median(values);
  const base = median(baselines);
  return { name, unit, value: Math.round(value), baseline: Math.round(base), ratio: Number((value / base).toFixed(3)) };
}
