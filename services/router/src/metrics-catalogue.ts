import { LATENCY_BUCKETS_SECONDS, type HistogramSpec, type MetricSpec } from '@switchyard/telemetry';

/*
 * Every metric the router exports: names, meaning, labels. The alert rules
 * (deploy/prometheus/alerts.yaml), the dashboard (deploy/grafana/) and the
 * README "Observability" table are written against this file.
 *
 * Cardinality: every label value comes from the gateway config or a closed
 * set. route ≤ routes in config, tenant ≤ tenants, deployment ≤ deployments,
 * provider ≤ 4 dialects, feature ≤ METRICS_MAX_FEATURES (default 50) distinct values per process + `other` (callers name features; the first ones seen keep their name),
 * grpc_status ≤ 17 codes, error_class ≤ 12 classes (+ `none`), cache_status ≤ 6,
 * reason ≤ a closed list per metric, peer ≤ 4 peers + nats.
 */

/** Token-count buckets advised by the OTel GenAI semantic conventions for gen_ai.client.token.usage. */
export const TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864] as const;

export const routerMetrics = {
  calls: {
    name: 'switchyard_router_calls_total',
    help: 'Calls answered, by route, tenant, final gRPC status, cache status (miss, hit, stale, bypass, unavailable, none) and whether the answer was degraded',
    labels: ['route', 'tenant', 'grpc_status', 'cache_status', 'degraded'],
  } satisfies MetricSpec,
  callDuration: {
    name: 'switchyard_router_call_duration_seconds',
    help: 'Wall time of a call from arrival to answer, by route',
    labels: ['route'],
    buckets: LATENCY_BUCKETS_SECONDS,
  } satisfies HistogramSpec,
  attempts: {
    name: 'switchyard_router_attempts_total',
    help: 'Provider attempts, by deployment, provider and error class (`none` when it succeeded)',
    labels: ['deployment', 'provider', 'error_class'],
  } satisfies MetricSpec,
  attemptDuration: {
    name: 'switchyard_router_attempt_duration_seconds',
    help: 'Wall time of one provider attempt, by deployment',
    labels: ['deployment'],
    buckets: LATENCY_BUCKETS_SECONDS,
  } satisfies HistogramSpec,
  timeToFirstToken: {
    name: 'switchyard_router_time_to_first_token_seconds',
    help: 'Streams: time from dispatch to the first content chunk, by deployment',
    labels: ['deployment'],
    buckets: LATENCY_BUCKETS_SECONDS,
  } satisfies HistogramSpec,
  /** OTel GenAI convention `gen_ai.client.token.usage`, in Prometheus naming. */
  tokenUsage: {
    name: 'gen_ai_client_token_usage',
    help: 'Tokens per successful attempt (gen_ai.client.token.usage), by token type (input, output), provider and model',
    labels: ['gen_ai_token_type', 'gen_ai_provider_name', 'gen_ai_request_model'],
    buckets: TOKEN_BUCKETS,
  } satisfies HistogramSpec,
  /** OTel GenAI convention `gen_ai.client.operation.duration`, in Prometheus naming. */
  operationDuration: {
    name: 'gen_ai_client_operation_duration_seconds',
    help: 'Provider attempt duration (gen_ai.client.operation.duration), by provider, model and error type (empty on success)',
    labels: ['gen_ai_provider_name', 'gen_ai_request_model', 'error_type'],
    buckets: LATENCY_BUCKETS_SECONDS,
  } satisfies HistogramSpec,
  tokens: {
    name: 'switchyard_router_tokens_total',
    help: 'Tokens billed, by tenant, feature, deployment and type (input, output)',
    labels: ['tenant', 'feature', 'deployment', 'type'],
  } satisfies MetricSpec,
  cost: {
    name: 'switchyard_router_cost_usd_total',
    help: 'Actual cost of answered calls in USD (deployment price × usage), by tenant, feature and deployment',
    labels: ['tenant', 'feature', 'deployment'],
  } satisfies MetricSpec,
  cacheSavedCost: {
    name: 'switchyard_router_cache_saved_usd_total',
    help: 'Estimated cost of calls answered from the cache instead of a provider, by tenant',
    labels: ['tenant'],
  } satisfies MetricSpec,
  retries: {
    name: 'switchyard_router_retries_total',
    help: 'Attempts that were a retry of the same deployment, by deployment',
    labels: ['deployment'],
  } satisfies MetricSpec,
  fallbacks: {
    name: 'switchyard_router_fallbacks_total',
    help: 'Moves to the next candidate deployment, by the error class that caused it, or quota / unavailable for a candidate skipped (its quota spent; circuit open or cooling down)',
    labels: ['reason'],
  } satisfies MetricSpec,
  retryBudgetExhausted: {
    name: 'switchyard_router_retry_budget_exhausted_total',
    help: 'Retries refused because the replica retry budget (20 % of requests + 10/s) was spent',
    labels: [],
  } satisfies MetricSpec,
  coalesced: {
    name: 'switchyard_router_coalesced_total',
    help: 'Calls answered from an identical call in flight (single-flight) instead of their own attempt',
    labels: ['route'],
  } satisfies MetricSpec,
  idempotentReplays: {
    name: 'switchyard_router_idempotent_replays_total',
    help: 'Calls answered by replaying the stored answer of an earlier call with the same idempotency key',
    labels: ['route'],
  } satisfies MetricSpec,
  peerDuration: {
    name: 'switchyard_router_peer_duration_seconds',
    help: 'Latency of a router → peer (limiter, breaker, budget, cache) call, by peer and method',
    labels: ['peer', 'method'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
  } satisfies HistogramSpec,
  peerFallbacks: {
    name: 'switchyard_router_peer_fallbacks_total',
    help: 'Calls that used the local fallback because a peer (or NATS) was unreachable or slow, by peer and reason',
    labels: ['peer', 'reason'],
  } satisfies MetricSpec,
  shed: {
    name: 'switchyard_router_shed_total',
    help: 'Calls refused by this replica\'s in-flight bound (load shedding: RESOURCE_EXHAUSTED / HTTP 429, ROUTER_OVERLOADED) before any work; they are not in switchyard_router_calls_total',
    labels: [],
  } satisfies MetricSpec,
  inFlightCalls: {
    name: 'switchyard_router_in_flight_calls',
    help: 'Calls (Complete and StreamComplete, gRPC and HTTP) running in this replica now',
    labels: [],
  } satisfies MetricSpec,
  turnWait: {
    name: 'switchyard_router_turn_wait_seconds',
    help: 'How long admitted calls waited for their turn of the CPU (ROUTER_SLICE_MS) once their provider answered, and on admission while other calls were waiting: near 0 while the replica keeps up, up to about ROUTER_SHED_LAG_MS when the adaptive bound is holding it there',
    labels: [],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
  } satisfies HistogramSpec,
  inFlightLimit: {
    name: 'switchyard_router_in_flight_limit',
    help: 'The bound on calls in flight now: ROUTER_MAX_IN_FLIGHT, or the adaptive bound of ROUTER_SHED_LAG_MS between ROUTER_MIN_IN_FLIGHT and it (0 = no bound)',
    labels: [],
  } satisfies MetricSpec,
  dependencyFallbackActive: {
    name: 'switchyard_router_dependency_fallback_active',
    help: '1 while this replica runs on its local fallback for a dependency (limiter, breaker, budget, cache, nats)',
    labels: ['peer'],
  } satisfies MetricSpec,
} as const;

/** gRPC statuses that count as failed calls in the error-rate alerts (policy refusals and caller errors do not). */
export const ERROR_STATUSES = ['UNAVAILABLE', 'DEADLINE_EXCEEDED', 'INTERNAL', 'UNKNOWN'] as const;
