import type { Meter } from '@opentelemetry/api';
import { getMeter } from '@switchyard/telemetry';

/** Prometheus-facing instruments of the limiter (deployment ids are config-bounded labels). */
export interface LimiterMetrics {
  acquire(outcome: 'granted' | 'denied', localFallback: boolean): void;
  /** Report the current accounting mode; the gauge reads it on every collection. */
  setMode(mode: 'shared' | 'local'): void;
  modeChange(mode: 'shared' | 'local'): void;
}

export function createLimiterMetrics(meter: Meter = getMeter('switchyard-limiter')): LimiterMetrics {
  let local = 0;
  const acquires = meter.createCounter('switchyard_limiter_acquires', { description: 'Acquire decisions by outcome and by whether the local fallback decided' });
  const changes = meter.createCounter('switchyard_limiter_fallback_transitions', { description: 'switches between shared (Redis) and local fallback accounting' });
  meter
    .createObservableGauge('switchyard_limiter_local_fallback', { description: '1 while this replica limits from its local share because Redis is unreachable' })
    .addCallback((result) => result.observe(local));
  return {
    acquire: (outcome, localFallback) => acquires.add(1, { outcome, local_fallback: String(localFallback) }),
    setMode: (mode) => {
      local = mode === 'local' ? 1 : 0;
    },
    modeChange: (mode) => {
      local = mode === 'local' ? 1 : 0;
      changes.add(1, { to: mode });
    },
  };
}
