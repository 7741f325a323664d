import { BudgetService } from '@switchyard/contracts';
import type { SwitchyardConfig } from '@switchyard/config';
import { type AccessTable, type ServiceImplementation, notFound, unavailable } from '@switchyard/grpc';
import type { EventBus } from '@switchyard/nats';
import { type BudgetMetrics, createBudgetMetrics } from './budget-metrics';
import { createBudgetAlerts } from './budget-alerts';
import { capMessage } from './budget-proto';
import { type BudgetLog, type BudgetStats, type StoreFailurePolicy, BudgetStoreUnreachable, ReservationNotFound, createBudget } from '../domain/budget';
import type { BudgetStore } from '../domain/budget-store';

export { MAX_AMOUNT_MICROS, MAX_TTL_MS } from '../domain/budget-input';
export type { BudgetStats, StoreFailurePolicy } from '../domain/budget';
export type BudgetHandlerLogger = BudgetLog;

export interface BudgetHandlerOptions {
  config: SwitchyardConfig;
  store: BudgetStore;
  bus: EventBus;
  logger: BudgetHandlerLogger;
  /** Lifetime of a reservation whose request says 0. */
  defaultTtlMs: number;
  /** What Reserve answers for a tenant with hard caps when the store is unreachable. */
  onStoreFailure: StoreFailurePolicy;
  /** Default: OTel counters on the global meter (no-ops until telemetry starts). */
  metrics?: BudgetMetrics;
}

/** The domain's errors as gRPC statuses: unknown reservation → NOT_FOUND, unreachable store → UNAVAILABLE (input errors are FieldErrors, which the one mapping turns into INVALID_ARGUMENT). */
async function mapped<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ReservationNotFound) throw notFound('reservation', err.reservationId);
    if (err instanceof BudgetStoreUnreachable) throw unavailable(err.message, err.retryAfterMs, { cause: err.cause });
    throw err;
  }
}

/** Who may call what (checked by createGrpcServer): GetBudget is a read-only view; the rest are the router's. */
export const BUDGET_ACCESS: AccessTable<(typeof BudgetService)['method']> = { getBudget: 'either' };

/**
 * BudgetService over the domain's budget (domain/budget.ts): maps proto ⇄
 * domain and the domain's errors to gRPC statuses.
 */
export function createBudgetHandlers(options: BudgetHandlerOptions): {
  implementation: ServiceImplementation<(typeof BudgetService)['method']>;
  stats: BudgetStats;
} {
  const budget = createBudget({
    ...options,
    alerts: createBudgetAlerts(options.bus),
    counters: options.metrics ?? createBudgetMetrics(),
  });

  const implementation: ServiceImplementation<(typeof BudgetService)['method']> = {
    async reserve(req) {
      const r = await mapped(() => budget.reserve(req));
      if (r.granted) return { granted: true, reservationId: r.reservationId, ...(r.failOpen ? { failOpen: true } : {}) };
      if ('failClosed' in r) return { granted: false, failClosed: true, deniedCap: capMessage(req.tenant, r.cap), limitMicros: BigInt(r.cap.limitMicros) };
      return {
        granted: false,
        deniedCap: capMessage(req.tenant, r.cap),
        limitMicros: BigInt(r.cap.limitMicros),
        spentMicros: BigInt(r.spentMicros),
        reservedMicros: BigInt(r.reservedMicros),
        resetsAtUnixMs: BigInt(r.periodEndMs),
      };
    },

    async commit(req) {
      const r = await mapped(() => budget.commit(req));
      return { found: r.found, returnedMicros: BigInt(r.returnedMicros) };
    },

    async release(req) {
      return mapped(() => budget.release(req));
    },

    async getBudget(req) {
      const usage = await mapped(() => budget.usage(req));
      return {
        caps: usage.map((u) => ({
          cap: capMessage(req.tenant, u.cap),
          limitMicros: BigInt(u.cap.limitMicros),
          spentMicros: BigInt(u.spentMicros),
          reservedMicros: BigInt(u.reservedMicros),
          remainingMicros: BigInt(Math.max(0, u.cap.limitMicros - u.spentMicros - u.reservedMicros)),
          periodStartUnixMs: BigInt(u.periodStartMs),
          resetsAtUnixMs: BigInt(u.periodEndMs),
        })),
      };
    },
  };
  return { implementation, stats: budget.stats };
}
