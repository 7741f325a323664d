import type { SwitchyardConfig } from '@switchyard/config';
import { counter, gauge, histogram, metricsRegistry, type Registry } from '@switchyard/telemetry';
import { ERROR_CLASSES } from '@switchyard/util';
import { routerMetrics as M } from '../metrics-catalogue';

/** The peers whose calls are timed and whose fallbacks are counted (plus `nats`, for the event bus). */
export type PeerName = 'limiter' | 'breaker' | 'budget' | 'cache';

/** OTel GenAI `gen_ai.provider.name` per provider kind of the config. */
export const GEN_AI_PROVIDER: Record<string, string> = { openai: 'openai', azure: 'azure.ai.openai', anthropic: 'anthropic', 'openai-compatible': 'openai' };

/** Default of METRICS_MAX_FEATURES: distinct caller-supplied feature names kept as label values per process; later ones are counted as `other`. */
export const MAX_FEATURE_LABELS = 50;

/** Fallback reasons besides the error classes: a candidate skipped for its quota, or as unavailable (circuit open, cooldown). */
const SKIP_REASONS = ['quota', 'unavailable', 'unknown'] as const;

export interface CallFigures {
  route: string;
  tenant: string;
  grpcStatus: string;
  cacheStatus: string;
  degraded: boolean;
  seconds: number;
}

export interface AttemptFigures {
  deployment: string;
  provider: string;
  model: string;
  /** Undefined when the attempt succeeded. */
  errorClass?: string;
  seconds: number;
  tenant: string;
  feature: string;
  inputTokens?: number;
  outputTokens?: number;
  costUsd?: number;
  timeToFirstTokenSeconds?: number;
}

/** What the router records; every label value passes through the config-bounded filters below. */
export interface RouterMetrics {
  call(f: CallFigures): void;
  attempt(f: AttemptFigures): void;
  retry(deployment: string): void;
  fallback(reason: string): void;
  retryBudgetExhausted(): void;
  coalesced(route: string): void;
  idempotentReplay(route: string): void;
  cacheSaved(tenant: string, usd: number): void;
  peerCall(peer: PeerName, method: string, seconds: number, failedStatus?: string): void;
  /** Reads, at scrape time, whether NATS (shared health) is unreachable from this replica. */
  watchNats(unreachable: () => boolean): void;
  /** A call refused by the in-flight bound (load shedding). */
  shed(): void;
  /** Reads, at scrape time, the calls in flight and their bound (the load shedder's gate). */
  watchInFlight(gate: { readonly inFlight: number; readonly limit: number }): void;
  /** An admitted call waited this long for its turn of the CPU (handlers/run-queue.ts). */
  turnWait(seconds: number): void;
}

/**
 * Router instruments of the catalogue (metrics-catalogue.ts) on the process
 * registry. Label values outside the config (an unknown route or tenant from a
 * bad call) become `unknown`, so a caller cannot grow the series count.
 */
export function createRouterMetrics(
  gateway: Pick<SwitchyardConfig, 'routes' | 'tenants' | 'deployments'>,
  registry: Registry = metricsRegistry(),
  options: { maxFeatures?: number } = {},
): RouterMetrics {
  const maxFeatures = options.maxFeatures ?? MAX_FEATURE_LABELS;
  const calls = counter(registry, M.calls);
  const callDuration = histogram(registry, M.callDuration);
  const attempts = counter(registry, M.attempts);
  const attemptDuration = histogram(registry, M.attemptDuration);
  const ttft = histogram(registry, M.timeToFirstToken);
  const tokenUsage = histogram(registry, M.tokenUsage);
  const operationDuration = histogram(registry, M.operationDuration);
  const tokens = counter(registry, M.tokens);
  const cost = counter(registry, M.cost);
  const saved = counter(registry, M.cacheSavedCost);
  const retries = counter(registry, M.retries);
  const fallbacks = counter(registry, M.fallbacks);
  const budgetExhausted = counter(registry, M.retryBudgetExhausted);
  const coalesced = counter(registry, M.coalesced);
  const replays = counter(registry, M.idempotentReplays);
  const peerDuration = histogram(registry, M.peerDuration);
  const turnWait = histogram(registry, M.turnWait);
  const peerFallbacks = counter(registry, M.peerFallbacks);
  const failing: Record<PeerName, boolean> = { limiter: false, breaker: false, budget: false, cache: false };
  let natsUnreachable = () => false;
  gauge(registry, M.dependencyFallbackActive, (g) => {
    for (const [peer, down] of Object.entries(failing)) g.set({ peer }, down ? 1 : 0);
    g.set({ peer: 'nats' }, natsUnreachable() ? 1 : 0);
  });
  const shed = counter(registry, M.shed);
  let inFlight: { readonly inFlight: number; readonly limit: number } = { inFlight: 0, limit: 0 };
  gauge(registry, M.inFlightCalls, (g) => g.set(inFlight.inFlight));
  gauge(registry, M.inFlightLimit, (g) => g.set(inFlight.limit));
  /*
   * Zero series for every label value the config (or a closed set) already
   * names, so rate() and the alerts read 0 rather than "no data" before the
   * first event. Bounded: routes, deployments, tenants, peers and reasons
   * only; nothing keyed by a caller-supplied value.
   */
  for (const peer of Object.keys(failing)) peerFallbacks.inc({ peer, reason: 'UNAVAILABLE' }, 0);
  budgetExhausted.inc(0);
  shed.inc(0);
  for (const r of Object.keys(gateway.routes)) {
    coalesced.inc({ route: r }, 0);
    replays.inc({ route: r }, 0);
  }
  for (const [d, spec] of Object.entries(gateway.deployments)) {
    retries.inc({ deployment: d }, 0);
    attempts.inc({ deployment: d, provider: spec.provider, error_class: 'none' }, 0);
  }
  for (const t of Object.keys(gateway.tenants)) saved.inc({ tenant: t }, 0);
  for (const reason of [...ERROR_CLASSES, ...SKIP_REASONS]) fallbacks.inc({ reason }, 0);

  const route = (name: string) => (Object.hasOwn(gateway.routes, name) ? name : 'unknown');
  const tenant = (name: string) => (Object.hasOwn(gateway.tenants, name) ? name : 'unknown');
  const deployment = (name: string) => (Object.hasOwn(gateway.deployments, name) ? name : 'unknown');
  const features = new Set<string>();
  const feature = (name: string) => {
    if (!name) return '';
    if (features.has(name)) return name;
    if (features.size >= maxFeatures) return 'other';
    features.add(name);
    return name;
  };

  return {
    call: (f) => {
      calls.inc({ route: route(f.route), tenant: tenant(f.tenant), grpc_status: f.grpcStatus, cache_status: f.cacheStatus, degraded: String(f.degraded) });
      callDuration.observe({ route: route(f.route) }, f.seconds);
    },
    attempt: (f) => {
      const d = deployment(f.deployment);
      const providerName = GEN_AI_PROVIDER[f.provider] ?? f.provider;
      attempts.inc({ deployment: d, provider: f.provider, error_class: f.errorClass ?? 'none' });
      attemptDuration.observe({ deployment: d }, f.seconds);
      operationDuration.observe({ gen_ai_provider_name: providerName, gen_ai_request_model: f.model, error_type: f.errorClass ?? '' }, f.seconds);
      if (f.timeToFirstTokenSeconds !== undefined) ttft.observe({ deployment: d }, f.timeToFirstTokenSeconds);
      const labels = { tenant: tenant(f.tenant), feature: feature(f.feature), deployment: d };
      if (f.inputTokens !== undefined) {
        tokenUsage.observe({ gen_ai_token_type: 'input', gen_ai_provider_name: providerName, gen_ai_request_model: f.model }, f.inputTokens);
        tokens.inc({ ...labels, type: 'input' }, f.inputTokens);
      }
      if (f.outputTokens !== undefined) {
        tokenUsage.observe({ gen_ai_token_type: 'output', gen_ai_provider_name: providerName, gen_ai_request_model: f.model }, f.outputTokens);
        tokens.inc({ ...labels, type: 'output' }, f.outputTokens);
      }
      if (f.costUsd !== undefined) cost.inc(labels, f.costUsd);
    },
    retry: (d) => retries.inc({ deployment: deployment(d) }),
    fallback: (reason) => fallbacks.inc({ reason }),
    retryBudgetExhausted: () => budgetExhausted.inc(),
    coalesced: (r) => coalesced.inc({ route: route(r) }),
    idempotentReplay: (r) => replays.inc({ route: route(r) }),
    cacheSaved: (t, usd) => saved.inc({ tenant: tenant(t) }, usd),
    peerCall: (peer, method, seconds, failedStatus) => {
      peerDuration.observe({ peer, method }, seconds);
      failing[peer] = failedStatus !== undefined;
      if (failedStatus !== undefined) peerFallbacks.inc({ peer, reason: failedStatus });
    },
    watchNats: (unreachable) => {
      natsUnreachable = unreachable;
    },
    shed: () => shed.inc(),
    watchInFlight: (gate) => {
      inFlight = gate;
    },
    turnWait: (seconds) => turnWait.observe(seconds),
  };
}
