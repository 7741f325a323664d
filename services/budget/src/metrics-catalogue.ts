import type { MetricSpec } from '@switchyard/telemetry';

/*
 * Every metric the budget service exports (alerts, dashboard and README are
 * written against this file). Cardinality: tenant ≤ tenants in config; cap ≤
 * the tenant's configured caps (id = period, e.g. day, month); outcome ∈
 * granted, denied, fail_closed, fail_open; threshold ∈ 50, 80, 100.
 */
export const budgetMetrics = {
  spent: {
    name: 'switchyard_budget_spent_usd',
    help: 'Committed spend in the current period per cap, read from the shared store at scrape time',
    labels: ['tenant', 'cap'],
  } satisfies MetricSpec,
  limit: {
    name: 'switchyard_budget_limit_usd',
    help: 'Configured limit of each cap',
    labels: ['tenant', 'cap'],
  } satisfies MetricSpec,
  remaining: {
    name: 'switchyard_budget_remaining_usd',
    help: 'limit − spent per cap (never below 0)',
    labels: ['tenant', 'cap'],
  } satisfies MetricSpec,
  reservations: {
    name: 'switchyard_budget_reservations_total',
    help: 'Reserve decisions by tenant and outcome',
    labels: ['tenant', 'outcome'],
  } satisfies MetricSpec,
  denials: {
    name: 'switchyard_budget_denials_total',
    help: 'Reserves refused, by tenant and the cap that refused them',
    labels: ['tenant', 'cap'],
  } satisfies MetricSpec,
  spend: {
    name: 'switchyard_budget_spend_usd_total',
    help: 'Committed actual cost in USD, by tenant',
    labels: ['tenant'],
  } satisfies MetricSpec,
  alerts: {
    name: 'switchyard_budget_alerts_total',
    help: 'Budget threshold events emitted (50, 80, 100 % of a cap), by tenant, cap and threshold',
    labels: ['tenant', 'cap', 'threshold'],
  } satisfies MetricSpec,
  storeFailures: {
    name: 'switchyard_budget_store_failures_total',
    help: 'Calls that found Redis unreachable, by operation',
    labels: ['op'],
  } satisfies MetricSpec,
} as const;
