import { LATENCY_BUCKETS_SECONDS, type HistogramSpec, type MetricSpec } from '@switchyard/telemetry';

/*
 * Every metric the breaker exports (alerts, dashboard and README are written
 * against this file). Cardinality: deployment ≤ deployments in config;
 * state ∈ closed, open, half_open; reason ∈ TRANSITION_REASONS; result ∈
 * success, failure, neutral.
 */
export const TRANSITION_REASONS = ['consecutive_failures', 'failure_rate', 'slow_calls', 'open_elapsed', 'probe_succeeded', 'probe_failed', 'operator', 'other'] as const;

export const breakerMetrics = {
  circuitState: {
    name: 'switchyard_breaker_circuit_state',
    help: 'Circuit state per deployment as a state set: 1 for the current state (closed, open, half_open), 0 for the others; read from the shared store at scrape time',
    labels: ['deployment', 'provider', 'state'],
  } satisfies MetricSpec,
  transitions: {
    name: 'switchyard_breaker_transitions_total',
    help: 'Circuit transitions this replica decided, by deployment, from, to and reason',
    labels: ['deployment', 'from', 'to', 'reason'],
  } satisfies MetricSpec,
  failureRate: {
    name: 'switchyard_breaker_failure_rate',
    help: 'Failure rate (0..1) over the breaker window per deployment (the ≥ 50 % opening rule reads the same figure)',
    labels: ['deployment'],
  } satisfies MetricSpec,
  latencyP95: {
    name: 'switchyard_breaker_latency_p95_seconds',
    help: 'p95 attempt latency over the breaker window per deployment',
    labels: ['deployment'],
  } satisfies MetricSpec,
  outcomes: {
    name: 'switchyard_breaker_outcomes_total',
    help: 'Attempt outcomes recorded, by deployment and result (success, failure, neutral = client errors that never trip a breaker)',
    labels: ['deployment', 'result'],
  } satisfies MetricSpec,
  outcomeDuration: {
    name: 'switchyard_breaker_outcome_duration_seconds',
    help: 'Latency of the recorded attempts, by deployment',
    labels: ['deployment'],
    buckets: LATENCY_BUCKETS_SECONDS,
  } satisfies HistogramSpec,
  localFallback: {
    name: 'switchyard_breaker_local_fallback',
    help: '1 while this replica keeps circuit state in its own memory because Redis is unreachable',
    labels: [],
  } satisfies MetricSpec,
  fallbackTransitions: {
    name: 'switchyard_breaker_fallback_transitions_total',
    help: 'Switches between shared (Redis) and local (memory) circuit state, by the mode switched to',
    labels: ['to'],
  } satisfies MetricSpec,
} as const;
