import { counter, metricsRegistry, type Registry } from '@switchyard/telemetry';
import type { LookupStatusName } from '../domain/cache-store';
import { cacheMetrics as M } from '../metrics-catalogue';

/** Prometheus-facing counters of the cache (hit ratio = hit + stale + coalesced over all lookups). */
export interface CacheMetrics {
  /** `bytes`: the size of the response served (hit, stale). */
  lookup(status: LookupStatusName, coalesced: boolean, bytes: number): void;
  store(outcome: 'stored' | 'too_large', bytes: number): void;
  /** A call refused because the store was unreachable (the router bypassed the cache). */
  bypass(op: string): void;
}

export function createCacheMetrics(registry: Registry = metricsRegistry()): CacheMetrics {
  const lookups = counter(registry, M.lookups);
  const stores = counter(registry, M.stores);
  const storedBytes = counter(registry, M.storedBytes);
  const servedBytes = counter(registry, M.servedBytes);
  const bypasses = counter(registry, M.bypass);
  // Zero series from the start, so ratios and alerts read 0 (not "no data") before the first event.
  for (const result of ['hit', 'stale', 'miss', 'leader', 'coalesced']) lookups.inc({ result }, 0);
  for (const op of ['lookup', 'store']) bypasses.inc({ op }, 0);
  return {
    lookup: (status, coalesced, bytes) => {
      lookups.inc({ result: coalesced ? 'coalesced' : status });
      if (bytes > 0) servedBytes.inc(bytes);
    },
    store: (outcome, bytes) => {
      stores.inc({ outcome });
      if (outcome === 'stored') storedBytes.inc(bytes);
    },
    bypass: (op) => bypasses.inc({ op }),
  };
}
