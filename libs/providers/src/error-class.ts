import type { RateLimitSnapshot } from './types';

/** Every provider failure maps to exactly one of these (DESIGN.md "Error classes"). */
export type ErrorClass =
  | 'RATE_LIMITED'
  | 'QUOTA_EXHAUSTED'
  | 'OVERLOADED'
  | 'SERVER_ERROR'
  | 'TIMEOUT'
  | 'NETWORK'
  | 'CONTEXT_LENGTH'
  | 'CONTENT_FILTER'
  | 'AUTH'
  | 'INVALID_REQUEST'
  | 'STREAM_INTERRUPTED';

export const ERROR_CLASSES: readonly ErrorClass[] = [
  'RATE_LIMITED',
  'QUOTA_EXHAUSTED',
  'OVERLOADED',
  'SERVER_ERROR',
  'TIMEOUT',
  'NETWORK',
  'CONTEXT_LENGTH',
  'CONTENT_FILTER',
  'AUTH',
  'INVALID_REQUEST',
  'STREAM_INTERRUPTED',
];

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
  status?: number;
  /** Provider error code/type when sent (e.g. `insufficient_quota`, `overloaded_error`); for logs and metrics. */
  providerCode?: string;
  /** STREAM_INTERRUPTED only: what interrupted the stream (NETWORK, TIMEOUT, OVERLOADED, ...). */
  interruptedBy?: ErrorClass;
  /** Rate-limit headers on the failed response (a 429 tells the limiter when the key cools down). */
  rateLimit?: RateLimitSnapshot;
  message: string;
}

export interface ClassPolicy {
  retryable: boolean;
  countsTowardBreaker: boolean;
  fallbackAllowed: boolean;
}

/**
 * Default action per class. Retry/fallback decisions stay with the router;
 * this table only says what is safe. STREAM_INTERRUPTED is neither retryable
 * nor fallback-able because text has already reached the caller: replaying it
 * would duplicate output. Its breaker flag is taken from what interrupted it
 * (a mid-stream socket reset is a NETWORK failure of that deployment).
 */
export const CLASS_POLICY: Readonly<Record<ErrorClass, ClassPolicy>> = {
  RATE_LIMITED: { retryable: true, countsTowardBreaker: false, fallbackAllowed: true },
  QUOTA_EXHAUSTED: { retryable: false, countsTowardBreaker: false, fallbackAllowed: true },
  OVERLOADED: { retryable: true, countsTowardBreaker: true, fallbackAllowed: true },
  SERVER_ERROR: { retryable: true, countsTowardBreaker: true, fallbackAllowed: true },
  TIMEOUT: { retryable: true, countsTowardBreaker: true, fallbackAllowed: true },
  NETWORK: { retryable: true, countsTowardBreaker: true, fallbackAllowed: true },
  CONTEXT_LENGTH: { retryable: false, countsTowardBreaker: false, fallbackAllowed: true },
  CONTENT_FILTER: { retryable: false, countsTowardBreaker: false, fallbackAllowed: false },
  AUTH: { retryable: false, countsTowardBreaker: false, fallbackAllowed: true },
  INVALID_REQUEST: { retryable: false, countsTowardBreaker: false, fallbackAllowed: false },
  STREAM_INTERRUPTED: { retryable: false, countsTowardBreaker: false, fallbackAllowed: false },
};
