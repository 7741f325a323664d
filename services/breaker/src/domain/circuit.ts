/**
 * The per-deployment circuit breaker as a pure state machine.
 *
 * This module is the specification: the in-memory store runs it directly, and
 * the Redis store's Lua script (adapters/redis-health-lua.ts) mirrors it line
 * for line so one contract suite can hold both to the same behaviour. Time is
 * always passed in (`now`), never read, so every transition can be asserted
 * step by step with a ManualClock.
 *
 * Rules (DESIGN.md "Defaults", foundation scope):
 * - Only OVERLOADED, SERVER_ERROR, TIMEOUT and NETWORK are breaker failures; a
 *   success resets the consecutive count; every other class is neutral (client
 *   errors never trip a breaker, and they do not reset the count either).
 * - CLOSED → OPEN after `consecutiveFailures` failures in a row.
 * - OPEN is stored with `openUntil`; from that instant it *reads* HALF_OPEN. The
 *   first call that observes it materialises the transition (so it is published
 *   exactly once, by whoever observed it first).
 * - HALF_OPEN: the next counted outcome decides: success → CLOSED, failure →
 *   OPEN again (reopenCount + 1). Neutral outcomes decide nothing.
 * - A forced state (operator) never changes automatically; outcomes still
 *   update the statistics.
 */

export type CircuitStateName = 'CLOSED' | 'OPEN' | 'HALF_OPEN';

/** Error classes as the provider adapters name them (DESIGN.md "Error classes"). */
export type OutcomeErrorClass =
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

export const BREAKER_FAILURE_CLASSES: ReadonlySet<OutcomeErrorClass> = new Set<OutcomeErrorClass>([
  'OVERLOADED',
  'SERVER_ERROR',
  'TIMEOUT',
  'NETWORK',
]);

/** How an outcome affects the circuit. */
export type OutcomeKind = 'success' | 'failure' | 'neutral';

export function outcomeKind(errorClass: OutcomeErrorClass | undefined): OutcomeKind {
  if (errorClass === undefined) return 'success';
  return BREAKER_FAILURE_CLASSES.has(errorClass) ? 'failure' : 'neutral';
}

export interface BreakerPolicy {
  /** Consecutive breaker failures that open a CLOSED circuit. */
  consecutiveFailures: number;
  /** How long OPEN lasts before the circuit reads HALF_OPEN. */
  openMs: number;
  /** Failure rate is computed over the last `windowSize` counted (success/failure) outcomes. */
  windowSize: number;
}

export const DEFAULT_POLICY: BreakerPolicy = { consecutiveFailures: 5, openMs: 30_000, windowSize: 20 };

/** Weight of the newest sample in the latency EWMA (a cheap p50 stand-in). */
export const LATENCY_EWMA_ALPHA = 0.2;

export interface DeploymentIdentity {
  deployment: string;
  provider: string;
  model: string;
}

/** What the stores persist per deployment. */
export interface CircuitRecord extends DeploymentIdentity {
  /** Stored state; an unforced OPEN past `openUntil` reads HALF_OPEN (see `effectiveState`). */
  state: CircuitStateName;
  consecutiveFailures: number;
  /** Unix ms; 0 unless OPEN with a deadline (a forced OPEN has none). */
  openUntil: number;
  forced: boolean;
  reopenCount: number;
  /** Incremented on every persisted change consumers must see (transitions, force/release). */
  epoch: number;
  /** Last `windowSize` counted outcomes, oldest first: '1' failure, '0' success. */
  window: string;
  lastErrorClass: OutcomeErrorClass | undefined;
  /** EWMA of attempt latency in ms (0 until the first sample). */
  latencyEwmaMs: number;
  updatedAt: number;
}

export interface Transition {
  deployment: string;
  from: CircuitStateName;
  to: CircuitStateName;
  reason: string;
  forced: boolean;
  /** Epoch of the record after the transition. */
  epoch: number;
  openUntil: number;
  failureRate: number;
  at: number;
}

export interface Step {
  record: CircuitRecord;
  /** Present only when the state changed; exactly one caller ever sees it. */
  transition?: Transition;
}

export interface OutcomeInput {
  /** undefined = success. */
  errorClass: OutcomeErrorClass | undefined;
  latencyMs: number;
}

export function newCircuit(id: DeploymentIdentity, now: number): CircuitRecord {
  return {
    deployment: id.deployment,
    provider: id.provider,
    model: id.model,
    state: 'CLOSED',
    consecutiveFailures: 0,
    openUntil: 0,
    forced: false,
    reopenCount: 0,
    epoch: 0,
    window: '',
    lastErrorClass: undefined,
    latencyEwmaMs: 0,
    updatedAt: now,
  };
}

export function effectiveState(r: CircuitRecord, now: number): CircuitStateName {
  if (r.state === 'OPEN' && !r.forced && r.openUntil > 0 && now >= r.openUntil) return 'HALF_OPEN';
  return r.state;
}

export function failureRate(r: CircuitRecord): number {
  if (r.window.length === 0) return 0;
  let failures = 0;
  for (const c of r.window) if (c === '1') failures++;
  return failures / r.window.length;
}

function transitionTo(
  r: CircuitRecord,
  to: CircuitStateName,
  reason: string,
  now: number,
  forced: boolean,
  openUntil: number,
): Step {
  const from = r.state;
  const record: CircuitRecord = { ...r, state: to, openUntil, forced, epoch: r.epoch + 1, updatedAt: now };
  return {
    record,
    transition: {
      deployment: r.deployment,
      from,
      to,
      reason,
      forced,
      epoch: record.epoch,
      openUntil,
      failureRate: failureRate(record),
      at: now,
    },
  };
}

/**
 * Materialises OPEN → HALF_OPEN once the open interval has elapsed. Every
 * store operation runs this first, so whichever call first notices the
 * deadline is the one that reports the transition.
 */
export function observe(r: CircuitRecord, now: number): Step {
  if (r.state === 'OPEN' && effectiveState(r, now) === 'HALF_OPEN') {
    return transitionTo(r, 'HALF_OPEN', 'open interval elapsed', now, false, 0);
  }
  return { record: r };
}

export function recordOutcome(r0: CircuitRecord, outcome: OutcomeInput, now: number, policy: BreakerPolicy): Step {
  const observed = observe(r0, now);
  const kind = outcomeKind(outcome.errorClass);
  const r: CircuitRecord = { ...observed.record, updatedAt: now };

  if (outcome.latencyMs > 0) {
    r.latencyEwmaMs =
      r.latencyEwmaMs === 0 ? outcome.latencyMs : r.latencyEwmaMs + LATENCY_EWMA_ALPHA * (outcome.latencyMs - r.latencyEwmaMs);
  }
  if (outcome.errorClass !== undefined) r.lastErrorClass = outcome.errorClass;
  if (kind === 'neutral') return { record: r, transition: observed.transition };

  r.window = (r.window + (kind === 'failure' ? '1' : '0')).slice(-policy.windowSize);
  r.consecutiveFailures = kind === 'failure' ? r.consecutiveFailures + 1 : 0;

  // An observed OPEN→HALF_OPEN and a decision in the same call would be two
  // transitions; report the decision (the later state) and keep epochs monotonic.
  if (r.forced) return { record: r, transition: observed.transition };
  let step: Step = { record: r };
  if (r.state === 'CLOSED' && kind === 'failure' && r.consecutiveFailures >= policy.consecutiveFailures) {
    step = transitionTo(r, 'OPEN', `${r.consecutiveFailures} consecutive failures`, now, false, now + policy.openMs);
  } else if (r.state === 'HALF_OPEN' && kind === 'failure') {
    step = transitionTo(r, 'OPEN', 'probe failed', now, false, now + policy.openMs);
    step.record.reopenCount = r.reopenCount + 1;
  } else if (r.state === 'HALF_OPEN' && kind === 'success') {
    step = transitionTo(r, 'CLOSED', 'probe succeeded', now, false, 0);
    step.record.reopenCount = 0;
  }
  if (step.transition && observed.transition) step.transition.from = observed.transition.from;
  return step.transition ? step : { record: r, transition: observed.transition };
}

export interface ForceInput {
  /** undefined only with `release` (keep the current state). */
  state: CircuitStateName | undefined;
  release: boolean;
  reason: string;
}

/**
 * Operator override. Forcing pins the state (forced OPEN has no deadline);
 * forcing CLOSED clears the failure history. `release` hands control back to
 * the automatic rules from the given (or current) state. Changing only the
 * forced flag bumps the epoch (consumers must see it) but is not a transition.
 */
export function forceState(r0: CircuitRecord, input: ForceInput, now: number, policy: BreakerPolicy): Step {
  const observed = observe(r0, now);
  const r = observed.record;
  const target = input.state ?? r.state;
  const forced = !input.release;
  const reason = input.reason || (input.release ? 'operator released override' : 'operator override');
  // A released OPEN gets a fresh open interval; a forced OPEN waits for the operator.
  const openUntil = target === 'OPEN' ? (forced ? 0 : now + policy.openMs) : 0;
  const cleared: Partial<CircuitRecord> = target === 'CLOSED' ? { consecutiveFailures: 0, window: '', reopenCount: 0 } : {};

  if (target === r.state) {
    if (r.forced === forced && r.openUntil === openUntil && target !== 'CLOSED') return observed;
    const record = { ...r, ...cleared, forced, openUntil, epoch: r.epoch + 1, updatedAt: now };
    return { record, transition: observed.transition };
  }
  const step = transitionTo({ ...r, ...cleared }, target, reason, now, true, openUntil);
  step.record.forced = forced;
  if (observed.transition) step.transition!.from = observed.transition.from;
  return step;
}

/** The probe permit may only be granted while the circuit reads HALF_OPEN. */
export function probeAllowed(r: CircuitRecord, now: number): boolean {
  return effectiveState(r, now) === 'HALF_OPEN';
}
