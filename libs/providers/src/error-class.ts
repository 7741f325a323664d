import { ERROR_CLASSES as ALL_CLASSES, ERROR_CLASS_TABLE, type ErrorClass, type ErrorClassTraits } from '@switchyard/util';
import type { TimeoutKind } from './errors';
import type { RateLimitSnapshot } from './types';

/** Every provider failure maps to exactly one of these (the table lives in @switchyard/util). */
export type { ErrorClass };

export const ERROR_CLASSES: readonly ErrorClass[] = ALL_CLASSES;

export interface Classification {
  errorClass: ErrorClass;
  /** May the same deployment be tried again (after backoff / Retry-After)? `x-should-retry` overrides the class default. */
  retryable: boolean;
  /** Does this outcome count as a breaker failure? Only provider-health failures do; client errors never trip a breaker. */
  countsTowardBreaker: boolean;
  /** May the router try another candidate deployment? (CONTEXT_LENGTH: only one with a larger window.) */
  fallbackAllowed: boolean;
  retryAfterMs?: number;
  upstreamRequestId?: string;
  /** The provider's id of the answer when one had begun (a stream broken after its first event, a filtered 200): `gen_ai.response.id`. */
  responseId?: string;
  status?: number;
  /** Provider error code/type when sent (e.g. `insufficient_quota`, `overloaded_error`); for logs and metrics. */
  providerCode?: string;
  /** STREAM_INTERRUPTED only: what interrupted the stream (NETWORK, TIMEOUT, OVERLOADED, ...). */
  interruptedBy?: ErrorClass;
  /** Which of our own timers fired, for a TIMEOUT (or a stream it interrupted): `total` on a stream is the caller's deadline. */
  timeoutKind?: TimeoutKind;
  /** Rate-limit headers on the failed response (a 429 tells the limiter when the key cools down). */
  rateLimit?: RateLimitSnapshot;
  message: string;
}

/** The traits of a class that a Classification carries. */
export type ClassPolicy = Pick<ErrorClassTraits, 'retryable' | 'countsTowardBreaker' | 'fallbackAllowed'>;

/**
 * Default action per class, read from the one error-class table. Retry and
 * fallback decisions stay with the router; this only says what is safe. Only
 * the three traits a Classification carries, so spreading a policy into a
 * Classification adds nothing else.
 */
export const CLASS_POLICY: Readonly<Record<ErrorClass, ClassPolicy>> = Object.fromEntries(
  ALL_CLASSES.map((c) => {
    const { retryable, countsTowardBreaker, fallbackAllowed } = ERROR_CLASS_TABLE[c];
    return [c, { retryable, countsTowardBreaker, fallbackAllowed }];
  }),
) as Record<ErrorClass, ClassPolicy>;
