import { create } from '@bufbuild/protobuf';
import { CacheStatus, CompleteResponseSchema } from '@switchyard/contracts';
import { status, type AppError } from '@switchyard/grpc';
import { CLASS_POLICY, type ErrorClass } from '@switchyard/providers';
import { ManualClock } from '@switchyard/util';
import type { BudgetHold, BudgetPeer } from '../adapters/budget-peer';
import type { CacheLookup, CachePeer } from '../adapters/cache-peer';
import type { LoopResult } from '../domain/run-attempts';
import { candidate } from '../domain/test-fixtures';
import type { RouterContext } from '../router-context';
import type { AttemptAdmission } from './admission';
import { createAnswerStep } from './answer';
import type { PreparedCall } from './prepare-call';

const FALLBACK = 'The assistant is taking a short break — please try again shortly';

function setup(route: { fallbackAnswer?: string } = {}) {
  const spent = { commits: [] as number[], releases: 0, stores: 0 };
  const leases = { storedWith: [] as (string | undefined)[], released: [] as string[] };
  const budget: BudgetPeer = { reserve: () => Promise.reject(new Error('unused')), commit: (_h, micros) => spent.commits.push(micros), release: () => spent.releases++ };
  const cache: CachePeer = {
    lookup: () => Promise.reject(new Error('unused')),
    store: (r) => {
      spent.stores++;
      leases.storedWith.push(r.leaseId);
    },
    releaseLease: (r) => leases.released.push(r.leaseId),
    claimIdempotency: () => Promise.reject(new Error('unused')),
  };
  const admission: AttemptAdmission = { admit: () => Promise.reject(new Error('unused')), settle: () => undefined };
  const gateway = { defaults: { retry: { maxAttempts: 3, baseMs: 1000, capMs: 30_000 } }, deployments: { a: { contextWindow: 8000 } } } as unknown as RouterContext['gateway'];
  const step = createAnswerStep({ budget, cache, admission, clock: new ManualClock(1_000_000), gateway });
  const p = {
    requestId: 'req-1',
    owner: { tenantId: 't' },
    call: { routeName: 'chat', route: { candidates: [{ deployment: 'a' }], ...route }, cache: { read: true, write: true } },
    plan: { usable: [candidate('a')], skipped: [] },
    inputTokens: new Map([['a', 10]]),
    cacheKey: 'chat:k',
  } as unknown as PreparedCall;
  return { step, p, spent, leases };
}

const hold: BudgetHold = { kind: 'granted', reservationId: 'r1' };
const fan = (cache: CacheLookup = { kind: 'miss' }) => ({ cache, budget: hold });

function failed(errorClass: ErrorClass, extra: Partial<Extract<LoopResult<never>, { ok: false }>> = {}): LoopResult<never> {
  return {
    ok: false,
    attempts: [{ deployment: 'a', provider: 'openai', model: 'm', errorClass, latencyMs: 5, attempt: 1 }],
    skipped: [],
    last: { classification: { errorClass, ...CLASS_POLICY[errorClass], message: 'upstream says no' }, candidate: candidate('a') },
    reason: 'every candidate failed',
    cancelled: false,
    deadlineExceeded: false,
    ...extra,
  };
}

const never = (): never => {
  throw new Error('no upstream answer');
};

function thrown(fn: () => unknown): AppError {
  try {
    fn();
  } catch (err) {
    return err as AppError;
  }
  throw new Error('expected a throw');
}

describe('answer step: the route\'s static fallback answer', () => {
  it('serves it when every candidate failed and no stale answer exists: degraded with the reason, free, never cached, budget released', () => {
    const { step, p, spent } = setup({ fallbackAnswer: FALLBACK });
    const answer = step.afterAttempts(p, fan(), failed('OVERLOADED'), never);
    expect(answer.response.content).toBe(FALLBACK);
    expect(answer.response.degraded).toBe(true);
    expect(answer.response.degradedReason).toBe('static fallback answer: every candidate failed and no stale answer was cached');
    expect(answer.response.costMicros).toBe(0n);
    expect(answer.response.cacheStatus).toBe(CacheStatus.MISS);
    expect(answer.response.attempts).toHaveLength(1);
    expect(answer.replayable).toBe(false);
    expect(spent).toEqual({ commits: [], releases: 1, stores: 0 });
  });

  it('is off unless configured: the error listing every attempt', () => {
    const { step, p } = setup();
    expect(thrown(() => step.afterAttempts(p, fan(), failed('OVERLOADED'), never)).code).toBe(status.UNAVAILABLE);
  });

  it('a stale answer wins over it', () => {
    const { step, p } = setup({ fallbackAnswer: FALLBACK });
    const stale = create(CompleteResponseSchema, { content: 'yesterday' });
    const answer = step.afterAttempts(p, fan({ kind: 'stale', response: stale, ageMs: 5 }), failed('OVERLOADED'), never);
    expect(answer.response.content).toBe('yesterday');
    expect(answer.response.cacheStatus).toBe(CacheStatus.STALE);
  });

  it('never hides a request the provider rejected as wrong, nor answers a caller who left', () => {
    const { step, p } = setup({ fallbackAnswer: FALLBACK });
    expect(thrown(() => step.afterAttempts(p, fan(), failed('INVALID_REQUEST'), never)).code).toBe(status.INVALID_ARGUMENT);
    expect(thrown(() => step.afterAttempts(p, fan(), failed('CONTENT_FILTER'), never)).code).toBe(status.INVALID_ARGUMENT);
    expect(thrown(() => step.afterAttempts(p, fan(), failed('CONTEXT_LENGTH'), never)).code).toBe(status.FAILED_PRECONDITION);
    expect(thrown(() => step.afterAttempts(p, fan(), failed('TIMEOUT', { cancelled: true }), never)).code).toBe(status.CANCELLED);
  });

  it('also covers a call whose every candidate is rate limited', () => {
    const { step, p } = setup({ fallbackAnswer: FALLBACK });
    expect(step.afterAttempts(p, fan(), failed('RATE_LIMITED'), never).response.content).toBe(FALLBACK);
  });
});

describe('answer step: coalesced calls (the cache key\'s single-flight lease)', () => {
  const ok = (): LoopResult<{ content: string }> => ({ ok: true, value: { content: 'fresh' }, candidate: candidate('a'), attempts: [{ deployment: 'a', provider: 'openai', model: 'm', latencyMs: 5, attempt: 1 }], skipped: [] });
  const upstream = (v: { content: string }) => ({ content: v.content, finishReason: 'stop' as const, usage: { inputTokens: 10, outputTokens: 5 } });

  it('answers an identical call that waited with the leader\'s answer: COALESCED, free, nothing sent, budget handed back', () => {
    const { step, p, spent } = setup();
    const response = create(CompleteResponseSchema, { content: 'the leader\'s answer', costMicros: 123n });
    const answer = step.beforeAttempts(p, fan({ kind: 'hit', response, ageMs: 0, coalesced: true }));
    expect(answer?.content).toBe('the leader\'s answer');
    expect(answer?.cacheStatus).toBe(CacheStatus.COALESCED);
    expect(answer?.costMicros).toBe(0n);
    expect(answer?.requestId).toBe('req-1');
    expect(spent.releases).toBe(1);
  });

  it('a leader stores its answer with the lease, which wakes the identical calls waiting on it', () => {
    const { step, p, leases } = setup();
    step.afterAttempts(p, fan({ kind: 'miss', leaseId: 'lease-1' }), ok(), upstream);
    expect(leases).toEqual({ storedWith: ['lease-1'], released: [] });
  });

  it('a leader that fails gives the lease back, so a waiting identical call runs itself at once', () => {
    const { step, p, leases } = setup();
    expect(() => step.afterAttempts(p, fan({ kind: 'miss', leaseId: 'lease-1' }), failed('OVERLOADED'), never)).toThrow();
    expect(leases).toEqual({ storedWith: [], released: ['lease-1'] });
  });

  it('a leader refused by the budget gives the lease back too', () => {
    const { step, p, leases } = setup();
    expect(() => step.beforeAttempts(p, { cache: { kind: 'miss', leaseId: 'lease-1' }, budget: { kind: 'denied', denial: { kind: 'store-unavailable' } } })).toThrow();
    expect(leases.released).toEqual(['lease-1']);
  });
});
