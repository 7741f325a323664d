import type { Meter } from '@opentelemetry/api';
import { getMeter } from '@switchyard/telemetry';

export type ReserveOutcome = 'granted' | 'denied' | 'fail_closed' | 'fail_open';

/** Prometheus-facing counters of the budget service (tenant ids are config-bounded labels). */
export interface BudgetMetrics {
  reserve(tenant: string, outcome: ReserveOutcome): void;
  /** Committed actual cost, once per reservation. */
  spend(tenant: string, micros: number): void;
  alert(tenant: string, period: string, threshold: number): void;
  storeFailure(op: string): void;
}

export function createBudgetMetrics(meter: Meter = getMeter('switchyard-budget')): BudgetMetrics {
  const reserves = meter.createCounter('switchyard_budget_reservations', { description: 'Reserve decisions by outcome' });
  const spent = meter.createCounter('switchyard_budget_spend_micros', { description: 'committed spend in micro-USD', unit: 'uUSD' });
  const alerts = meter.createCounter('switchyard_budget_alerts', { description: 'budget thresholds crossed' });
  const failures = meter.createCounter('switchyard_budget_store_failures', { description: 'calls that found Redis unreachable' });
  return {
    reserve: (tenant, outcome) => reserves.add(1, { tenant, outcome }),
    spend: (tenant, micros) => spent.add(micros, { tenant }),
    alert: (tenant, period, threshold) => alerts.add(1, { tenant, period, threshold }),
    storeFailure: (op) => failures.add(1, { op }),
  };
}
