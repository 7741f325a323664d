import { AppError, status } from '@switchyard/grpc';
import { ROUTER_ERROR_DOMAIN } from './caller-errors';

/**
 * How long a refused caller is told to wait (RetryInfo). Short: a refusal
 * means this replica had `max` calls in flight a moment ago, and one of them
 * finishing frees a place; a caller with another replica may go there at once.
 */
export const SHED_RETRY_AFTER_MS = 100;

/**
 * At most `max` calls in this router at once (ROUTER_MAX_IN_FLIGHT; 0 = no
 * bound). Past the bound a call is refused at once, before any peer hop or
 * provider call, instead of queueing behind the others for CPU: under
 * overload an admitted call still finishes in the time it would at
 * saturation, and the excess learns in microseconds to go elsewhere.
 */
export interface InFlightGate {
  readonly inFlight: number;
  /** Takes a place, or returns false when all `max` are taken. */
  tryEnter(): boolean;
  leave(): void;
}

export function createInFlightGate(max: number): InFlightGate {
  if (!Number.isInteger(max) || max < 0) throw new Error(`in-flight bound must be a whole number ≥ 0, got ${max}`);
  let inFlight = 0;
  return {
    get inFlight() {
      return inFlight;
    },
    tryEnter() {
      if (max > 0 && inFlight >= max) return false;
      inFlight += 1;
      return true;
    },
    leave() {
      inFlight = Math.max(0, inFlight - 1);
    },
  };
}

/** RESOURCE_EXHAUSTED with RetryInfo and ErrorInfo ROUTER_OVERLOADED: what a shed caller gets. */
export function overloadedError(max: number): AppError {
  return new AppError(status.RESOURCE_EXHAUSTED, `router at capacity: ${max} calls in flight (ROUTER_MAX_IN_FLIGHT); retry shortly or on another replica`, {
    retryDelayMs: SHED_RETRY_AFTER_MS,
    quotaFailure: [{ subject: 'router:in_flight', description: `at most ${max} calls in flight per router replica` }],
    errorInfo: { reason: 'ROUTER_OVERLOADED', domain: ROUTER_ERROR_DOMAIN, metadata: { max_in_flight: String(max) } },
  });
}

/**
 * Wraps an RPC handler so it runs only with a place in `gate`, held until the
 * handler settles (a stream: until it ends). The refusal is a rejected
 * promise, so the call is answered on the same tick.
 */
export function shedExcess<A extends unknown[], R>(gate: InFlightGate, max: number, handler: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  if (max === 0) return handler;
  return (...args: A) => {
    if (!gate.tryEnter()) return Promise.reject(overloadedError(max));
    let result: Promise<R>;
    try {
      result = handler(...args);
    } catch (err) {
      gate.leave();
      return Promise.reject(err);
    }
    return result.finally(() => gate.leave());
  };
}
