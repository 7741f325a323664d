export { start, type BreakerDeps, type BreakerService } from './start';
export { loadConfig, envSpec, type BreakerConfig } from './config';
export { createMemoryHealthStore } from './adapters/memory-health-store';
export { createRedisHealthStore, breakerKeys, type RedisHealthStoreOptions } from './adapters/redis-health-store';
export { OUTCOME_CONSUMER } from './adapters/outcome-consumer';
export type { HealthStore, ProbeResult, StoreStep } from './domain/health-store';
export { type BreakerPolicy, DEFAULT_POLICY } from './domain/circuit';
