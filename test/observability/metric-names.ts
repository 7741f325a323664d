import { breakerMetrics } from '../../services/breaker/src/metrics-catalogue';
import { budgetMetrics } from '../../services/budget/src/metrics-catalogue';
import { cacheMetrics } from '../../services/cache/src/metrics-catalogue';
import { jobsMetrics } from '../../services/jobs/src/metrics-catalogue';
import { limiterMetrics } from '../../services/limiter/src/metrics-catalogue';
import { routerMetrics } from '../../services/router/src/metrics-catalogue';

/** Every metric name the services' catalogues define, with the service that exports it. */
export const CATALOGUE: ReadonlyMap<string, { service: string; labels: readonly string[] }> = new Map(
  (
    [
      ['router', routerMetrics],
      ['limiter', limiterMetrics],
      ['breaker', breakerMetrics],
      ['budget', budgetMetrics],
      ['cache', cacheMetrics],
      ['jobs', jobsMetrics],
    ] as const
  ).flatMap(([service, catalogue]) => Object.values(catalogue).map((spec) => [spec.name, { service, labels: spec.labels }] as const)),
);

/** Metric names a PromQL expression reads (histogram series suffixes folded to their metric; recording rules and `up` excluded). */
export function metricsIn(expr: string): string[] {
  const names = expr.match(/\b(?:switchyard|gen_ai)_[a-z0-9_]+/g) ?? [];
  return [...new Set(names.map((n) => n.replace(/_(bucket|sum|count)$/, '')))];
}
