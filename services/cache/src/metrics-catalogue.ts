import type { MetricSpec } from '@switchyard/telemetry';

/*
 * Every metric the cache exports (alerts, dashboard and README are written
 * against this file). Cardinality: result ∈ hit, stale, miss, coalesced,
 * leader; outcome ∈ stored, too_large; op ∈ the five RPCs.
 */
export const cacheMetrics = {
  lookups: {
    name: 'switchyard_cache_lookups_total',
    help: 'Lookups by result: hit, stale (served past its ttl), miss, leader (miss that leads the single flight), coalesced (a waiter answered by the leader)',
    labels: ['result'],
  } satisfies MetricSpec,
  stores: {
    name: 'switchyard_cache_stores_total',
    help: 'Store calls by outcome (stored, too_large)',
    labels: ['outcome'],
  } satisfies MetricSpec,
  storedBytes: {
    name: 'switchyard_cache_stored_bytes_total',
    help: 'Bytes of responses written to the cache',
    labels: [],
  } satisfies MetricSpec,
  servedBytes: {
    name: 'switchyard_cache_served_bytes_total',
    help: 'Bytes of responses served from the cache (hit or stale)',
    labels: [],
  } satisfies MetricSpec,
  bypass: {
    name: 'switchyard_cache_bypass_total',
    help: 'Calls answered UNAVAILABLE because Redis was unreachable (the router bypassed the cache), by operation',
    labels: ['op'],
  } satisfies MetricSpec,
} as const;
