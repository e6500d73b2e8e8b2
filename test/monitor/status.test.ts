import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type MonitorSources, workerStatuses } from '../../src/monitor/sources.ts';
import { type PartStatus, publishStatus } from '../../src/workers/index.ts';

const NOW = Date.UTC(2026, 11, 6, 12);

function write(dir: string, st: PartStatus): void {
  writeFileSync(join(dir, `${st.part}.${st.pid}.json`), JSON.stringify(st));
}

describe('worker status files', () => {
  it('merges the fresh files of a group into one status per part: counts add up, times take the latest, series join', () => {
    const dir = mkdtempSync(join(tmpdir(), 'reckon-status-'));
    const series = (partition: number, value: number) => [{ labels: { partition: String(partition) }, value }];
    write(dir, {
      part: 'speed',
      pid: 101,
      at: NOW - 500,
      figures: { events_total: 40, last_flush_end_seconds: 1000, watermark_seconds: series(0, 7) },
    });
    write(dir, {
      part: 'speed',
      pid: 102,
      at: NOW - 200,
      figures: { events_total: 2, last_flush_end_seconds: 1003, watermark_seconds: series(1, 9) },
    });
    // A member that died a minute ago: not counted while others are up.
    write(dir, { part: 'speed', pid: 103, at: NOW - 60_000, figures: { events_total: 1000 } });
    write(dir, { part: 'archiver', pid: 201, at: NOW - 60_000, figures: { rows_total: 5 } });
    write(dir, { part: 'archiver', pid: 202, at: NOW - 90_000, figures: { rows_total: 3 } });
    const sources = { statusDir: dir, clock: () => NOW } as unknown as MonitorSources;
    const byPart = new Map(workerStatuses(sources).map((s) => [s.part, s]));
    const speed = byPart.get('speed');
    assert.equal(speed?.up, true);
    assert.equal(speed?.processes, 2);
    assert.equal(speed?.figures.events_total, 42);
    assert.equal(speed?.figures.last_flush_end_seconds, 1003);
    assert.deepEqual(speed?.figures.watermark_seconds, [...series(0, 7), ...series(1, 9)]);
    const archiver = byPart.get('archiver');
    assert.deepEqual([archiver?.up, archiver?.processes, archiver?.pid], [false, 0, 201], 'the newest file, down');
  });

  it('a starting process removes the files its part left behind in processes now dead, and writes its own', () => {
    const dir = mkdtempSync(join(tmpdir(), 'reckon-status-'));
    const deadPid = 2 ** 22 + 12_345; // above Linux's pid_max: no such process
    write(dir, { part: 'speed', pid: deadPid, at: NOW, figures: {} });
    write(dir, { part: 'archiver', pid: deadPid, at: NOW, figures: {} });
    writeFileSync(join(dir, 'speed.json'), JSON.stringify({ part: 'speed', pid: deadPid, at: NOW, figures: {} }));
    const stop = publishStatus(dir, 'speed', () => ({ events_total: 1 }));
    stop();
    assert.equal(existsSync(join(dir, `speed.${deadPid}.json`)), false);
    assert.equal(existsSync(join(dir, 'speed.json')), false, 'the file of the old one-per-part name too');
    assert.equal(existsSync(join(dir, `archiver.${deadPid}.json`)), true, 'other parts are left alone');
    assert.equal(existsSync(join(dir, `speed.${process.pid}.json`)), true);
  });
});
