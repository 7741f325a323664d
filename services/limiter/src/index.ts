export { start, type LimiterDeps, type LimiterService } from './start';
export { loadConfig, envSpec, type LimiterConfig } from './config';
export { createMemoryQuotaStore } from './adapters/memory-quota-store';
export { createRedisQuotaStore, type RedisQuotaStoreOptions } from './adapters/redis-quota-store';
export type { QuotaStore, KeyLimits, LimitedKey, AcquireResult, KeyState } from './domain/quota-store';
export { DEFAULT_LIMITER_SETTINGS, type LimiterSettings } from './domain/limiter';
