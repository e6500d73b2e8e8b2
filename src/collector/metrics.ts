/** The collector's own Prometheus figures, in a registry of its own (merged into /metrics by the server). */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Counters, gauges and histograms of one collector. */
export class CollectorMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'reckon_collector_requests_total',
    help: 'POST /v1/events requests by HTTP status',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });
  readonly accepted = new Counter({
    name: 'reckon_collector_events_accepted_total',
    help: 'Events made durable in the log, by type',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  readonly rejected = new Counter({
    name: 'reckon_collector_events_rejected_total',
    help: 'Lines or elements rejected and kept in the dead-letter store, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly bodyBytes = new Counter({
    name: 'reckon_collector_request_bytes_total',
    help: 'Request body bytes received (after decompression)',
    registers: [this.registry],
  });
  readonly inFlightBytes = new Gauge({
    name: 'reckon_collector_in_flight_bytes',
    help: 'Request body bytes being handled now',
    registers: [this.registry],
  });
  readonly duration = new Histogram({
    name: 'reckon_collector_request_duration_seconds',
    help: 'Time from receiving a POST /v1/events body to its answer (durable in the log)',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
}
