/**
 * The alert outbox and the business checks' latest anomaly scores, in SQLite or PostgreSQL (the
 * same statements over a {@link SqlRunner}). Alerts are raised once per key, and a dispatcher
 * leases them for delivery. The scheduler's store raises its own alerts (task failures, SLA
 * misses) in the transactions that record them, through {@link insertAlert}.
 */
import { num, numOrNull, type Row, SKIP_LOCKED, type SqlRunner, type SqlTransaction, strOrNull } from './sql-runner.ts';

/** An alert to raise; its key makes it happen once (a second raise with the same key is ignored). */
export interface NewAlert {
  key: string;
  /** `task_failed`, `task_retry`, `sla_miss`, `discrepancy`, `anomaly`, … */
  kind: string;
  /** Who raised it: `scheduler`, `monitor`, … */
  source: string;
  message: string;
  details: Record<string, unknown>;
}

/** An alert in the outbox. */
export interface AlertRecord extends NewAlert {
  id: number;
  createdAt: number;
  state: 'pending' | 'delivering' | 'delivered' | 'failed';
  attempts: number;
  deliveredAt: number | null;
  lastError: string | null;
}

/** The latest robust score of one placement's column (see the business checks). */
export interface AnomalyScore {
  placement: string;
  column: string;
  intervalStart: number;
  value: number;
  baseline: number;
  score: number;
}

/** The alert outbox and the anomaly scores (SQLite or PostgreSQL). */
export interface AlertStore {
  /** Raises an alert unless one with its key exists; true when it was new. */
  raiseAlert(alert: NewAlert, now: number): Promise<boolean>;
  /** Leases up to `limit` alerts due for delivery to `owner` for `leaseMs`. */
  claimAlerts(owner: string, now: number, limit: number, leaseMs: number): Promise<AlertRecord[]>;
  /** Records the outcome of a delivery: delivered, or failed (`retryAt` to try again, else final). */
  completeAlert(
    id: number,
    owner: string,
    now: number,
    result: { delivered: true } | { delivered: false; error: string; retryAt?: number },
  ): Promise<void>;
  listAlerts(filter?: { kind?: string; limit?: number }): Promise<AlertRecord[]>;
  /** Replaces the scores of a check's scope (`hourly`, `daily`) with the latest ones. */
  recordAnomalyScores(scope: string, scores: readonly AnomalyScore[], now: number): Promise<void>;
  /** The latest scores of every scope. */
  anomalyScores(): Promise<(AnomalyScore & { scope: string })[]>;
}

function alertOf(r: Row): AlertRecord {
  return {
    id: num(r.id),
    key: String(r.alert_key),
    kind: String(r.kind),
    source: String(r.source),
    message: String(r.message),
    details: JSON.parse(String(r.details)) as Record<string, unknown>,
    createdAt: num(r.created_at),
    state: r.state as AlertRecord['state'],
    attempts: num(r.attempts),
    deliveredAt: numOrNull(r.delivered_at),
    lastError: strOrNull(r.last_error),
  };
}

/** Raises `alert` within `tx` unless one with its key exists; true when it was new. */
export async function insertAlert(tx: SqlTransaction, a: NewAlert, now: number): Promise<boolean> {
  const rows = await tx.all(
    `INSERT INTO alerts (alert_key, kind, source, message, details, created_at, state)
     VALUES (?, ?, ?, ?, ?, ?, 'pending') ON CONFLICT (alert_key) DO NOTHING RETURNING id`,
    [a.key, a.kind, a.source, a.message, JSON.stringify(a.details), now],
  );
  return rows.length > 0;
}

/** The alert outbox and anomaly scores over a {@link SqlRunner}; the scheduler's store extends it. */
export class SqlAlertStore implements AlertStore {
  readonly #db: SqlRunner;

  constructor(db: SqlRunner) {
    this.#db = db;
  }

  raiseAlert(alert: NewAlert, now: number): Promise<boolean> {
    return this.#db.transaction((tx) => insertAlert(tx, alert, now));
  }

  claimAlerts(owner: string, now: number, limit: number, leaseMs: number): Promise<AlertRecord[]> {
    return this.#db.transaction(async (tx) => {
      const due = await tx.all<{ id: unknown }>(
        `SELECT id FROM alerts WHERE state IN ('pending', 'delivering') AND (lease_until IS NULL OR lease_until <= ?)
         ORDER BY id LIMIT ? ${SKIP_LOCKED}`,
        [now, limit],
      );
      const out: AlertRecord[] = [];
      for (const { id } of due) {
        const [row] = await tx.all(
          `UPDATE alerts SET state = 'delivering', lease_owner = ?, lease_until = ?, attempts = attempts + 1
           WHERE id = ? RETURNING *`,
          [owner, now + leaseMs, id],
        );
        if (row !== undefined) out.push(alertOf(row));
      }
      return out;
    });
  }

  completeAlert(
    id: number,
    owner: string,
    now: number,
    result: { delivered: true } | { delivered: false; error: string; retryAt?: number },
  ): Promise<void> {
    return this.#db.transaction(async (tx) => {
      if (result.delivered) {
        await tx.run(
          `UPDATE alerts SET state = 'delivered', delivered_at = ?, lease_owner = NULL, lease_until = NULL
           WHERE id = ? AND lease_owner = ? AND state = 'delivering'`,
          [now, id, owner],
        );
      } else {
        await tx.run(
          `UPDATE alerts SET state = ?, last_error = ?, lease_owner = NULL, lease_until = ?
           WHERE id = ? AND lease_owner = ? AND state = 'delivering'`,
          [result.retryAt !== undefined ? 'pending' : 'failed', result.error, result.retryAt ?? null, id, owner],
        );
      }
    });
  }

  listAlerts(filter: { kind?: string; limit?: number } = {}): Promise<AlertRecord[]> {
    return this.#db.transaction(async (tx) =>
      (
        await tx.all(
          `SELECT * FROM alerts ${filter.kind !== undefined ? 'WHERE kind = ?' : ''} ORDER BY id LIMIT ?`,
          filter.kind !== undefined ? [filter.kind, filter.limit ?? 1_000_000] : [filter.limit ?? 1_000_000],
        )
      ).map(alertOf),
    );
  }

  recordAnomalyScores(scope: string, scores: readonly AnomalyScore[], now: number): Promise<void> {
    return this.#db.transaction(async (tx) => {
      await tx.run('DELETE FROM anomaly_scores WHERE scope = ?', [scope]);
      for (const a of scores) {
        await tx.run(
          `INSERT INTO anomaly_scores (scope, placement, column_name, interval_start, value, baseline, score, computed_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
          [scope, a.placement, a.column, a.intervalStart, a.value, a.baseline, a.score, now],
        );
      }
    });
  }

  anomalyScores(): Promise<(AnomalyScore & { scope: string })[]> {
    return this.#db.transaction(async (tx) =>
      (await tx.all('SELECT * FROM anomaly_scores ORDER BY scope, placement, column_name')).map((r) => ({
        scope: String(r.scope),
        placement: String(r.placement),
        column: String(r.column_name),
        intervalStart: num(r.interval_start),
        value: num(r.value),
        baseline: num(r.baseline),
        score: num(r.score),
      })),
    );
  }
}
