/**
 * The one table of what each provider error class means (DESIGN.md "Error
 * classes"). The providers' classification, the breaker's failure rule (and
 * the copy of it in its Redis Lua script, generated from here), the router's
 * local breaker, its retry-budget rule and its quota handling all read it, so
 * a class changes meaning in one place.
 */

/** Every provider failure maps to exactly one of these. */
export const ERROR_CLASSES = [
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
] as const;

export type ErrorClass = (typeof ERROR_CLASSES)[number];

export interface ErrorClassTraits {
  /** May the same deployment be tried again (after backoff / Retry-After)? A provider's `x-should-retry` overrides it per response. */
  retryable: boolean;
  /** Does the outcome count as a breaker failure? Only provider-health failures do; client errors never trip a breaker. */
  countsTowardBreaker: boolean;
  /** The deployment is sick right now: another attempt adds load, so the router pays it from the retry budget. */
  transient: boolean;
  /** The deployment's quota or rate limit said no: the limiter is told, and a call failing only on these is RESOURCE_EXHAUSTED. */
  quota: boolean;
  /** May the router try another candidate deployment? (CONTEXT_LENGTH: only one with a larger window.) */
  fallbackAllowed: boolean;
}

/**
 * STREAM_INTERRUPTED is neither retryable nor fallback-able because text has
 * already reached the caller: replaying it would duplicate output. Its own
 * breaker flag is false; the providers take the flag of what interrupted it
 * (a mid-stream socket reset is a NETWORK failure of that deployment).
 */
export const ERROR_CLASS_TABLE: Readonly<Record<ErrorClass, Readonly<ErrorClassTraits>>> = {
  RATE_LIMITED: { retryable: true, countsTowardBreaker: false, transient: false, quota: true, fallbackAllowed: true },
  QUOTA_EXHAUSTED: { retryable: false, countsTowardBreaker: false, transient: false, quota: true, fallbackAllowed: true },
  OVERLOADED: { retryable: true, countsTowardBreaker: true, transient: true, quota: false, fallbackAllowed: true },
  SERVER_ERROR: { retryable: true, countsTowardBreaker: true, transient: true, quota: false, fallbackAllowed: true },
  TIMEOUT: { retryable: true, countsTowardBreaker: true, transient: true, quota: false, fallbackAllowed: true },
  NETWORK: { retryable: true, countsTowardBreaker: true, transient: true, quota: false, fallbackAllowed: true },
  CONTEXT_LENGTH: { retryable: false, countsTowardBreaker: false, transient: false, quota: false, fallbackAllowed: true },
  CONTENT_FILTER: { retryable: false, countsTowardBreaker: false, transient: false, quota: false, fallbackAllowed: false },
  AUTH: { retryable: false, countsTowardBreaker: false, transient: false, quota: false, fallbackAllowed: true },
  INVALID_REQUEST: { retryable: false, countsTowardBreaker: false, transient: false, quota: false, fallbackAllowed: false },
  STREAM_INTERRUPTED: { retryable: false, countsTowardBreaker: false, transient: false, quota: false, fallbackAllowed: false },
};

export function isErrorClass(name: string): name is ErrorClass {
  return Object.prototype.hasOwnProperty.call(ERROR_CLASS_TABLE, name);
}

/** The traits of a class given by name (a proto enum name, a stored string); undefined for a name that is no class. */
export function errorClassTraits(name: string): Readonly<ErrorClassTraits> | undefined {
  return isErrorClass(name) ? ERROR_CLASS_TABLE[name] : undefined;
}

/** The classes that have `trait`, in table order. */
export function errorClassesWhere(trait: keyof ErrorClassTraits): ErrorClass[] {
  return ERROR_CLASSES.filter((c) => ERROR_CLASS_TABLE[c][trait]);
}
