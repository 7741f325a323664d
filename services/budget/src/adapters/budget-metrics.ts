import { counter, gauge, metricsRegistry, type Registry } from '@switchyard/telemetry';
import { ALERT_THRESHOLDS, MICROS_PER_USD } from '../domain/caps';
import { budgetMetrics as M } from '../metrics-catalogue';

export type ReserveOutcome = 'granted' | 'denied' | 'fail_closed' | 'fail_open';

/** One cap's standing, as the store reports it. */
export interface CapStanding {
  tenant: string;
  cap: string;
  spentMicros: number;
  reservedMicros: number;
  limitMicros: number;
}

/** Prometheus-facing instruments of the budget service (tenant and cap ids come from the config). */
export interface BudgetMetrics {
  reserve(tenant: string, outcome: ReserveOutcome): void;
  /** A Reserve refused by `cap`. */
  denial(tenant: string, cap: string): void;
  /** Committed actual cost, once per reservation. */
  spend(tenant: string, micros: number): void;
  alert(tenant: string, cap: string, threshold: number): void;
  storeFailure(op: string): void;
  /** Spent, limit and remaining of every configured cap, read through `read` at scrape time. */
  watchCaps(read: () => Promise<CapStanding[]>): void;
}

/**
 * `caps`: the configured tenants' caps, whose denial and threshold counters
 * start at 0 (rate() and the budget alerts work from the first event; the
 * series count stays tenants × caps × 3 thresholds).
 */
export function createBudgetMetrics(registry: Registry = metricsRegistry(), caps: readonly { tenant: string; cap: string }[] = []): BudgetMetrics {
  const reserves = counter(registry, M.reservations);
  const denials = counter(registry, M.denials);
  const spent = counter(registry, M.spend);
  const alerts = counter(registry, M.alerts);
  const failures = counter(registry, M.storeFailures);
  for (const op of ['reserve', 'commit', 'release', 'usage']) failures.inc({ op }, 0);
  for (const { tenant, cap } of caps) {
    denials.inc({ tenant, cap }, 0);
    for (const threshold of ALERT_THRESHOLDS) alerts.inc({ tenant, cap, threshold: String(threshold) }, 0);
  }
  let read: () => Promise<CapStanding[]> = async () => [];
  // One read of the store per scrape feeds the three gauges.
  let standing: Promise<CapStanding[]> | undefined;
  const current = () => (standing ??= read().finally(() => setTimeout(() => (standing = undefined), 100).unref()));
  const usd = (micros: number) => micros / MICROS_PER_USD;
  gauge(registry, M.spent, async (g) => {
    g.reset();
    for (const c of await current()) g.set({ tenant: c.tenant, cap: c.cap }, usd(c.spentMicros));
  });
  gauge(registry, M.limit, async (g) => {
    g.reset();
    for (const c of await current()) g.set({ tenant: c.tenant, cap: c.cap }, usd(c.limitMicros));
  });
  gauge(registry, M.remaining, async (g) => {
    g.reset();
    for (const c of await current()) g.set({ tenant: c.tenant, cap: c.cap }, usd(Math.max(0, c.limitMicros - c.spentMicros - c.reservedMicros)));
  });
  return {
    reserve: (tenant, outcome) => reserves.inc({ tenant, outcome }),
    denial: (tenant, cap) => denials.inc({ tenant, cap }),
    spend: (tenant, micros) => spent.inc({ tenant }, usd(micros)),
    alert: (tenant, cap, threshold) => alerts.inc({ tenant, cap, threshold: String(threshold) }),
    storeFailure: (op) => failures.inc({ op }),
    watchCaps: (fn) => {
      read = fn;
    },
  };
}
