#!/usr/bin/env -S node --max-semi-space-size=64 --initial-old-space-size=128
// Entry point of the `reckon` command: runs the compiled CLI (built by `npm install`/`npm run build`).
import { existsSync } from 'node:fs';

const built = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(built)) {
  process.stderr.write('reckon: dist/ is missing; run `npm run build` (npm install does it for you)\n');
  process.exit(1);
}
await import(built.href);
