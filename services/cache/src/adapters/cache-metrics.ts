import type { Meter } from '@opentelemetry/api';
import { getMeter } from '@switchyard/telemetry';
import type { LookupStatusName } from '../domain/cache-store';

/** Prometheus-facing counters of the cache (hit ratio = hit / all lookups). */
export interface CacheMetrics {
  lookup(status: LookupStatusName, coalesced: boolean): void;
  /** A call refused because the store was unreachable (the router bypassed the cache). */
  bypass(op: string): void;
}

export function createCacheMetrics(meter: Meter = getMeter('switchyard-cache')): CacheMetrics {
  const lookups = meter.createCounter('switchyard_cache_lookups', { description: 'cache lookups by result status' });
  const bypasses = meter.createCounter('switchyard_cache_bypass', { description: 'calls answered UNAVAILABLE because Redis was unreachable' });
  return {
    lookup: (status, coalesced) => lookups.add(1, { status, coalesced }),
    bypass: (op) => bypasses.add(1, { op }),
  };
}
