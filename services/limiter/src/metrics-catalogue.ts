import type { HistogramSpec, MetricSpec } from '@switchyard/telemetry';

/*
 * Every metric the limiter exports (alerts, dashboard and README are written
 * against this file). Cardinality: scope ∈ deployment, tenant; key ≤
 * deployments + tenants in config; kind ∈ rpm, tpm, tpd, concurrency;
 * outcome ∈ granted, denied, waited.
 */
export const limiterMetrics = {
  utilisation: {
    name: 'switchyard_limiter_utilisation_ratio',
    help: 'Used ÷ configured provider limit per key and limit kind (the seeds’ 80 % line is 0.8; admission stops at the headroom)',
    labels: ['scope', 'key', 'kind'],
  } satisfies MetricSpec,
  acquires: {
    name: 'switchyard_limiter_acquires_total',
    help: 'Acquire decisions by outcome (granted at once, waited then granted, denied) and whether the local fallback decided',
    labels: ['outcome', 'local_fallback'],
  } satisfies MetricSpec,
  wait: {
    name: 'switchyard_limiter_wait_seconds',
    help: 'Time an Acquire waited in the queue before its answer',
    labels: [],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  } satisfies HistogramSpec,
  cooldowns: {
    name: 'switchyard_limiter_cooldowns_total',
    help: 'Cooldowns started by an upstream 429 (or a provider reporting 0 remaining), by deployment',
    labels: ['deployment'],
  } satisfies MetricSpec,
  localFallback: {
    name: 'switchyard_limiter_local_fallback',
    help: '1 while this replica limits from its local share because Redis is unreachable',
    labels: [],
  } satisfies MetricSpec,
  fallbackTransitions: {
    name: 'switchyard_limiter_fallback_transitions_total',
    help: 'Switches between shared (Redis) and local fallback accounting, by the mode switched to',
    labels: ['to'],
  } satisfies MetricSpec,
} as const;
