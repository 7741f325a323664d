/**
 * Budget service: spend caps per tenant over hour/day/month with reservations
 * that expire, served over gRPC. The memory store is exported for the embedded demo.
 */
export { start, type BudgetDeps, type BudgetLogger, type RunningBudgetService } from './start';
export { loadConfig, envSpec, type BudgetConfig, type BudgetEnv } from './config';
export { createMemoryBudgetStore } from './adapters/memory-budget-store';
export { createRedisBudgetStore, budgetPrefix, type RedisBudgetStoreOptions } from './adapters/redis-budget-store';
export { type BudgetStats, type StoreFailurePolicy, MAX_AMOUNT_MICROS, MAX_TTL_MS } from './adapters/grpc-budget-handlers';
export type { BudgetStore, CapUsage, CommitResult, ReleaseResult, ReserveInput, ReserveResult, ThresholdCrossing } from './domain/budget-store';
export { type CapSpec, tenantCaps, usdToMicros } from './domain/caps';
export { periodWindow, type PeriodWindow } from './domain/period';
