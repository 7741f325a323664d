import type { ErrorClass } from '@switchyard/providers';
import { ERROR_CLASS_TABLE } from '@switchyard/util';
import type { Rng } from './candidates';
import { retryDelayMs, type RetrySettings } from './retry-policy';

/** What the attempt loop does after a failed attempt. */
export type NextStep =
  /** Try the same deployment again after `delayMs`. */
  | { kind: 'retry'; delayMs: number }
  /** Move on to the next candidate now. `minContextWindow`: only candidates with a strictly larger window qualify. */
  | { kind: 'fallback'; minContextWindow?: number }
  /** Stop: the failure is the answer. */
  | { kind: 'stop'; reason: string };

/** Side effects the class asks for, independent of the next step. */
export interface ClassEffects {
  /** Feed the failure to the limiter (cool the key down / mark the deployment unavailable). */
  observeLimiter: boolean;
}

export interface FailureFacts {
  errorClass: ErrorClass;
  /** The adapter's verdict (x-should-retry overrides the class default). */
  retryable: boolean;
  retryAfterMs?: number;
  /** Attempts already made on this deployment, this one included. */
  attemptsOnDeployment: number;
  /** More candidates remain after this one (before any context-window filter). */
  hasMoreCandidates: boolean;
  /** Time left before the caller's deadline. */
  remainingMs: number;
  /** Observed latency of an attempt on this deployment (p50 from the health replica or a local EWMA); 0 when unknown. */
  expectedAttemptMs?: number;
  /** Context window of the deployment that failed (CONTEXT_LENGTH fallback). */
  contextWindow: number;
  fallbackOnContentFilter: boolean;
}

/** Failures that say the deployment is sick right now: another attempt adds load, so it is paid from the retry budget. */
export function isTransient(errorClass: ErrorClass): boolean {
  return ERROR_CLASS_TABLE[errorClass].transient;
}

/** A quota class (rate limited, quota exhausted) is news for the limiter. */
export function classEffects(errorClass: ErrorClass): ClassEffects {
  return { observeLimiter: ERROR_CLASS_TABLE[errorClass].quota };
}

/**
 * The outcome → action table of DESIGN.md "Error classes", as one pure function.
 * A retry is only planned when its wait fits in the remaining deadline (with
 * room left for the attempt itself), so the loop never sleeps past the deadline.
 */
export function decideNextStep(f: FailureFacts, retry: RetrySettings, rng: Rng): NextStep {
  const fallback = (): NextStep => (f.hasMoreCandidates ? { kind: 'fallback' } : { kind: 'stop', reason: 'no more candidates' });
  const retrySame = (): NextStep | undefined => {
    if (f.attemptsOnDeployment >= retry.maxAttempts) return undefined;
    const delayMs = retryDelayMs(f.attemptsOnDeployment, f.retryAfterMs, retry, rng);
    // The wait must leave time for another attempt: the deployment's observed
    // latency when known, else half the remaining time is the bound.
    const expected = f.expectedAttemptMs ?? 0;
    if (expected > 0 ? delayMs + expected > f.remainingMs : delayMs >= f.remainingMs / 2) return undefined;
    return { kind: 'retry', delayMs };
  };

  switch (f.errorClass) {
    case 'OVERLOADED':
    case 'SERVER_ERROR':
    case 'TIMEOUT':
    case 'NETWORK':
      return (f.retryable ? retrySame() : undefined) ?? fallback();
    case 'RATE_LIMITED':
      // Another deployment now beats waiting out this one's Retry-After.
      if (f.hasMoreCandidates) return { kind: 'fallback' };
      return (f.retryable ? retrySame() : undefined) ?? { kind: 'stop', reason: 'rate limited and the wait does not fit the deadline' };
    case 'QUOTA_EXHAUSTED':
    case 'AUTH':
      return fallback();
    case 'CONTEXT_LENGTH':
      return f.hasMoreCandidates ? { kind: 'fallback', minContextWindow: f.contextWindow + 1 } : { kind: 'stop', reason: 'no larger context window' };
    case 'CONTENT_FILTER':
      return f.fallbackOnContentFilter ? fallback() : { kind: 'stop', reason: 'content filtered (route does not fall back on content filter)' };
    case 'INVALID_REQUEST':
      return { kind: 'stop', reason: 'the provider rejected the request' };
    case 'STREAM_INTERRUPTED':
      return { kind: 'stop', reason: 'stream interrupted after output was sent' };
  }
}
