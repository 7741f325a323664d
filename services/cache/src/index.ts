/**
 * Cache service: exact-match responses under router-computed keys, isolated per
 * tenant, with stale-if-error and single-flight leases, served over gRPC. The
 * memory store is exported for the embedded demo.
 */
export { start, type CacheDeps, type CacheLogger, type RunningCacheService } from './start';
export { loadConfig, envSpec, type CacheConfig } from './config';
export { createMemoryCacheStore } from './adapters/memory-cache-store';
export { createRedisCacheStore, cacheTenantPrefix, type RedisCacheStoreOptions } from './adapters/redis-cache-store';
export { type CacheStats, MAX_KEY_BYTES, MAX_LEASE_TTL_MS, MAX_WAIT_MS } from './adapters/grpc-cache-handlers';
export type { CacheStore, CacheEntryInfo, InvalidateTarget, LookupInput, LookupResult, LookupStatusName, StoreInput } from './domain/cache-store';
