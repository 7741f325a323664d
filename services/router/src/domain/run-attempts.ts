import type { Clock } from '@switchyard/util';
import {
  isCancelledError,
  isProviderError,
  type Classification,
  type ErrorClass,
  type ProviderKind,
} from '@switchyard/providers';
import type { Candidate, Rng, SkippedCandidate } from './candidates';
import type { DegradedReason } from './degraded';
import { decideNextStep, isTransient, type NextStep } from './outcome-action';
import type { RetryBudget } from './retry-budget';
import type { RetrySettings } from './retry-policy';

/** One upstream attempt, as reported in the response, the error details, the logs and the outcome event. */
export interface AttemptRecord {
  deployment: string;
  provider: ProviderKind;
  model: string;
  /** Undefined when the attempt succeeded. */
  errorClass?: ErrorClass;
  latencyMs: number;
  upstreamRequestId?: string;
  retryAfterMs?: number;
  httpStatus?: number;
  /** How the attempt was admitted or ended ("limiter unavailable", "provider message: ..."). */
  note?: string;
  /** Set when the attempt was admitted by a fallback of our own dependencies (the answer is then degraded). */
  degraded?: DegradedReason;
  /** 1-based number of the attempt within the call. */
  attempt: number;
}

/** Limiter verdict for one attempt. Peer failures are not denials: they become a grant with a note. */
export type Admission =
  /** `probe`: this attempt is the replica's half-open probe of the deployment (released when the attempt is accounted). */
  | { granted: true; reservationId?: string; note?: string; probe?: string; degraded?: DegradedReason }
  /** `final`: no other candidate can be admitted either (e.g. the tenant's own limit blocked), so stop trying. */
  | {
      granted: false;
      retryAfterMs: number;
      reason: string;
      final?: boolean;
      /** Who refused: the limiter (a wait may help) or the breaker (half-open, another replica holds the probe: skip). Default limiter. */
      source?: 'limiter' | 'breaker';
      /**
       * `retryAfterMs` is only an upper bound: a concurrency slot frees as soon
       * as any call holding one ends (the limiter can only say when the oldest
       * would expire), so a wait in the queue is worth it whatever it says.
       */
      mayFreeSooner?: boolean;
    };

/** What the loop reports after each upstream attempt (accounting and outcome events hang off this). */
export interface AttemptEvent<T> {
  candidate: Candidate;
  admission: Extract<Admission, { granted: true }>;
  record: AttemptRecord;
  value?: T;
  classification?: Classification;
  /** The caller went away mid-attempt: nothing about the provider was learned. */
  cancelled?: boolean;
  /**
   * The caller's deadline cut this attempt (a TIMEOUT) before the deployment
   * took unusually long: the request was sent and is paid for, but it says
   * nothing about the deployment's health, so it is no breaker outcome.
   */
  cutByDeadline?: boolean;
}

export interface AttemptPorts<T> {
  clock: Clock;
  rng: Rng;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /**
   * Limiter Acquire for one attempt on `candidate`; must not throw. With
   * `maxWaitMs` the limiter queues the call (fairly, in arrival order per
   * tenant) for up to that long before it answers.
   */
  admit(candidate: Candidate, maxWaitMs?: number): Promise<Admission>;
  /** One upstream attempt bounded by `timeoutMs`; rejects with ProviderError or CancelledError. */
  call(candidate: Candidate, timeoutMs: number): Promise<T>;
  /** Called once per upstream attempt, success or failure; must not throw and must not block the caller. */
  afterAttempt(event: AttemptEvent<T>): void;
  /**
   * Whether a request that is not the half-open probe may still go to the
   * deployment: false once the breaker has opened it since the call planned it
   * (health replica, no network hop). Checked before every send and retry.
   */
  mayDispatch?(candidate: Candidate): boolean;
  /** The upstream request id of a successful answer, so the attempt record names it as failures do. */
  upstreamRequestIdOf?(value: T): string | undefined;
  /** True once output reached the caller (streams): from then on no failure may fail over. */
  committed?(): boolean;
  /** The pre-acquired first admission was never used (the caller left or the deadline passed first): hand it back. */
  unused?(admission: Admission): void;
  /**
   * False when this replica's last outcome on `candidate` was a breaker
   * failure. A fallback to a deployment not known to be failing is free of the
   * retry budget: the budget stops storms, not the way around a sick
   * deployment. Default: every fallback after a transient failure is paid.
   */
  knownHealthy?(candidate: Candidate): boolean;
  /**
   * Observed latency of one attempt on `candidate` (health replica p50 or a
   * local EWMA), 0 when unknown: an attempt that cannot finish in the time left
   * is not started.
   */
  expectedLatencyMs?(candidate: Candidate): number;
}

export interface LoopOptions {
  retry: RetrySettings;
  /** Caller deadline as an epoch-ms instant; Infinity when the caller set none. */
  deadlineAt: number;
  fallbackOnContentFilter: boolean;
  /** The caller's cancellation (client gone / deadline); aborts backoff sleeps. */
  signal?: AbortSignal;
  /** Admission already obtained for the first candidate (acquired in the parallel fan-out). */
  firstAdmission?: Admission;
  /** Per-replica retry budget: this call deposits once; every retry or transient-failure fallback withdraws. */
  retryBudget?: RetryBudget;
  /** Longest wait for quota on the last candidate (the limiter queues the call); 0 = never wait. Default 0. */
  maxAdmissionWaitMs?: number;
  /** False (route contextOverflow fail): a provider's context-length error ends the call instead of trying a larger window. Default true. */
  contextFallback?: boolean;
  /**
   * How late an answer decided now may leave this process (its recent
   * event-loop delay): kept back from the deadline on top of ANSWER_MARGIN_MS,
   * from every wait, attempt and retry, read afresh at each decision. Default 0.
   */
  answerDelayMs?: () => number;
}

export type LoopResult<T> =
  | { ok: true; value: T; candidate: Candidate; attempts: AttemptRecord[]; skipped: SkippedCandidate[] }
  | {
      ok: false;
      attempts: AttemptRecord[];
      skipped: SkippedCandidate[];
      /** Classification of the last upstream failure, if any attempt reached a provider. */
      last?: { classification: Classification; candidate: Candidate };
      /** Why the loop stopped. */
      reason: string;
      cancelled: boolean;
      deadlineExceeded: boolean;
    };

/**
 * Kept back from the caller's deadline so the router's own answer (with every
 * attempt listed) reaches the caller before its deadline cuts the call.
 */
export const ANSWER_MARGIN_MS = 10;

/**
 * Kept back from a limiter wait for the grant's trip back to the router and
 * the answer's trip to the caller (or a tenth of the time left, if more). An
 * observed latency is a p50, and a grant lands at the end of a long wait
 * exactly when the system is busiest, so the margin is generous: a waiter that
 * gives up early is told RESOURCE_EXHAUSTED with a retry-after; one admitted
 * too late would miss its deadline.
 */
export const ADMISSION_HOP_MARGIN_MS = 100;
/**
 * Why the loop stopped when its last attempt ran out of the time the caller's
 * deadline left it (less the answer's reserve), rather than out of the
 * deployment's own timeout: the deadline ended the call (the HTTP edge answers
 * 504). Said in ErrorInfo `stopped_because`.
 */
export const ATTEMPT_CUT_BY_DEADLINE = "the caller's deadline cut the last attempt short";

/** A grant from the queue is used only with twice the observed latency plus this much left. */
const LATE_GRANT_MIN_MS = 50;

/**
 * A timeout the caller's deadline forced is the deployment's fault only once
 * the attempt had run this many times its usual latency (cluster p50, else
 * this replica's average): a hung provider still opens its breaker for
 * callers with long deadlines, while one caller's deadlines just above the
 * usual latency cannot open it for everyone.
 */
export const CUT_BLAMES_DEPLOYMENT_AFTER = 3;

/** Beside three times its usual latency, what the next candidate's attempt is kept for its own hops, a late loop and the answer. */
const NEXT_CANDIDATE_SLACK_MS = 100;

/**
 * Time an attempt leaves for the next candidate: three times that
 * candidate's usual latency plus NEXT_CANDIDATE_SLACK_MS, when both usual
 * latencies are known and the attempt still gets CUT_BLAMES_DEPLOYMENT_AFTER
 * times its own. A hung deployment otherwise took the whole deadline, and a
 * fallback answering in milliseconds was skipped for lack of time.
 */
export function keepForNextCandidate(remainingMs: number, expectedMs: number, nextExpectedMs: number): number {
  if (expectedMs <= 0 || nextExpectedMs <= 0) return 0;
  const keep = 3 * nextExpectedMs + NEXT_CANDIDATE_SLACK_MS;
  return remainingMs - keep >= CUT_BLAMES_DEPLOYMENT_AFTER * expectedMs ? keep : 0;
}

/**
 * How long the last candidate may wait in the limiter's queue: what is left
 * before the deadline minus twice the observed latency of an attempt and a
 * margin, so the admitted attempt can still finish. With no latency observed
 * yet, half of what is left.
 */
export function admissionWaitMs(remainingMs: number, expectedAttemptMs: number, cap: number): number {
  // Room for two attempts' worth: a grant comes at the end of a wait, when the system is busiest.
  const margin = Number.isFinite(remainingMs) ? Math.max(ADMISSION_HOP_MARGIN_MS, remainingMs / 10) : ADMISSION_HOP_MARGIN_MS;
  const usable = expectedAttemptMs > 0 ? remainingMs - 2 * expectedAttemptMs - margin : remainingMs / 2;
  return Math.max(0, Math.floor(Math.min(cap, usable)));
}

function failureNote(c: Classification): string {
  const parts = [] as string[];
  if (c.providerCode) parts.push(`code ${c.providerCode}`);
  if (c.message) parts.push(`provider message: ${c.message}`);
  return parts.join('; ');
}

function joinNotes(...notes: (string | undefined)[]): string | undefined {
  const kept = notes.filter((n): n is string => !!n);
  return kept.length > 0 ? kept.join('; ') : undefined;
}

/**
 * The attempt loop of one call: candidates in order, each attempt admitted by
 * the limiter, failures classified and acted on per the outcome table (retry
 * with backoff on the same deployment, fall back, or stop), never past the
 * caller's deadline. Transport-free: every side effect is a port, so it is
 * unit-tested with fakes and shared by Complete and StreamComplete.
 */
export async function runAttempts<T>(candidates: readonly Candidate[], ports: AttemptPorts<T>, options: LoopOptions): Promise<LoopResult<T>> {
  const attempts: AttemptRecord[] = [];
  const skipped: SkippedCandidate[] = [];
  const queue = [...candidates];
  let pending = options.firstAdmission;
  options.retryBudget?.deposit();
  let last: { classification: Classification; candidate: Candidate } | undefined;
  const fail = (reason: string, extra: { cancelled?: boolean; deadlineExceeded?: boolean } = {}): LoopResult<T> => {
    if (pending) ports.unused?.(pending);
    pending = undefined;
    return {
      ok: false,
      attempts,
      skipped,
      last,
      reason,
      cancelled: extra.cancelled ?? false,
      deadlineExceeded: extra.deadlineExceeded ?? false,
    };
  };

  /** Time kept back from the deadline for the answer to reach the caller. */
  const answerDelay = () => options.answerDelayMs?.() ?? 0;
  const reserve = () => ANSWER_MARGIN_MS + answerDelay();

  while (queue.length > 0) {
    const candidate = queue.shift()!;
    let onThisDeployment = 0;
    let waitedForAdmission = false;
    for (;;) {
      if (options.signal?.aborted) return fail('cancelled by caller', { cancelled: true });
      const remainingBefore = options.deadlineAt - ports.clock.now() - reserve();
      const expected = ports.expectedLatencyMs?.(candidate) ?? 0;
      // After a wait for quota, an attempt is counted that much longer: its
      // answer is read by the same late loop, and the grant came when it is
      // busiest (a window reopening for its whole queue). Whether an attempt
      // fits at all is still judged on its observed latency alone.
      const expectedAfterWait = expected + answerDelay();
      if (waitedForAdmission && remainingBefore < 2 * expectedAfterWait + LATE_GRANT_MIN_MS) {
        // Our turn in the limiter's queue came, but too late to finish an
        // attempt: the caller ran out of quota, not of patience. Hand it back
        // (it is free now, for the next caller) and say so.
        if (pending) ports.unused?.(pending);
        pending = undefined;
        skipped.push({ name: candidate.name, reason: 'limiter: quota freed up too late to answer before the deadline', retryAt: ports.clock.now(), quota: true });
        if (queue.length === 0) return fail('no quota in time for the deadline');
        break;
      }
      if (remainingBefore <= 0) return fail('deadline exceeded', { deadlineExceeded: true });
      // A refusal already in hand is the reason this candidate cannot go now (a
      // quota skip, with the limiter's retry-after), whatever its latency.
      const refused = pending !== undefined && !pending.granted;
      if (expected > remainingBefore && !refused) {
        // Starting it would only burn quota and an upstream slot: a faster candidate may still fit.
        skipped.push({ name: candidate.name, reason: `observed latency ${Math.round(expected)} ms exceeds the ${Math.round(remainingBefore)} ms left before the deadline`, retryAt: 0, quota: false });
        if (pending) ports.unused?.(pending);
        pending = undefined;
        if (queue.length === 0) return fail('no candidate can answer before the deadline', { deadlineExceeded: true });
        break;
      }

      const admission = pending ?? (await ports.admit(candidate));
      pending = undefined;
      if (!admission.granted) {
        // The last candidate, short of quota: waiting our turn in the limiter's
        // queue beats failing, when the wait and an attempt fit the deadline.
        // Earlier candidates are skipped instead: the next one may answer now.
        const fromBreaker = admission.source === 'breaker';
        const maxWaitMs = admissionWaitMs(remainingBefore, expectedAfterWait, options.maxAdmissionWaitMs ?? 0);
        const worthWaiting = admission.retryAfterMs <= maxWaitMs || admission.mayFreeSooner === true;
        if (!fromBreaker && !admission.final && !waitedForAdmission && queue.length === 0 && maxWaitMs > 0 && worthWaiting) {
          waitedForAdmission = true;
          pending = await ports.admit(candidate, maxWaitMs);
          continue;
        }
        skipped.push({
          name: candidate.name,
          reason: `${fromBreaker ? 'breaker' : 'limiter'}: ${admission.reason}`,
          retryAt: ports.clock.now() + admission.retryAfterMs,
          quota: !fromBreaker,
        });
        if (admission.final) return fail(`limiter: ${admission.reason}`);
        break;
      }

      if (admission.probe === undefined && ports.mayDispatch && !ports.mayDispatch(candidate)) {
        // The breaker opened it between planning and sending: the request would
        // be one the cluster agreed not to make.
        ports.unused?.(admission);
        skipped.push({ name: candidate.name, reason: 'breaker: opened while the call was being admitted', retryAt: 0, quota: false });
        break;
      }
      onThisDeployment += 1;
      const started = ports.clock.now();
      const remaining = options.deadlineAt - started - reserve();
      if (remaining <= 0) {
        ports.afterAttempt({ candidate, admission, record: baseRecord(candidate, attempts.length + 1, 0, admission), cancelled: true });
        return fail('deadline exceeded', { deadlineExceeded: true });
      }
      const record = baseRecord(candidate, attempts.length + 1, 0, admission);
      const next = queue[0];
      const keep = keepForNextCandidate(remaining, expected, next ? (ports.expectedLatencyMs?.(next) ?? 0) : 0);
      const timeoutMs = Math.min(candidate.deployment.timeoutMs, remaining - keep);
      try {
        const value = await ports.call(candidate, timeoutMs);
        record.latencyMs = ports.clock.now() - started;
        const upstreamRequestId = ports.upstreamRequestIdOf?.(value);
        if (upstreamRequestId) record.upstreamRequestId = upstreamRequestId;
        attempts.push(record);
        ports.afterAttempt({ candidate, admission, record, value });
        return { ok: true, value, candidate, attempts, skipped };
      } catch (err) {
        record.latencyMs = ports.clock.now() - started;
        if (isCancelledError(err)) {
          record.note = joinNotes(record.note, 'cancelled by caller');
          ports.afterAttempt({ candidate, admission, record, cancelled: true });
          return fail('cancelled by caller', { cancelled: true });
        }
        if (!isProviderError(err)) {
          // Not a provider failure (a bug or bad neutral input): account for the
          // attempt, then let the boundary turn it into INTERNAL.
          ports.afterAttempt({ candidate, admission, record, cancelled: true });
          throw err;
        }
        const c = err.classification;
        record.errorClass = c.errorClass;
        if (c.upstreamRequestId) record.upstreamRequestId = c.upstreamRequestId;
        if (c.retryAfterMs !== undefined) record.retryAfterMs = c.retryAfterMs;
        if (c.status !== undefined) record.httpStatus = c.status;
        record.note = joinNotes(record.note, failureNote(c));
        // A timeout that used up what the deadline allowed (timers and the wall
        // clock may differ by a millisecond) was the deadline's, not the deployment's.
        const cutByDeadline = c.errorClass === 'TIMEOUT' && timeoutMs < candidate.deployment.timeoutMs && record.latencyMs >= timeoutMs - 1;
        const cutForNext = cutByDeadline && keep > 0;
        const blameless = cutByDeadline && !cutForNext && expected > 0 && record.latencyMs < CUT_BLAMES_DEPLOYMENT_AFTER * expected;
        if (cutForNext) record.note = joinNotes(record.note, `cut at ${Math.round(timeoutMs)} ms, keeping ${Math.round(keep)} ms for ${next!.name}`);
        if (blameless) record.note = joinNotes(record.note, `cut by the caller's deadline within ${CUT_BLAMES_DEPLOYMENT_AFTER}x the deployment's usual ${Math.round(expected)} ms: not a breaker failure`);
        attempts.push(record);
        last = { classification: c, candidate };
        ports.afterAttempt({ candidate, admission, record, classification: c, ...(blameless ? { cutByDeadline: true } : {}) });

        if (ports.committed?.()) return fail('failed after output was sent');
        const planned = decideNextStep(
          {
            errorClass: c.errorClass,
            retryable: c.retryable,
            retryAfterMs: c.retryAfterMs,
            attemptsOnDeployment: onThisDeployment,
            hasMoreCandidates: queue.length > 0 && (c.errorClass !== 'CONTEXT_LENGTH' || options.contextFallback !== false),
            remainingMs: options.deadlineAt - ports.clock.now() - answerDelay(),
            expectedAttemptMs: ports.expectedLatencyMs?.(candidate) ?? 0,
            contextWindow: candidate.deployment.contextWindow,
            fallbackOnContentFilter: options.fallbackOnContentFilter,
          },
          options.retry,
          ports.rng,
        );
        // The time kept for the next candidate is its: not a retry of the one that used up the rest.
        const step: NextStep = cutForNext && planned.kind === 'retry' ? { kind: 'fallback' } : planned;
        if (step.kind === 'stop') return fail(cutByDeadline ? ATTEMPT_CUT_BY_DEADLINE : step.reason);
        // A failed half-open probe is the breaker's verdict (back to OPEN); a retry
        // here would be a second request on the deployment that holds no permit.
        // Likewise once the breaker opened the deployment while this call was in flight.
        const probeFailed = admission.probe !== undefined && c.countsTowardBreaker && !blameless;
        const openedMeanwhile = !probeFailed && ports.mayDispatch !== undefined && !ports.mayDispatch(candidate);
        if (step.kind === 'retry' && (probeFailed || openedMeanwhile)) {
          if (queue.length === 0) return fail(probeFailed ? 'half-open probe failed' : 'deployment opened by the breaker');
          record.note = joinNotes(record.note, probeFailed ? 'half-open probe failed: not retried' : 'breaker opened: not retried');
        }
        const retrySame = step.kind === 'retry' && !probeFailed && !openedMeanwhile;
        // Another attempt after a transient failure (same deployment, or the next
        // one) is load a retry storm is made of: it must be paid from the budget.
        // Except a fallback to a deployment not known to be failing: with every
        // deployment sick they all are known failing soon, and storms stay bounded.
        const freeFallback = !retrySame && queue.length > 0 && ports.knownHealthy !== undefined && ports.knownHealthy(queue[0]!);
        const paid = retrySame || (isTransient(c.errorClass) && !freeFallback);
        if (paid && options.retryBudget && !options.retryBudget.tryWithdraw()) {
          // Spent: no retry here, but the way around a sick deployment stays open.
          const next = queue[0];
          if (!retrySame || next === undefined || !ports.knownHealthy?.(next)) return fail('retry budget exhausted: failing fast');
          record.note = joinNotes(record.note, 'retry budget spent: falling back instead of retrying');
          break;
        }
        if (step.kind === 'retry' && retrySame) {
          try {
            await ports.sleep(step.delayMs, options.signal);
          } catch {
            return fail('cancelled by caller', { cancelled: true });
          }
          continue;
        }
        if (step.kind !== 'retry' && step.minContextWindow !== undefined) {
          const min = step.minContextWindow;
          for (let i = queue.length - 1; i >= 0; i--) {
            if (queue[i]!.deployment.contextWindow < min) {
              skipped.push({ name: queue[i]!.name, reason: `context window ${queue[i]!.deployment.contextWindow} is not larger than ${min - 1}`, retryAt: 0, quota: false });
              queue.splice(i, 1);
            }
          }
          if (queue.length === 0) return fail('no candidate with a larger context window');
        }
        break;
      }
    }
  }
  return fail(attempts.length === 0 ? 'no candidate could be tried' : 'every candidate failed');
}

function baseRecord(candidate: Candidate, attempt: number, latencyMs: number, admission: { note?: string; degraded?: DegradedReason }): AttemptRecord {
  const r: AttemptRecord = {
    deployment: candidate.name,
    provider: candidate.deployment.provider,
    model: candidate.deployment.model,
    latencyMs,
    attempt,
  };
  if (admission.note) r.note = admission.note;
  if (admission.degraded) r.degraded = admission.degraded;
  return r;
}
