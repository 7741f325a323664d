import { type ErrorClass, errorClassesWhere } from '@switchyard/util';

/**
 * The per-deployment circuit breaker as a pure state machine.
 *
 * This module is the specification: the in-memory store runs it directly, and
 * the Redis store's Lua script (adapters/redis-health-lua.ts) mirrors it line
 * for line so one contract suite can hold both to the same behaviour. Time is
 * always passed in (`now`), never read, so every transition can be asserted
 * step by step with a ManualClock.
 *
 * Rules (DESIGN.md "Defaults"; resilience4j / Envoy outlier detection):
 * - Only the classes the error-class table (@switchyard/util) counts as
 *   breaker failures (OVERLOADED, SERVER_ERROR, TIMEOUT, NETWORK) are; a
 *   success resets the consecutive count; every other class is neutral (client
 *   errors never trip a breaker, and they do not reset the count either).
 * - Counted outcomes (success or failure) also land in a sliding TIME window of
 *   `windowMs`, kept as WINDOW_BUCKETS buckets (calls, failures, slow calls).
 *   A call is slow when its latency exceeds the deployment's slow-call threshold.
 * - CLOSED → OPEN on `consecutiveFailures` failures in a row, OR once the window
 *   holds at least `minimumCalls` calls and the failure rate ≥
 *   `failureRateThreshold`, OR the slow-call rate ≥ `slowCallRateThreshold`.
 * - OPEN lasts openMs × 2^reopenCount, capped at maxOpenMs. reopenCount grows
 *   on every re-open (a failed probe, or CLOSED → OPEN within `healthyResetMs`
 *   of the last close) and is 0 again after a healthy period that long.
 * - OPEN is stored with `openUntil`; from that instant it *reads* HALF_OPEN. The
 *   first call that observes it materialises the transition (so it is published
 *   exactly once, by whoever observed it first).
 * - HALF_OPEN: `halfOpenProbes` permits cluster-wide (AcquireProbe). A counted
 *   failure → OPEN again; `halfOpenProbes` successes → CLOSED (with an empty
 *   window, so the failures that opened it do not re-open it at once).
 * - A forced state (operator) never changes automatically; outcomes still
 *   update the statistics.
 */

export type CircuitStateName = 'CLOSED' | 'OPEN' | 'HALF_OPEN';

/** Error classes as the provider adapters name them (DESIGN.md "Error classes"). */
export type OutcomeErrorClass = ErrorClass;

/** The classes the one error-class table counts as breaker failures (client errors never trip a breaker). */
export const BREAKER_FAILURE_CLASSES: ReadonlySet<OutcomeErrorClass> = new Set(errorClassesWhere('countsTowardBreaker'));

/** How an outcome affects the circuit. */
export type OutcomeKind = 'success' | 'failure' | 'neutral';

export function outcomeKind(errorClass: OutcomeErrorClass | undefined): OutcomeKind {
  if (errorClass === undefined) return 'success';
  return BREAKER_FAILURE_CLASSES.has(errorClass) ? 'failure' : 'neutral';
}

export interface BreakerPolicy {
  /** Consecutive breaker failures that open a CLOSED circuit. */
  consecutiveFailures: number;
  /** Failure rate (0..1) over the window that opens a CLOSED circuit (with at least `minimumCalls`). */
  failureRateThreshold: number;
  /** Length of the sliding time window. */
  windowMs: number;
  /** The window's rates decide nothing until it holds this many counted calls. */
  minimumCalls: number;
  /** A counted call slower than this is slow (0 = slow calls are not tracked). */
  slowCallMs: number;
  /** Per-deployment slow-call thresholds that win over `slowCallMs`. */
  slowCallMsByDeployment?: Readonly<Record<string, number>>;
  /** Slow-call rate (0..1) over the window that opens a CLOSED circuit (with at least `minimumCalls`). */
  slowCallRateThreshold: number;
  /** First open interval; doubles per consecutive re-open. */
  openMs: number;
  /** Longest open interval. */
  maxOpenMs: number;
  /** A circuit CLOSED this long without re-opening starts escalation from openMs again. */
  healthyResetMs: number;
  /** Probe permits in HALF_OPEN (cluster-wide); this many successes close the circuit. */
  halfOpenProbes: number;
  /** Per-deployment settings that win over the ones above (the config file's `deployments.<id>.breaker`). */
  byDeployment?: Readonly<Record<string, DeploymentPolicy>>;
}

/** What a deployment may set for itself. */
export type DeploymentPolicy = Partial<Omit<BreakerPolicy, 'byDeployment' | 'slowCallMsByDeployment'>>;

export const DEFAULT_POLICY: BreakerPolicy = {
  consecutiveFailures: 5,
  failureRateThreshold: 0.5,
  windowMs: 60_000,
  minimumCalls: 20,
  slowCallMs: 0,
  slowCallRateThreshold: 1,
  openMs: 30_000,
  maxOpenMs: 300_000,
  healthyResetMs: 300_000,
  halfOpenProbes: 1,
};

/** The sliding window is this many buckets of windowMs / WINDOW_BUCKETS (resilience4j: one per second of a 60 s window). */
export const WINDOW_BUCKETS = 60;

/** Weight of the newest sample in the latency EWMAs (mean and variance). */
export const LATENCY_EWMA_ALPHA = 0.2;

/** z for the 95th percentile: p95 ≈ mean + 1.645 σ (EWMA mean and variance). */
export const P95_Z = 1.645;

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
  /**
   * Sliding window: `index:calls:failures:slow` buckets joined by ',', oldest
   * first, index = floor(time / bucketMs). The Lua script keeps the same text.
   */
  window: string;
  lastErrorClass: OutcomeErrorClass | undefined;
  /** EWMA of attempt latency in ms (0 until the first sample). */
  latencyEwmaMs: number;
  /** EWMA of the squared deviation from latencyEwmaMs (ms²), for the p95 estimate. */
  latencyVarMs2: number;
  /** Successful probes in the current HALF_OPEN. */
  halfOpenSuccesses: number;
  /** When the circuit last closed automatically (0 = never opened); drives the healthy-period reset. */
  closedAt: number;
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
  /**
   * When one call both materialised OPEN→HALF_OPEN and then decided (probe
   * outcome, operator): that first transition. Both are published, in order,
   * so every epoch has its event.
   */
  observed?: Transition;
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
    latencyVarMs2: 0,
    halfOpenSuccesses: 0,
    closedAt: 0,
    updatedAt: now,
  };
}

export function effectiveState(r: CircuitRecord, now: number): CircuitStateName {
  if (r.state === 'OPEN' && !r.forced && r.openUntil > 0 && now >= r.openUntil) return 'HALF_OPEN';
  return r.state;
}

export interface WindowBucket {
  index: number;
  calls: number;
  failures: number;
  slow: number;
}

export function parseWindow(window: string): WindowBucket[] {
  if (window === '') return [];
  const out: WindowBucket[] = [];
  for (const b of window.split(',')) {
    // Anything else (e.g. the count-based '0101' window of earlier versions) is dropped.
    const m = /^(\d+):(\d+):(\d+):(\d+)$/.exec(b);
    if (m) out.push({ index: Number(m[1]), calls: Number(m[2]), failures: Number(m[3]), slow: Number(m[4]) });
  }
  return out;
}

export function formatWindow(buckets: WindowBucket[]): string {
  return buckets.map((b) => `${b.index}:${b.calls}:${b.failures}:${b.slow}`).join(',');
}

export const bucketMs = (policy: BreakerPolicy): number => Math.max(1, Math.ceil(policy.windowMs / WINDOW_BUCKETS));

/** Drops buckets that have slid out of the window at `now`. */
export function trimWindow(window: string, now: number, policy: BreakerPolicy): string {
  const oldest = Math.floor(now / bucketMs(policy)) - WINDOW_BUCKETS + 1;
  const buckets = parseWindow(window);
  const kept = buckets.filter((b) => b.index >= oldest);
  return kept.length === buckets.length ? window : formatWindow(kept);
}

export interface WindowStats {
  calls: number;
  failures: number;
  slow: number;
}

export function windowStats(r: CircuitRecord): WindowStats {
  const out = { calls: 0, failures: 0, slow: 0 };
  for (const b of parseWindow(r.window)) {
    out.calls += b.calls;
    out.failures += b.failures;
    out.slow += b.slow;
  }
  return out;
}

/** Failures / counted calls in the stored window (trimmed by the last store step). */
export function failureRate(r: CircuitRecord): number {
  const { calls, failures } = windowStats(r);
  return calls === 0 ? 0 : failures / calls;
}

export function slowCallRate(r: CircuitRecord): number {
  const { calls, slow } = windowStats(r);
  return calls === 0 ? 0 : slow / calls;
}

/** p95 latency estimate from the EWMA mean and variance (normal approximation), in ms. */
export function p95LatencyMs(r: CircuitRecord): number {
  return r.latencyEwmaMs + P95_Z * Math.sqrt(Math.max(0, r.latencyVarMs2));
}

/** The slow-call threshold of one deployment (0 = not tracked). */
export function slowCallMsFor(policy: BreakerPolicy, deployment: string): number {
  return policy.byDeployment?.[deployment]?.slowCallMs ?? policy.slowCallMsByDeployment?.[deployment] ?? policy.slowCallMs;
}

/** The policy one deployment's circuit runs under: its own settings over the shared ones. */
export function policyFor(policy: BreakerPolicy, deployment: string): BreakerPolicy {
  const own = policy.byDeployment?.[deployment];
  return own ? { ...policy, ...own } : policy;
}

/** CLOSED but slow: the p95 estimate is over the deployment's slow-call threshold. */
export function isDegraded(r: CircuitRecord, state: CircuitStateName, slowMs: number): boolean {
  return state === 'CLOSED' && slowMs > 0 && r.latencyEwmaMs > 0 && p95LatencyMs(r) > slowMs;
}

/** Open interval after `reopenCount` consecutive re-opens: openMs × 2^n, capped. */
export function openDuration(reopenCount: number, policy: BreakerPolicy): number {
  return Math.min(policy.maxOpenMs, policy.openMs * 2 ** Math.min(reopenCount, 30));
}

const pct = (x: number) => `${Math.round(x * 100)}%`;

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
 * Materialises OPEN → HALF_OPEN once the open interval has elapsed, and slides
 * the window to `now`. Every store operation runs this first, so whichever
 * call first notices the deadline is the one that reports the transition.
 */
export function observe(r0: CircuitRecord, now: number, policy: BreakerPolicy): Step {
  const window = trimWindow(r0.window, now, policy);
  const r = window === r0.window ? r0 : { ...r0, window };
  if (r.state === 'OPEN' && effectiveState(r, now) === 'HALF_OPEN') {
    const step = transitionTo(r, 'HALF_OPEN', 'open interval elapsed', now, false, 0);
    step.record.halfOpenSuccesses = 0;
    return step;
  }
  return { record: r };
}

function addToWindow(window: string, now: number, policy: BreakerPolicy, failure: boolean, slow: boolean): string {
  const index = Math.floor(now / bucketMs(policy));
  const buckets = parseWindow(window);
  let last = buckets[buckets.length - 1];
  if (!last || last.index !== index) buckets.push((last = { index, calls: 0, failures: 0, slow: 0 }));
  last.calls++;
  if (failure) last.failures++;
  if (slow) last.slow++;
  return formatWindow(buckets);
}

/** Why a CLOSED circuit must open now, or undefined. */
function openReason(r: CircuitRecord, policy: BreakerPolicy, slowMs: number): string | undefined {
  if (r.consecutiveFailures >= policy.consecutiveFailures) return `${r.consecutiveFailures} consecutive failures`;
  const { calls, failures, slow } = windowStats(r);
  if (calls < policy.minimumCalls) return undefined;
  if (failures / calls >= policy.failureRateThreshold)
    return `failure rate ${pct(failures / calls)} over ${calls} calls in ${policy.windowMs / 1000}s`;
  if (slowMs > 0 && slow / calls >= policy.slowCallRateThreshold)
    return `slow-call rate ${pct(slow / calls)} (over ${slowMs}ms) over ${calls} calls in ${policy.windowMs / 1000}s`;
  return undefined;
}

function open(r: CircuitRecord, reason: string, now: number, policy: BreakerPolicy, reopenCount: number): Step {
  const step = transitionTo(r, 'OPEN', reason, now, false, now + openDuration(reopenCount, policy));
  step.record.reopenCount = reopenCount;
  step.record.halfOpenSuccesses = 0;
  return step;
}

export function recordOutcome(r0: CircuitRecord, outcome: OutcomeInput, now: number, policy: BreakerPolicy): Step {
  const observed = observe(r0, now, policy);
  const kind = outcomeKind(outcome.errorClass);
  const r: CircuitRecord = { ...observed.record, updatedAt: now };

  if (outcome.latencyMs > 0) {
    if (r.latencyEwmaMs === 0) {
      r.latencyEwmaMs = outcome.latencyMs;
    } else {
      // West's incremental EWMA variance: var ← (1-α)(var + α·d²), d measured from the old mean.
      const d = outcome.latencyMs - r.latencyEwmaMs;
      r.latencyEwmaMs += LATENCY_EWMA_ALPHA * d;
      r.latencyVarMs2 = (1 - LATENCY_EWMA_ALPHA) * (r.latencyVarMs2 + LATENCY_EWMA_ALPHA * d * d);
    }
  }
  if (outcome.errorClass !== undefined) r.lastErrorClass = outcome.errorClass;
  if (kind === 'neutral') return { record: r, transition: observed.transition };

  const slowMs = slowCallMsFor(policy, r.deployment);
  const slow = slowMs > 0 && outcome.latencyMs > slowMs;
  r.window = addToWindow(r.window, now, policy, kind === 'failure', slow);
  r.consecutiveFailures = kind === 'failure' ? r.consecutiveFailures + 1 : 0;

  // An observed OPEN→HALF_OPEN and a decision in the same call are two
  // transitions (two epochs): report both, the observed one first.
  if (r.forced) return { record: r, transition: observed.transition };
  let step: Step = { record: r };
  if (r.state === 'CLOSED') {
    const reason = openReason(r, policy, slowMs);
    if (reason) {
      const recentlyClosed = r.closedAt > 0 && now - r.closedAt < policy.healthyResetMs;
      step = open(r, reason, now, policy, recentlyClosed ? r.reopenCount + 1 : 0);
    }
  } else if (r.state === 'HALF_OPEN' && kind === 'failure') {
    step = open(r, 'probe failed', now, policy, r.reopenCount + 1);
  } else if (r.state === 'HALF_OPEN' && kind === 'success') {
    r.halfOpenSuccesses += 1;
    if (r.halfOpenSuccesses >= policy.halfOpenProbes) {
      const closed = { ...r, window: '', consecutiveFailures: 0, halfOpenSuccesses: 0, closedAt: now };
      step = transitionTo(closed, 'CLOSED', r.halfOpenSuccesses > 1 ? `${r.halfOpenSuccesses} probes succeeded` : 'probe succeeded', now, false, 0);
      // reopenCount is kept: a re-open within healthyResetMs of this close escalates further.
    }
  }
  if (step.transition && observed.transition) step.observed = observed.transition;
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
  const observed = observe(r0, now, policy);
  const r = observed.record;
  const target = input.state ?? r.state;
  const forced = !input.release;
  const reason = input.reason || (input.release ? 'operator released override' : 'operator override');
  // A released OPEN gets a fresh open interval; a forced OPEN waits for the operator.
  const openUntil = target === 'OPEN' ? (forced ? 0 : now + openDuration(r.reopenCount, policy)) : 0;
  const cleared: Partial<CircuitRecord> =
    target === 'CLOSED' ? { consecutiveFailures: 0, window: '', reopenCount: 0, closedAt: 0, halfOpenSuccesses: 0 } : target === 'HALF_OPEN' ? { halfOpenSuccesses: 0 } : {};

  if (target === r.state) {
    if (r.forced === forced && r.openUntil === openUntil && target !== 'CLOSED') return observed;
    const record = { ...r, ...cleared, forced, openUntil, epoch: r.epoch + 1, updatedAt: now };
    return { record, transition: observed.transition };
  }
  const step = transitionTo({ ...r, ...cleared }, target, reason, now, true, openUntil);
  step.record.forced = forced;
  if (observed.transition) step.observed = observed.transition;
  return step;
}

/** The probe permit may only be granted while the circuit reads HALF_OPEN. */
export function probeAllowed(r: CircuitRecord, now: number): boolean {
  return effectiveState(r, now) === 'HALF_OPEN';
}
