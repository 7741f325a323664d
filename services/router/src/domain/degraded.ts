/**
 * Why an answer is degraded: one of our own dependencies fell back (DESIGN
 * "When our own dependencies fail") or the answer is not a fresh upstream one.
 * Typed so the answer step collects reasons instead of matching note strings;
 * the text is what callers read in `degraded_reason`.
 */
export type DegradedReason =
  | { kind: 'budget-store-fail-open' }
  | { kind: 'budget-unreachable' }
  | { kind: 'cache-unavailable' }
  | { kind: 'limiter-unavailable' }
  | { kind: 'limiter-local-fallback' }
  | { kind: 'idempotency-unavailable'; detail: string }
  | { kind: 'stale-cache' }
  | { kind: 'fallback-answer' };

export function degradedText(r: DegradedReason): string {
  switch (r.kind) {
    case 'budget-store-fail-open':
      return 'budget store unavailable: spend not recorded centrally';
    case 'budget-unreachable':
      return 'budget service unavailable: spend not recorded';
    case 'cache-unavailable':
      return 'cache unavailable: bypassed';
    case 'limiter-unavailable':
      // Admitted from this router's share of the limits (adapters/limiter-fallback.ts).
      return 'limiter unavailable: local share';
    case 'limiter-local-fallback':
      return 'limiter local fallback';
    case 'idempotency-unavailable':
      return `idempotency not guaranteed: ${r.detail}`;
    case 'stale-cache':
      return 'stale cache: all candidates failed';
    case 'fallback-answer':
      return "static fallback answer: every candidate failed and no stale answer was cached";
  }
}

/** The `degraded_reason` of an answer: each distinct reason once, in the order met. */
export function degradedReasonText(reasons: readonly (DegradedReason | undefined)[]): string {
  return [...new Set(reasons.filter((r): r is DegradedReason => r !== undefined).map(degradedText))].join('; ');
}
