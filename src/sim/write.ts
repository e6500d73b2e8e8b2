import { closeSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';
import type { ProgressCallback, Simulation, SimulationOptions } from './generate.ts';
import type { ExpectedRow, ExpectedStatistics } from './oracle.ts';

const CHUNK = 1 << 20;

/** Writes text pieces to `path` atomically (temp file, fsync, rename), reporting progress by piece. */
function writeAtomically(
  path: string,
  pieces: Iterable<string>,
  total: number,
  phase: string,
  onProgress?: ProgressCallback,
): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    let buffer = '';
    let done = 0;
    const every = Math.max(1, Math.floor(total / 200));
    for (const piece of pieces) {
      buffer += piece;
      if (buffer.length >= CHUNK) {
        writeSync(fd, buffer);
        buffer = '';
      }
      if (++done % every === 0) onProgress?.(phase, done, total);
    }
    if (buffer.length > 0) writeSync(fd, buffer);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  onProgress?.(phase, total, total);
}

function* ndjson(lines: string[]): Iterable<string> {
  for (const line of lines) yield `${line}\n`;
}

function* expectedJson(sim: Simulation, options: SimulationOptions, expected: ExpectedStatistics): Iterable<string> {
  const header = {
    format: 'reckon-expected-statistics/1',
    seed: options.seed,
    options: { ...options, start: new Date(options.start).toISOString() },
    rules: options.rules,
    counts: sim.counts,
  };
  const head = JSON.stringify(header, null, 1);
  yield `${head.slice(0, -2)},\n`;
  const grains: (keyof ExpectedStatistics)[] = ['minute', 'hour', 'day'];
  for (const [g, grain] of grains.entries()) {
    const rows: ExpectedRow[] = expected[grain];
    yield ` "${grain}": [\n`;
    for (const [i, row] of rows.entries()) yield `  ${JSON.stringify(row)}${i + 1 < rows.length ? ',' : ''}\n`;
    yield g + 1 < grains.length ? ' ],\n' : ' ]\n}\n';
  }
}

/** Writes the lines as NDJSON and the expected statistics as JSON (one row per line), each atomically. */
export function writeSimulation(
  sim: Simulation,
  options: SimulationOptions,
  expected: ExpectedStatistics,
  paths: { events: string; expected?: string | undefined },
  onProgress?: ProgressCallback,
): void {
  writeAtomically(paths.events, ndjson(sim.lines), sim.lines.length, 'write events', onProgress);
  if (paths.expected !== undefined) {
    const rows = expected.minute.length + expected.hour.length + expected.day.length + 4;
    writeAtomically(paths.expected, expectedJson(sim, options, expected), rows, 'write expected', onProgress);
  }
}
