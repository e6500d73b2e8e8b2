/**
 * `reckon ingest FILE`: sends an NDJSON file to a running collector in bodies of `--batch`
 * lines, with a progress bar; retries 503 answers after their Retry-After, and reports every
 * rejected line with its line number in the file.
 */
import { createReadStream, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { UsageError } from './errors.ts';
import { createProgress } from './progress.ts';

interface IngestFlags {
  url: string;
  batch: string;
  token?: string;
  maxRetries: string;
}

/** What an ingest run did. */
export interface IngestSummary {
  lines: number;
  accepted: number;
  rejected: { line: number; reason: string }[];
  retries: number;
}

interface Answer {
  accepted?: number;
  rejected?: { line: number; reason: string }[];
  message?: string;
}

/** Posts one NDJSON body to the collector, retrying 503s and unreachable collectors up to `maxRetries` times. */
export async function send(
  url: string,
  body: string,
  token: string | undefined,
  maxRetries: number,
  onRetry: () => void,
): Promise<Answer> {
  for (let attempt = 0; ; attempt++) {
    let res: Response;
    try {
      res = await fetch(`${url}/v1/events`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-ndjson',
          ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        },
        body,
      });
    } catch (e) {
      if (attempt >= maxRetries)
        throw new UsageError(`cannot reach the collector at ${url}: ${(e as Error).message}; is reckon start running?`);
      onRetry();
      await new Promise((r) => setTimeout(r, 1000));
      continue;
    }
    const answer = (await res.json().catch(() => ({}))) as Answer;
    if (res.status === 200) return answer;
    if (res.status === 503 && attempt < maxRetries) {
      onRetry();
      const wait = Number(res.headers.get('retry-after') ?? '1');
      await new Promise((r) => setTimeout(r, 1000 * (Number.isFinite(wait) ? wait : 1)));
      continue;
    }
    throw new UsageError(`the collector answered ${res.status}: ${answer.message ?? JSON.stringify(answer)}`);
  }
}

/** Sends an NDJSON file to the collector; resolves with what was accepted and rejected. */
export async function ingestFile(
  file: string,
  options: { url: string; batch: number; token?: string; maxRetries?: number },
): Promise<IngestSummary> {
  const total = statSync(file).size;
  const progress = createProgress();
  const summary: IngestSummary = { lines: 0, accepted: 0, rejected: [], retries: 0 };
  let batch: string[] = [];
  let firstLine = 1;
  let bytes = 0;
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const answer = await send(options.url, batch.join('\n'), options.token, options.maxRetries ?? 30, () => {
      summary.retries++;
    });
    summary.accepted += answer.accepted ?? 0;
    for (const r of answer.rejected ?? []) summary.rejected.push({ line: firstLine + r.line - 1, reason: r.reason });
    firstLine += batch.length;
    batch = [];
    progress('ingest', bytes, total);
  };
  for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
    summary.lines++;
    bytes += Buffer.byteLength(line) + 1;
    batch.push(line);
    if (batch.length >= options.batch) await flush();
  }
  await flush();
  progress('ingest', total, total);
  return summary;
}

/** Adds `reckon ingest` to the program. */
export function registerIngest(program: Command): void {
  program
    .command('ingest')
    .description('send an NDJSON file of events to a running collector (POST /v1/events)')
    .argument('<file>', 'NDJSON file, one event per line')
    .option('--url <url>', 'the collector', 'http://127.0.0.1:8080')
    .option('--batch <lines>', 'lines per request', '1000')
    .option('--token <token>', 'ingest token (default: env RECKON_INGEST_TOKEN)')
    .option('--max-retries <n>', 'retries of a request answered 503 or not reached', '30')
    .action(async (file: string, flags: IngestFlags) => {
      const batch = Number(flags.batch);
      if (!Number.isInteger(batch) || batch < 1)
        throw new UsageError(`--batch ${flags.batch}: expected an integer >= 1`);
      const maxRetries = Number(flags.maxRetries);
      if (!Number.isInteger(maxRetries) || maxRetries < 0)
        throw new UsageError(`--max-retries ${flags.maxRetries}: expected an integer >= 0`);
      const token = flags.token ?? process.env.RECKON_INGEST_TOKEN;
      const s = await ingestFile(file, {
        url: flags.url.replace(/\/+$/, ''),
        batch,
        maxRetries,
        ...(token ? { token } : {}),
      });
      for (const r of s.rejected.slice(0, 20)) process.stdout.write(`line ${r.line}: ${r.reason}\n`);
      if (s.rejected.length > 20) process.stdout.write(`... and ${s.rejected.length - 20} more rejected lines\n`);
      process.stdout.write(
        `${s.lines} lines: ${s.accepted} events accepted, ${s.rejected.length} rejected (kept in the dead-letter store)${s.retries > 0 ? `, ${s.retries} retries` : ''}\n`,
      );
    });
}
