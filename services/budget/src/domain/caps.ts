import type { TenantConfig } from '@switchyard/config';

export type BudgetPeriodName = 'hour' | 'day' | 'month';
export type CapScopeName = 'tenant' | 'api_key' | 'feature';

/** One configured spend cap, resolved for a tenant, with money in integer micro-USD. */
export interface CapSpec {
  /**
   * Stable id of the cap inside its tenant; part of the Redis key
   * (`sy:bud:{tenant}:<id>:<label>`). Tenant caps use the bare period
   * (`day`), so a tenant's day cap lives at `sy:bud:{acme}:day:2026-11-21`.
   */
  id: string;
  scope: CapScopeName;
  /** Tenant id, API key id or feature name, per scope. */
  subject: string;
  period: BudgetPeriodName;
  limitMicros: number;
  hard: boolean;
}

export const MICROS_PER_USD = 1_000_000;

/** Config amounts are decimal USD; everything downstream is integer micro-USD (no float drift). */
export function usdToMicros(usd: number): number {
  return Math.round(usd * MICROS_PER_USD);
}

/**
 * The caps that apply to a tenant. The config only has tenant-wide caps today;
 * API-key and feature caps (CapScope in the contract) slot in here.
 */
export function tenantCaps(tenantId: string, tenant: Pick<TenantConfig, 'budgets'>): CapSpec[] {
  const seen = new Set<string>();
  return tenant.budgets.map((b, i) => {
    // Two caps of the same period would share a key; suffix the later ones.
    let id: string = b.period;
    if (seen.has(id)) id = `${b.period}.${i}`;
    seen.add(id);
    return { id, scope: 'tenant', subject: tenantId, period: b.period, limitMicros: usdToMicros(b.limitUsd), hard: b.hard };
  });
}

/** Spend thresholds (percent of a cap) that raise a BudgetEvent once per period. */
export const ALERT_THRESHOLDS = [50, 80, 100] as const;

/** Alert thresholds `spent` has reached on a cap of `limit` (integer math, no float rounding). */
export function thresholdsReached(spent: number, limit: number): number[] {
  return ALERT_THRESHOLDS.filter((t) => spent * 100 >= t * limit);
}
