import { create } from '@bufbuild/protobuf';
import { CacheStatus, CompleteResponseSchema, FinishReason as FinishReasonProto, type Attempt, type CompleteResponse } from '@switchyard/contracts';
import { status } from '@switchyard/grpc';
import type { FinishReason, ToolCall, Usage } from '@switchyard/providers';
import type { BudgetPeer } from '../adapters/budget-peer';
import type { CacheLookup, CachePeer } from '../adapters/cache-peer';
import type { Candidate } from '../domain/candidates';
import { degradedReasonText, type DegradedReason } from '../domain/degraded';
import type { LoopResult } from '../domain/run-attempts';
import { costMicros } from '../domain/token-accounting';
import type { RouterContext } from '../router-context';
import type { AttemptAdmission } from './admission';
import { budgetError, failureError } from './caller-errors';
import type { FanOut } from './fan-out';
import type { PreparedCall } from './prepare-call';
import { finishReasonProto, servedBy, toAttemptProto } from './response-shapes';

/** A successful upstream answer in the provider-neutral shape both RPCs reduce theirs to. */
export interface UpstreamAnswer {
  content: string;
  finishReason: FinishReason;
  usage: Usage;
  /** The calls the model made (finish reason tool_calls), in order. */
  toolCalls?: ToolCall[];
  /** The model's refusal text, when it declined. */
  refusal?: string;
  /** The stop sequence that ended the answer, when the provider said which. */
  stopSequence?: string;
}

/** The call's answer, and whether it may be replayed to a duplicate with the same idempotency key. */
export interface Answer {
  response: CompleteResponse;
  /** False for the route's static fallback answer: a retry with the same key should get a real one. */
  replayable: boolean;
}

/** Provider failures that say the request itself is wrong: a static fallback answer would hide them. */
const CALLER_FAULTS = new Set(['INVALID_REQUEST', 'CONTENT_FILTER', 'CONTEXT_LENGTH']);

/**
 * Turns what the call found out into its answer, the same for Complete and
 * StreamComplete (a stream sends the answer's content as deltas first, then
 * the rest as its Final): steps 7 and 8 of the call, plus the cache hit that
 * ends a call before step 4.
 */
export interface AnswerStep {
  /** Before any attempt: a fresh cache hit answers (what the fan-out holds is handed back); a budget denial is thrown. */
  beforeAttempts(p: PreparedCall, fan: FanOut): CompleteResponse | undefined;
  /**
   * After the attempts: a success is charged, cached and answered; a failure
   * hands the budget back and is saved by a stale answer when policy allows,
   * else thrown as the error that lists every attempt.
   */
  afterAttempts<T>(p: PreparedCall, fan: FanOut, result: LoopResult<T>, upstream: (value: T) => UpstreamAnswer, also?: DegradedReason): Answer;
  /** A stream that failed after output reached the caller: charge what was produced; returns the cost. */
  chargePartial(p: PreparedCall, fan: FanOut, c: Candidate, usage: Usage): number;
}

/** Cache status of an answer that came from upstream. */
export function cacheStatusFor(lookup: CacheLookup): CacheStatus {
  switch (lookup.kind) {
    case 'bypass':
      return CacheStatus.BYPASS;
    case 'unavailable':
      return CacheStatus.UNAVAILABLE;
    default:
      return CacheStatus.MISS;
  }
}

/** Why an upstream answer is degraded: our own dependencies' fallbacks met along the way. */
function degradedReasons(fan: FanOut, attempts: readonly { degraded?: DegradedReason }[], also: DegradedReason | undefined): (DegradedReason | undefined)[] {
  return [fan.budget.kind === 'denied' ? undefined : fan.budget.degraded, fan.cache.kind === 'unavailable' ? { kind: 'cache-unavailable' } : undefined, ...attempts.map((a) => a.degraded), also];
}

/** A cached answer re-dressed for this call (HIT or STALE). */
function fromCache(p: PreparedCall, lookup: Extract<CacheLookup, { kind: 'hit' | 'stale' }>, attempts: Attempt[], degraded?: DegradedReason): CompleteResponse {
  const reason = degraded ? degradedReasonText([degraded]) : '';
  return create(CompleteResponseSchema, {
    ...lookup.response,
    costMicros: 0n,
    attempts,
    cacheStatus: lookup.kind === 'stale' ? CacheStatus.STALE : lookup.coalesced ? CacheStatus.COALESCED : CacheStatus.HIT,
    degraded: reason !== '',
    degradedReason: reason,
    requestId: p.requestId,
    cacheAgeMs: lookup.ageMs,
  });
}

export function createAnswerStep(deps: { budget: BudgetPeer; cache: CachePeer; admission: AttemptAdmission } & Pick<RouterContext, 'clock' | 'gateway'>): AnswerStep {
  const { budget, cache, admission, clock, gateway } = deps;
  /** No answer will be stored: identical calls waiting on this one's lease run themselves now. */
  const releaseLease = (p: PreparedCall, fan: FanOut) => {
    if ((fan.cache.kind === 'miss' || fan.cache.kind === 'stale') && fan.cache.leaseId) {
      cache.releaseLease({ tenant: p.owner.tenantId, key: p.cacheKey, leaseId: fan.cache.leaseId, requestId: p.requestId });
    }
  };
  const leaseOf = (fan: FanOut) => ((fan.cache.kind === 'miss' || fan.cache.kind === 'stale') && fan.cache.leaseId ? { leaseId: fan.cache.leaseId } : {});
  return {
    beforeAttempts(p, fan) {
      if (fan.cache.kind === 'hit') {
        admission.settle(p, fan.firstAdmission, 'cancelled');
        budget.release(fan.budget, p.requestId);
        return fromCache(p, fan.cache, []);
      }
      if (fan.budget.kind === 'denied') {
        admission.settle(p, fan.firstAdmission, 'cancelled');
        releaseLease(p, fan);
        throw budgetError(fan.budget.denial, { tenant: p.owner.tenantId, requestId: p.requestId });
      }
      return undefined;
    },

    afterAttempts(p, fan, result, upstream, also) {
      if (result.ok) {
        const { candidate } = result;
        const answer = upstream(result.value);
        const cost = costMicros(candidate, answer.usage);
        budget.commit(fan.budget, cost, p.requestId);
        const dropped = p.truncatedTurns.get(candidate.name);
        const truncated: DegradedReason | undefined = dropped ? { kind: 'context-truncated', droppedTurns: dropped } : undefined;
        const reason = degradedReasonText([...degradedReasons(fan, result.attempts, also), truncated]);
        const response = create(CompleteResponseSchema, {
          content: answer.content,
          finishReason: finishReasonProto(answer.finishReason),
          toolCalls: (answer.toolCalls ?? []).map((c) => ({ id: c.id, name: c.name, arguments: c.arguments })),
          refusal: answer.refusal ?? '',
          stopSequence: answer.stopSequence ?? '',
          usage: answer.usage,
          costMicros: BigInt(cost),
          servedBy: servedBy(candidate),
          attempts: result.attempts.map(toAttemptProto),
          cacheStatus: cacheStatusFor(fan.cache),
          degraded: reason !== '',
          degradedReason: reason,
          requestId: p.requestId,
        });
        if (p.call.cache.write) cache.store({ tenant: p.owner.tenantId, key: p.cacheKey, response, ...leaseOf(fan), requestId: p.requestId });
        return { response, replayable: true };
      }

      budget.release(fan.budget, p.requestId);
      releaseLease(p, fan);
      const failure = { ...result, skipped: [...p.plan.skipped, ...result.skipped] };
      if (fan.cache.kind === 'stale' && !failure.cancelled && failure.last?.classification.errorClass !== 'CONTENT_FILTER') {
        return { response: fromCache(p, fan.cache, failure.attempts.map(toAttemptProto), { kind: 'stale-cache' }), replayable: true };
      }
      const error = failureError(failure, {
        requestId: p.requestId,
        routeName: p.call.routeName,
        inputTokens: p.inputTokens,
        largestContextWindow: Math.max(...p.call.route.candidates.map((c) => gateway.deployments[c.deployment]?.contextWindow ?? 0)),
        now: clock.now(),
        defaultRetryMs: gateway.defaults.retry.baseMs,
      });
      // The last line of graceful degradation: the route's static answer, for an
      // outage only (never for a request the providers rejected as wrong, nor a
      // caller who left). Nothing was spent, so nothing is charged or cached.
      const fallbackAnswer = p.call.route.fallbackAnswer;
      const outage = !failure.cancelled && !CALLER_FAULTS.has(failure.last?.classification.errorClass ?? '') && error.code !== status.FAILED_PRECONDITION;
      if (fallbackAnswer !== undefined && outage) {
        const reason = degradedReasonText([{ kind: 'fallback-answer' }]);
        return {
          response: create(CompleteResponseSchema, {
            content: fallbackAnswer,
            finishReason: FinishReasonProto.STOP,
            usage: { inputTokens: 0, outputTokens: 0 },
            costMicros: 0n,
            attempts: failure.attempts.map(toAttemptProto),
            cacheStatus: cacheStatusFor(fan.cache),
            degraded: true,
            degradedReason: reason,
            requestId: p.requestId,
          }),
          replayable: false,
        };
      }
      throw error;
    },

    chargePartial(p, fan, c, usage) {
      const cost = costMicros(c, usage);
      budget.commit(fan.budget, cost, p.requestId);
      releaseLease(p, fan);
      return cost;
    },
  };
}

