import { RouterService } from '@switchyard/contracts';
import { AppError, status } from '@switchyard/grpc';
import type { Clock } from '@switchyard/util';
import { ROUTER_ERROR_DOMAIN } from './caller-errors';

/**
 * How long a refused caller is told to wait (RetryInfo). Short: a refusal
 * means this replica had all its places taken a moment ago, and one of them
 * finishing frees a place; a caller with another replica may go there at once.
 */
export const SHED_RETRY_AFTER_MS = 100;

/** How often the adaptive bound is reconsidered: a few of the lag sampler's ticks, short next to a second of overload. */
export const SHED_WINDOW_MS = 100;

/**
 * A bound on the calls in this router at once. Past it a call is refused at
 * once, before any peer hop or provider call, instead of queueing behind the
 * others for CPU: under overload an admitted call still finishes in the time
 * it would at saturation, and the excess learns at once to go elsewhere.
 */
export interface InFlightGate {
  readonly inFlight: number;
  /** The bound right now (0 = none). */
  readonly limit: number;
  /** Takes a place, or returns false when all are taken. */
  tryEnter(): boolean;
  /** Whether a call arriving now would be refused (takes no place). */
  full(): boolean;
  leave(): void;
}

/** A fixed bound of `max` calls (ROUTER_MAX_IN_FLIGHT; 0 = no bound). */
export function createInFlightGate(max: number): InFlightGate {
  if (!Number.isInteger(max) || max < 0) throw new Error(`in-flight bound must be a whole number ≥ 0, got ${max}`);
  let inFlight = 0;
  const full = () => max > 0 && inFlight >= max;
  return {
    get inFlight() {
      return inFlight;
    },
    limit: max,
    full,
    tryEnter() {
      if (full()) return false;
      inFlight += 1;
      return true;
    },
    leave() {
      inFlight = Math.max(0, inFlight - 1);
    },
  };
}

/** How late this process's event loop has been. */
export interface LagSource {
  /** The worst event-loop delay (ms) seen since the last call. */
  takeWorstMs(): number;
}

export interface AdaptiveGateOptions {
  /** Ceiling (ROUTER_MAX_IN_FLIGHT). */
  max: number;
  /** Floor, and the starting bound (ROUTER_MIN_IN_FLIGHT). */
  min: number;
  /** Event-loop delay above which the bound shrinks (ROUTER_SHED_LAG_MS). */
  targetLagMs: number;
  /** How often the bound is reconsidered. */
  windowMs: number;
}

/** Share of the bound kept when the loop ran late; the bound regrows by 1/8 per window it was reached without lag. */
const SHRINK = 0.75;
const GROW_DIVISOR = 8;

/**
 * A bound that follows this replica's measured capacity instead of a guess of
 * it: a refused call waits for the event loop to read it before it can be
 * refused, so the loop's delay is what the excess pays, and it rises only when
 * the admitted calls' work outruns the CPU. Each window (judged when a call
 * arrives; no timer of its own): a delay above the target shrinks the bound to
 * ¾ of the calls that were in flight; a window that reached the bound without
 * lag grows it by ⅛ — fast enough to reach hundreds of places in front of a
 * slow upstream within seconds, where in-flight calls cost no CPU while they
 * wait. Between `min` and `max` always.
 */
export function createAdaptiveGate(opts: AdaptiveGateOptions, clock: Clock, lag: LagSource): InFlightGate {
  const { max, min, targetLagMs, windowMs } = opts;
  if (!Number.isInteger(max) || max < 1) throw new Error(`adaptive in-flight ceiling must be a whole number ≥ 1, got ${max}`);
  if (!Number.isInteger(min) || min < 1 || min > max) throw new Error(`adaptive in-flight floor must be a whole number in [1, ${max}], got ${min}`);
  let limit = min;
  let inFlight = 0;
  let peak = 0;
  let reached = false;
  let windowStart = clock.now();
  lag.takeWorstMs(); // what happened before this gate existed (start-up) is no measure of its calls
  const adjust = () => {
    const now = clock.now();
    const elapsed = now - windowStart;
    if (elapsed < windowMs) return;
    const worst = lag.takeWorstMs();
    // A long quiet gap measured no calls: start a fresh window without judging it.
    if (elapsed < 2 * windowMs) {
      if (worst > targetLagMs) limit = Math.max(min, Math.floor(Math.min(limit, Math.max(peak, 1)) * SHRINK));
      else if (reached) limit = Math.min(max, limit + Math.max(1, Math.floor(limit / GROW_DIVISOR)));
    }
    windowStart = now;
    peak = inFlight;
    reached = inFlight >= limit;
  };
  const full = () => {
    adjust();
    if (inFlight < limit) return false;
    reached = true;
    return true;
  };
  return {
    get inFlight() {
      return inFlight;
    },
    get limit() {
      return limit;
    },
    full,
    tryEnter() {
      if (full()) return false;
      inFlight += 1;
      peak = Math.max(peak, inFlight);
      if (inFlight >= limit) reached = true;
      return true;
    },
    leave() {
      inFlight = Math.max(0, inFlight - 1);
    },
  };
}

/**
 * RESOURCE_EXHAUSTED with RetryInfo and ErrorInfo ROUTER_OVERLOADED: what a shed caller gets.
 * Built once per bound and thrown again for every refused call: an overloaded
 * router should not spend a stack trace and a status encoding (~24 µs) on each
 * call it refuses (libs/grpc encodes a reused AppError's status once).
 */
export function overloadedError(max: number): AppError {
  let err = overloadedErrors.get(max);
  if (!err) {
    err = new AppError(status.RESOURCE_EXHAUSTED, `router at capacity: ${max} calls in flight (ROUTER_MAX_IN_FLIGHT, ROUTER_SHED_LAG_MS); retry shortly or on another replica`, {
      retryDelayMs: SHED_RETRY_AFTER_MS,
      quotaFailure: [{ subject: 'router:in_flight', description: `at most ${max} calls in flight per router replica` }],
      errorInfo: { reason: 'ROUTER_OVERLOADED', domain: ROUTER_ERROR_DOMAIN, metadata: { max_in_flight: String(max) } },
    });
    overloadedErrors.set(max, err);
  }
  return err;
}

/** The refusal for each bound met so far (an adaptive bound moves between its floor and ceiling: a few dozen at most). */
const overloadedErrors = new Map<number, AppError>();

/**
 * Throws the refusal when a call arriving now would be shed: for a front
 * door (the HTTP edge) that can refuse before reading the request body.
 * Taking the place is still the handler's (shedExcess), so a place freed
 * meanwhile is not lost, and one taken meanwhile is still refused there.
 */
export function refuseWhenFull(gate: InFlightGate, onShed: () => void = () => {}): void {
  if (!gate.full()) return;
  onShed();
  throw overloadedError(gate.limit);
}

/** A gate that also counts the gated calls let in as they arrived and not yet in their handlers. */
export interface ArrivalCountingGate extends InFlightGate {
  /**
   * A gated call arriving: false when it would be refused — every place
   * taken, counting the calls let in before it in this loop iteration that
   * have not reached their handlers yet; otherwise counts it and returns true.
   */
  admitArrival(): boolean;
}

/**
 * Counts arrivals against `gate` as well as the calls in it. Node reads a
 * burst of streams in one go and runs their handlers only after all of them
 * arrived, so a check of the gate alone lets the whole burst through, and
 * its excess is refused in the handlers, at grpc-js's price. Counted here, a
 * burst is cut at the places it can have. The count is of this loop
 * iteration only (it is cleared at `nextIteration`, the check phase), since
 * what it counts is not a place: a call whose request never comes (a client
 * that sends headers and trickles its body) must not hold one. Each handler
 * that takes or is refused a place takes one off the count, so calls are not
 * counted twice; a handler of a call that arrived in an earlier iteration
 * takes off one it was not counted in, which errs towards refusing in the
 * handler, as before.
 */
export function countArrivals(gate: InFlightGate, nextIteration: (clear: () => void) => void = (clear) => setImmediate(clear)): ArrivalCountingGate {
  let pending = 0;
  let clearQueued = false;
  const clear = () => {
    pending = 0;
    clearQueued = false;
  };
  return {
    get inFlight() {
      return gate.inFlight;
    },
    get limit() {
      return gate.limit;
    },
    full: () => gate.full(),
    tryEnter() {
      if (pending > 0) pending -= 1;
      return gate.tryEnter();
    },
    leave: () => gate.leave(),
    admitArrival() {
      if (gate.full() || (gate.limit > 0 && gate.inFlight + pending >= gate.limit)) return false;
      pending += 1;
      if (!clearQueued) {
        clearQueued = true;
        nextIteration(clear);
      }
      return true;
    },
  };
}

/** The router's calls that take a place in the in-flight gate (shedExcess wraps their handlers). */
const GATED_PATHS = new Set(['Complete', 'StreamComplete'].map((m) => `/${RouterService.typeName}/${m}`));

/**
 * The gRPC server's arrival check (libs/grpc refuseOnArrival): a Complete or
 * StreamComplete arriving while every place is taken (countArrivals) is
 * answered with the refusal before grpc-js reads it. Like refuseWhenFull it
 * takes no place: shedExcess still takes it in the handler, so a place freed
 * meanwhile is not lost, and one taken meanwhile is still refused there.
 */
export function refuseArrivalsWhenFull(gate: ArrivalCountingGate, onShed: () => void = () => {}): (path: string) => AppError | undefined {
  return (path) => {
    if (!GATED_PATHS.has(path) || gate.admitArrival()) return undefined;
    onShed();
    return overloadedError(gate.limit);
  };
}

/**
 * Wraps an RPC handler so it runs only with a place in `gate`, held until the
 * handler settles (a stream: until it ends). The refusal is a rejected
 * promise, so the call is answered on the same tick; `onShed` counts it.
 *
 * With a run queue (handlers/run-queue.ts), an admitted call that finds other
 * calls waiting for their turn of the CPU waits for its own behind them
 * before its work starts: under load its work from arrival to the provider
 * request runs in the queue's slices too, and the loop reads (and refuses)
 * what arrives between them. While nobody waits it starts at once, so a
 * quiet replica, or a herd arriving at a replica whose upstream is failing
 * (a failed answer takes no turn), runs each call straight through, in the
 * order it arrived.
 */
export function shedExcess<A extends unknown[], R>(
  gate: InFlightGate,
  max: number,
  handler: (...args: A) => Promise<R>,
  onShed: () => void = () => {},
  queue?: { turn: () => Promise<void>; readonly waiting: number },
): (...args: A) => Promise<R> {
  if (max === 0) return handler;
  return (...args: A) => {
    if (!gate.tryEnter()) {
      onShed();
      return Promise.reject(overloadedError(gate.limit));
    }
    let result: Promise<R>;
    try {
      result = queue && queue.waiting > 0 ? queue.turn().then(() => handler(...args)) : handler(...args);
    } catch (err) {
      gate.leave();
      return Promise.reject(err);
    }
    return result.finally(() => gate.leave());
  };
}
