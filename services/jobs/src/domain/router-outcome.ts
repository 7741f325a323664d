import { status } from '@grpc/grpc-js';

/** What a router error means for a job. */
export type RouterErrorAction =
  /** Final: the job FAILS with this error. */
  | { kind: 'fail' }
  /** Not the job's fault, nothing was spent: back into its lane after `delayMs`. */
  | { kind: 'requeue'; delayMs: number; transient: boolean };

export interface RouterErrorFacts {
  code: number;
  /** RetryInfo from the error details, if any. */
  retryDelayMs?: number;
  /** ErrorInfo.reason from the error details, if any. */
  reason?: string;
}

/**
 * Decides between requeue and failure for a router error:
 * - RESOURCE_EXHAUSTED for quota (the limiter could not admit it in time):
 *   requeue after its retry-after; counted against nothing, it waits until
 *   its expiry. A budget that ran out (BUDGET_EXCEEDED) is final.
 * - ABORTED (a call with the job's idempotency key still in progress, e.g.
 *   the one a crashed worker started): requeue; the next try gets its answer.
 * - UNAVAILABLE from the router itself (it names why in ErrorInfo: every
 *   candidate down, the budget unreachable for a hard-capped tenant):
 *   requeue as a transient failure, at most `maxTransient` times.
 * - UNAVAILABLE with no reason: no router answered it (unreachable,
 *   restarting, or shutting down with the call still running): nothing of the
 *   job's was decided, so requeue without counting it, until its expiry. A
 *   router restart took longer than the transient budget (3 × 1 s) and failed
 *   every job running through it.
 * - everything else (invalid request, auth, content filter…): final.
 */
export function classifyRouterError(facts: RouterErrorFacts, transientSoFar: number, options: { retryDelayMs: number; maxTransient: number }): RouterErrorAction {
  const delay = facts.retryDelayMs !== undefined && facts.retryDelayMs > 0 ? facts.retryDelayMs : options.retryDelayMs;
  switch (facts.code) {
    case status.RESOURCE_EXHAUSTED:
      return facts.reason === 'BUDGET_EXCEEDED' ? { kind: 'fail' } : { kind: 'requeue', delayMs: delay, transient: false };
    case status.ABORTED:
      return { kind: 'requeue', delayMs: delay, transient: false };
    case status.UNAVAILABLE:
      if (!facts.reason) return { kind: 'requeue', delayMs: delay, transient: false };
      return transientSoFar + 1 < options.maxTransient ? { kind: 'requeue', delayMs: delay, transient: true } : { kind: 'fail' };
    default:
      return { kind: 'fail' };
  }
}
