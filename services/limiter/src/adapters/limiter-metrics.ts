import { counter, gauge, histogram, metricsRegistry, type Registry } from '@switchyard/telemetry';
import { limiterMetrics as M } from '../metrics-catalogue';

/** One key's use of one limit: `used` against the provider's configured `limit` (before headroom). */
export interface Utilisation {
  scope: 'deployment' | 'tenant';
  key: string;
  kind: string;
  used: number;
  limit: number;
}

/** Prometheus-facing instruments of the limiter (deployment and tenant ids are config-bounded labels). */
export interface LimiterMetrics {
  acquire(outcome: 'granted' | 'denied', localFallback: boolean, waitedMs?: number): void;
  /** An upstream 429 (or 0 remaining) put `deployment` in cooldown. */
  cooldown(deployment: string): void;
  /** Report the current accounting mode; the gauge reads it on every collection. */
  setMode(mode: 'shared' | 'local'): void;
  modeChange(mode: 'shared' | 'local'): void;
  /** Utilisation of every configured key, read through `read` at scrape time. */
  watchUtilisation(read: () => Promise<Utilisation[]>): void;
}

/** `deployments`: the configured ones, whose cooldown counters start at 0 (rate() and alerts work from the first 429). */
export function createLimiterMetrics(registry: Registry = metricsRegistry(), configured: { deployments?: readonly string[] } = {}): LimiterMetrics {
  let local = 0;
  let read: () => Promise<Utilisation[]> = async () => [];
  const acquires = counter(registry, M.acquires);
  const wait = histogram(registry, M.wait);
  const cooldowns = counter(registry, M.cooldowns);
  const changes = counter(registry, M.fallbackTransitions);
  for (const outcome of ['granted', 'waited', 'denied']) acquires.inc({ outcome, local_fallback: 'false' }, 0);
  for (const deployment of configured.deployments ?? []) cooldowns.inc({ deployment }, 0);
  for (const to of ['local', 'shared']) changes.inc({ to }, 0);
  gauge(registry, M.localFallback, (g) => g.set(local));
  gauge(registry, M.utilisation, async (g) => {
    g.reset();
    for (const u of await read()) if (u.limit > 0) g.set({ scope: u.scope, key: u.key, kind: u.kind }, u.used / u.limit);
  });
  return {
    acquire: (outcome, localFallback, waitedMs = 0) => {
      // A grant that queued first is "waited": the limit was reached and the caller paid for it in latency.
      acquires.inc({ outcome: outcome === 'granted' && waitedMs > 0 ? 'waited' : outcome, local_fallback: String(localFallback) });
      wait.observe(waitedMs / 1000);
    },
    cooldown: (deployment) => cooldowns.inc({ deployment }),
    setMode: (mode) => {
      local = mode === 'local' ? 1 : 0;
    },
    modeChange: (mode) => {
      local = mode === 'local' ? 1 : 0;
      changes.inc({ to: mode });
    },
    watchUtilisation: (fn) => {
      read = fn;
    },
  };
}
