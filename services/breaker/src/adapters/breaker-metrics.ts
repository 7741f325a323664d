import { counter, gauge, histogram, metricsRegistry, type Registry } from '@switchyard/telemetry';
import { failureRate, outcomeKind, p95LatencyMs, type OutcomeErrorClass, type Transition } from '../domain/circuit';
import type { HealthSnapshot } from '../domain/health-tracker';
import { breakerMetrics as M, TRANSITION_REASONS } from '../metrics-catalogue';

type TransitionReason = (typeof TRANSITION_REASONS)[number];

/** A transition's free-text reason as one of a closed set of label values. */
export function transitionReason(t: Pick<Transition, 'from' | 'to' | 'reason' | 'forced'>): TransitionReason {
  if (t.forced) return 'operator';
  if (t.from === 'HALF_OPEN' && t.to === 'OPEN') return 'probe_failed';
  if (/consecutive failures/.test(t.reason)) return 'consecutive_failures';
  if (/^failure rate/.test(t.reason)) return 'failure_rate';
  if (/^slow-call rate/.test(t.reason)) return 'slow_calls';
  if (/open interval elapsed/.test(t.reason)) return 'open_elapsed';
  if (/probes? succeeded/.test(t.reason)) return 'probe_succeeded';
  return 'other';
}

const STATES = ['CLOSED', 'OPEN', 'HALF_OPEN'] as const;

export interface BreakerMetrics {
  outcome(deployment: string, errorClass: OutcomeErrorClass | undefined, latencyMs: number): void;
  transition(t: Pick<Transition, 'deployment' | 'from' | 'to' | 'reason' | 'forced'>): void;
  /** Circuit state, failure rate and p95 of every deployment, read through `list` at scrape time. */
  watchHealth(list: () => Promise<HealthSnapshot[]>): void;
  /** The store switched between Redis (shared) and this replica's memory (local). */
  modeChange(mode: 'shared' | 'local'): void;
}

/** Breaker instruments of the catalogue; deployments come from the store and the config (bounded). */
export function createBreakerMetrics(registry: Registry = metricsRegistry()): BreakerMetrics {
  const outcomes = counter(registry, M.outcomes);
  const outcomeDuration = histogram(registry, M.outcomeDuration);
  const transitions = counter(registry, M.transitions);
  const modeChanges = counter(registry, M.fallbackTransitions);
  for (const to of ['local', 'shared']) modeChanges.inc({ to }, 0);
  let local = 0;
  gauge(registry, M.localFallback, (g) => g.set(local));
  let list: () => Promise<HealthSnapshot[]> = async () => [];
  // One read of the store per scrape feeds all three gauges.
  let snapshot: Promise<HealthSnapshot[]> | undefined;
  const read = () => (snapshot ??= list().finally(() => setTimeout(() => (snapshot = undefined), 100).unref()));
  gauge(registry, M.circuitState, async (g) => {
    g.reset();
    for (const s of await read()) {
      for (const state of STATES) g.set({ deployment: s.record.deployment, provider: s.record.provider, state: state.toLowerCase() }, s.state === state ? 1 : 0);
    }
  });
  gauge(registry, M.failureRate, async (g) => {
    g.reset();
    for (const s of await read()) g.set({ deployment: s.record.deployment }, failureRate(s.record));
  });
  gauge(registry, M.latencyP95, async (g) => {
    g.reset();
    for (const s of await read()) g.set({ deployment: s.record.deployment }, p95LatencyMs(s.record) / 1000);
  });
  return {
    outcome: (deployment, errorClass, latencyMs) => {
      outcomes.inc({ deployment, result: outcomeKind(errorClass) });
      outcomeDuration.observe({ deployment }, latencyMs / 1000);
    },
    transition: (t) => transitions.inc({ deployment: t.deployment, from: t.from.toLowerCase(), to: t.to.toLowerCase(), reason: transitionReason(t) }),
    watchHealth: (fn) => {
      list = fn;
    },
    modeChange: (mode) => {
      local = mode === 'local' ? 1 : 0;
      modeChanges.inc({ to: mode });
    },
  };
}
