/**
 * Alert delivery: alerts are raised into the store's outbox (once per key, in the same
 * transaction as the state change they report) and an {@link AlertDispatcher} leases them and
 * hands each to every sink once: the log, and HTTP webhooks retried a bounded number of times.
 */
import { ReckonError } from '../events/index.ts';
import type { AlertRecord, AlertStore } from '../store/index.ts';

/** Where alerts go. `deliver` throws when it finally could not deliver. */
export interface AlertSink {
  readonly name: string;
  deliver(alert: AlertRecord): Promise<void>;
}

/** The JSON body sinks send: what the alert says and its stable id for de-duplication. */
export function alertPayload(a: AlertRecord): Record<string, unknown> {
  return {
    id: a.key,
    kind: a.kind,
    source: a.source,
    message: a.message,
    details: a.details,
    createdAt: new Date(a.createdAt).toISOString(),
  };
}

/** Writes one JSON line per alert (to stderr by default). */
export function logAlertSink(write: (line: string) => void = (l) => process.stderr.write(l)): AlertSink {
  return {
    name: 'log',
    async deliver(a) {
      write(`${JSON.stringify({ alert: alertPayload(a) })}\n`);
    },
  };
}

/** Options of {@link webhookAlertSink}. */
export interface WebhookOptions {
  /** Tries in all (default 5). */
  attempts?: number;
  /** Wait before the second try, doubled for each after it (default 500 ms). */
  backoffMs?: number;
  /** Per request (default 5 s). */
  timeoutMs?: number;
}

/**
 * POSTs each alert as JSON to `url` (header `Idempotency-Key: <alert id>`). Network errors, 5xx
 * and 429 are retried with exponential back-off, at most `attempts` tries; other answers are final.
 */
export function webhookAlertSink(url: string, options: WebhookOptions = {}): AlertSink {
  const attempts = options.attempts ?? 5;
  const backoffMs = options.backoffMs ?? 500;
  const timeoutMs = options.timeoutMs ?? 5000;
  return {
    name: `webhook ${url}`,
    async deliver(a) {
      let last = '';
      for (let i = 1; i <= attempts; i++) {
        try {
          const res = await fetch(url, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'idempotency-key': a.key },
            body: JSON.stringify(alertPayload(a)),
            signal: AbortSignal.timeout(timeoutMs),
          });
          await res.arrayBuffer().catch(() => undefined);
          if (res.ok) return;
          last = `HTTP ${res.status}`;
          if (res.status < 500 && res.status !== 429) break;
        } catch (e) {
          last = e instanceof Error ? e.message : String(e);
        }
        if (i < attempts) await new Promise((r) => setTimeout(r, backoffMs * 2 ** (i - 1)));
      }
      throw new ReckonError('RECKON_ALERT_UNDELIVERED', `webhook ${url} refused alert ${a.key}: ${last}`);
    },
  };
}

/** Options of an {@link AlertDispatcher}. */
export interface AlertDispatcherOptions {
  store: AlertStore;
  sinks: readonly AlertSink[];
  owner: string;
  clock?: () => number;
  /** Default 1 s. */
  pollMs?: number;
  /** A lease left by a crashed dispatcher is taken over after this long. Default 2 minutes. */
  leaseMs?: number;
  onEvent?: (message: string) => void;
}

/** Leases pending alerts and delivers each to every sink once. */
export class AlertDispatcher {
  readonly #o: AlertDispatcherOptions;
  #timer: NodeJS.Timeout | undefined;
  #busy: Promise<number> | undefined;

  constructor(options: AlertDispatcherOptions) {
    this.#o = options;
  }

  /** Delivers what is due now; returns how many alerts it handled. */
  deliverDue(): Promise<number> {
    this.#busy ??= this.#deliver().finally(() => {
      this.#busy = undefined;
    });
    return this.#busy;
  }

  async #deliver(): Promise<number> {
    const clock = this.#o.clock ?? Date.now;
    let handled = 0;
    for (;;) {
      const batch = await this.#o.store.claimAlerts(this.#o.owner, clock(), 20, this.#o.leaseMs ?? 120_000);
      if (batch.length === 0) return handled;
      for (const a of batch) {
        const errors: string[] = [];
        for (const sink of this.#o.sinks) {
          try {
            await sink.deliver(a);
          } catch (e) {
            errors.push(`${sink.name}: ${e instanceof Error ? e.message : String(e)}`);
          }
        }
        // Each sink got one delivery (with its own retries); a failure is recorded, not repeated,
        // so no sink sees an alert twice.
        await this.#o.store.completeAlert(
          a.id,
          this.#o.owner,
          clock(),
          errors.length === 0 ? { delivered: true } : { delivered: false, error: errors.join('; ') },
        );
        if (errors.length > 0) this.#o.onEvent?.(`alert ${a.key} not delivered: ${errors.join('; ')}`);
        handled++;
      }
    }
  }

  /** Delivers every `pollMs` until {@link stop}. */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => {
      this.deliverDue().catch((e) => this.#o.onEvent?.(`alert delivery failed (retrying): ${String(e)}`));
    }, this.#o.pollMs ?? 1000);
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#busy?.catch(() => undefined);
  }
}
