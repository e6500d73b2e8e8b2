/**
 * Starts librdkafka's mock cluster (a Kafka-protocol broker on loopback) for tests: compiles
 * mock-broker.c once per source version (needs Debian's librdkafka-dev and gcc), runs it, and
 * creates topics through its stdin (the mock has no CreateTopics API).
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** A running mock cluster. */
export interface MockKafka {
  brokers: string[];
  createTopic(topic: string, partitions: number): Promise<void>;
  /** Freezes the brokers (SIGSTOP): requests hang until `resume()`, as with a stalled cluster. */
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
}

function binary(): string {
  const source = new URL('./mock-broker.c', import.meta.url).pathname;
  const hash = createHash('sha256').update(readFileSync(source)).digest('hex').slice(0, 12);
  const out = join(tmpdir(), `reckon-mock-broker-${hash}`);
  if (existsSync(out)) return out;
  if (!existsSync('/usr/include/librdkafka/rdkafka_mock.h')) {
    throw new Error(
      'the Kafka tests need librdkafka-dev and gcc: apt-get install -y librdkafka-dev gcc (.ci/run installs them)',
    );
  }
  execFileSync('gcc', ['-O2', '-Wall', source, '-o', `${out}.tmp`, '-lrdkafka'], { stdio: 'inherit' });
  execFileSync('mv', [`${out}.tmp`, out]);
  return out;
}

/** Starts a mock cluster of `brokers` brokers. */
export async function startMockKafka(brokers = 3): Promise<MockKafka> {
  const child = spawn(binary(), [String(brokers)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  const waiters: ((line: string) => void)[] = [];
  createInterface({ input: child.stdout }).on('line', (l) => {
    const w = waiters.shift();
    if (w) w(l);
    else lines.push(l);
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const nextLine = () =>
    new Promise<string>((resolve, reject) => {
      const l = lines.shift();
      if (l !== undefined) return resolve(l);
      const timer = setTimeout(() => reject(new Error('the mock broker did not answer within 10 s')), 10_000);
      waiters.push((line) => {
        clearTimeout(timer);
        resolve(line);
      });
    });
  const bootstrap = await nextLine();
  return {
    brokers: bootstrap.trim().split(','),
    async createTopic(topic, partitions) {
      child.stdin.write(`create ${topic} ${partitions} 1\n`);
      const reply = await nextLine();
      if (reply !== 'ok') throw new Error(`mock broker could not create ${topic}: ${reply}`);
    },
    pause() {
      child.kill('SIGSTOP');
    },
    resume() {
      child.kill('SIGCONT');
    },
    async stop() {
      child.kill('SIGCONT');
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
