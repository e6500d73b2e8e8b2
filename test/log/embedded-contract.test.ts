import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Log, openEmbeddedLog } from '../../src/log/index.ts';
import { logContract } from './contract.ts';

logContract('embedded segment log', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'reckon-log-'));
  return {
    // Small segments so that rolling and retention happen within the tests.
    open: () => openEmbeddedLog({ dir, segmentBytes: 16 * 1024, retentionIntervalMs: 0 }),
    createTopic: (log: Log, name: string, partitions: number) => log.createTopic({ name, partitions }),
    retention: true,
    teardown: async () => rmSync(dir, { recursive: true, force: true }),
  };
});
