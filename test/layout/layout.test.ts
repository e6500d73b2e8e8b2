import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';

const SRC = new URL('../../src/', import.meta.url).pathname;

const GROUND = ['events', 'config', 'log', 'store', 'stats', 'workers'];
const MIDDLE = ['collector', 'speed', 'lake', 'batch'];
const UPPER = ['serving', 'scheduler', 'monitor'];

/** What each part may import: imports point down the data flow, never up. */
const MAY_IMPORT: Record<string, string[]> = {
  events: [],
  config: ['events'],
  log: ['events', 'config'],
  store: ['events', 'config'],
  stats: ['events', 'config', 'store'],
  workers: ['events', 'config', 'log', 'store'],
  ...Object.fromEntries(MIDDLE.map((p) => [p, GROUND])),
  ...Object.fromEntries(UPPER.map((p) => [p, [...GROUND, ...MIDDLE]])),
  ui: [...GROUND, ...MIDDLE, ...UPPER],
  cli: [...GROUND, ...MIDDLE, ...UPPER, 'ui', 'sim'],
  // The simulator and its oracle are the tests' source of truth: they share no production code.
  sim: [],
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? sourceFiles(join(dir, d.name)) : d.name.endsWith('.ts') ? [join(dir, d.name)] : [],
  );
}

describe('layout', () => {
  it('has every part of the data flow, each with a README', () => {
    for (const part of Object.keys(MAY_IMPORT)) {
      assert.ok(existsSync(join(SRC, part, 'README.md')), `src/${part}/README.md is missing`);
    }
    const unknown = readdirSync(SRC, { withFileTypes: true }).filter((d) => d.isDirectory() && !(d.name in MAY_IMPORT));
    assert.deepEqual(
      unknown.map((d) => d.name),
      [],
      'every folder of src/ is a known part',
    );
  });

  it('imports only parts below, and only through their index.ts', () => {
    const violations: string[] = [];
    for (const file of sourceFiles(SRC)) {
      const part = relative(SRC, file).split('/')[0] as string;
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+['"](\.[^'"]+)['"]/g)) {
        const target = relative(SRC, join(file, '..', m[1] as string));
        const targetPart = target.split('/')[0] as string;
        if (targetPart === part) continue;
        if (!(MAY_IMPORT[part] ?? []).includes(targetPart))
          violations.push(`${relative(SRC, file)} imports ${target} (${part} may not import ${targetPart})`);
        else if (target !== `${targetPart}/index.ts`)
          violations.push(`${relative(SRC, file)} imports ${target}: use ${targetPart}/index.ts`);
      }
    }
    assert.deepEqual(violations, []);
  });
});
