import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/index.ts';
import { openLog } from '../../src/cli/process.ts';
import { startMockKafka } from '../support/kafka-mock.ts';

describe('openLog', () => {
  it('opens the embedded log under <dataDir>/log with the configured fsync policy', async () => {
    const data = mkdtempSync(join(tmpdir(), 'reckon-open-'));
    const { config } = loadConfig({
      env: { RECKON_DATA_DIR: data, RECKON_LOG_FSYNC: 'none', RECKON_LOG_SEGMENT_BYTES: '65536' },
      cwd: data,
    });
    const log = await openLog(config);
    assert.equal(log.kind, 'embedded');
    await log.createTopic({ name: 'clicks', partitions: 2 });
    assert.ok(existsSync(join(data, 'log', 'topics', 'clicks', '1')));
    await log.close();
  });

  it('opens Kafka when brokers are configured, and rejects malformed broker lists', async () => {
    const mock = await startMockKafka(1);
    try {
      const { config } = loadConfig({ env: { RECKON_KAFKA_BROKERS: mock.brokers.join(',') }, cwd: tmpdir() });
      const log = await openLog(config);
      assert.equal(log.kind, 'kafka');
      await log.close();
    } finally {
      await mock.stop();
    }
    assert.throws(
      () => loadConfig({ env: { RECKON_KAFKA_BROKERS: 'kafka1' }, cwd: tmpdir() }),
      /kafkaBrokers: "kafka1" .* "kafka1" is not one/,
    );
  });
});
