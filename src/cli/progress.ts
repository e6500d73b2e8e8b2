/**
 * A progress bar for long work on stderr: redrawn in place on a terminal, a line per quarter
 * otherwise (so logs of CI runs show progress without flooding).
 */
import type { Writable } from 'node:stream';

/** Progress sink: call with the phase, units done and units in total, and what else to show (a rate, time left). */
export type Progress = (phase: string, done: number, total: number, detail?: string) => void;

const WIDTH = 30;

/** Creates a progress reporter writing to `out` (default stderr). */
export function createProgress(out: Writable & { isTTY?: boolean } = process.stderr): Progress {
  const started = Date.now();
  let phase = '';
  let lastDraw = 0;
  let lastQuarter = -1;
  return (p, done, total, detail) => {
    const extra = detail === undefined || detail === '' ? '' : ` ${detail}`;
    const fraction = total > 0 ? Math.min(1, done / total) : 1;
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    if (p !== phase) {
      phase = p;
      lastQuarter = -1;
      lastDraw = 0;
    }
    if (out.isTTY) {
      const now = Date.now();
      if (fraction < 1 && now - lastDraw < 100) return;
      lastDraw = now;
      const filled = Math.round(fraction * WIDTH);
      const bar = `${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}`;
      out.write(
        `\r${phase.padEnd(16)} [${bar}] ${(fraction * 100).toFixed(0).padStart(3)}% ${done}/${total} ${seconds}s${extra}\x1b[K`,
      );
      if (fraction >= 1) out.write('\n');
      return;
    }
    const quarter = Math.floor(fraction * 4);
    if (quarter === lastQuarter) return;
    lastQuarter = quarter;
    out.write(`${phase}: ${(fraction * 100).toFixed(0)}% (${done}/${total}) ${seconds}s${extra}\n`);
  };
}
