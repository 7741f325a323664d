import { status } from '@switchyard/grpc';
import { CLASS_POLICY, type ErrorClass } from '@switchyard/providers';
import { ManualClock } from '@switchyard/util';
import type { SkippedCandidate } from '../domain/candidates';
import type { AttemptRecord, LoopResult } from '../domain/run-attempts';
import { candidate } from '../domain/test-fixtures';
import { failureError as mapFailure, type FailedCall } from './caller-errors';

const clock = new ManualClock(1_000_000);
const call = (): FailedCall => ({
  requestId: 'req-1',
  routeName: 'chat',
  inputTokens: new Map([
    ['a', 20000],
    ['b', 20000],
  ]),
  // Context windows of the route's candidates a (8000) and b (16000).
  largestContextWindow: 16000,
  now: clock.now(),
  defaultRetryMs: 1000,
});
const failureError = (f: Parameters<typeof mapFailure>[0]) => mapFailure(f, call());

function attempt(deployment: string, errorClass: ErrorClass, extra: Partial<AttemptRecord> = {}): AttemptRecord {
  return { deployment, provider: 'openai', model: 'm', errorClass, latencyMs: 5, attempt: 1, ...extra };
}

function failure(attempts: AttemptRecord[], skipped: SkippedCandidate[] = [], lastClass?: ErrorClass): Extract<LoopResult<unknown>, { ok: false }> {
  const last = lastClass
    ? { classification: { errorClass: lastClass, ...CLASS_POLICY[lastClass], message: 'upstream says no' }, candidate: candidate(attempts.at(-1)?.deployment ?? 'a') }
    : undefined;
  return { ok: false, attempts, skipped, last, reason: 'every candidate failed', cancelled: false, deadlineExceeded: false };
}

describe('failureError', () => {
  it('maps transient failures to UNAVAILABLE with the smallest Retry-After as RetryInfo and every attempt in ErrorInfo', () => {
    const err = failureError(failure([attempt('a', 'OVERLOADED', { httpStatus: 503, retryAfterMs: 700, upstreamRequestId: 'u1' }), attempt('b', 'TIMEOUT')], [], 'TIMEOUT'));
    expect(err.code).toBe(status.UNAVAILABLE);
    expect(err.details.retryDelayMs).toBe(700);
    expect(err.details.errorInfo?.metadata).toMatchObject({
      attempts: '2',
      attempt_1: 'deployment=a class=OVERLOADED latency_ms=5 upstream_request_id=u1 http_status=503 retry_after_ms=700',
      attempt_2: 'deployment=b class=TIMEOUT latency_ms=5 upstream_request_id= http_status=0',
    });
  });

  it('says when the loop stopped early: the retry budget was spent, so the other candidates were never tried', () => {
    const f = { ...failure([attempt('a', 'OVERLOADED', { httpStatus: 503 })], [], 'OVERLOADED'), reason: 'retry budget exhausted: failing fast' };
    const err = failureError(f);
    expect(err.code).toBe(status.UNAVAILABLE);
    expect(err.message).toBe('every candidate of route chat failed: a: OVERLOADED (503) (stopped: retry budget exhausted: failing fast)');
    expect(err.details.errorInfo?.metadata.stopped_because).toBe('retry budget exhausted: failing fast');
  });

  it('maps quota-only failures (429s, quota skips, limiter denials) to RESOURCE_EXHAUSTED with QuotaFailure', () => {
    const err = failureError(failure([attempt('a', 'RATE_LIMITED', { retryAfterMs: 2000 })], [{ name: 'b', reason: 'limiter: deployment b RPM exhausted', retryAt: 1_000_500, quota: true }], 'RATE_LIMITED'));
    expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(err.details.retryDelayMs).toBe(500);
    expect(err.details.quotaFailure).toEqual([
      { subject: 'deployment:a', description: 'rate limited by the provider' },
      { subject: 'deployment:b', description: 'limiter: deployment b RPM exhausted' },
    ]);
  });

  it('keeps UNAVAILABLE when a circuit-open skip is part of the story', () => {
    const err = failureError(failure([], [{ name: 'a', reason: 'circuit open', retryAt: 1_003_000, quota: false }]));
    expect(err.code).toBe(status.UNAVAILABLE);
    expect(err.details.retryDelayMs).toBe(3000);
    expect(err.details.errorInfo?.metadata.skipped_a).toBe('circuit open');
  });

  it('says how large the prompt is and the largest window on CONTEXT_LENGTH', () => {
    const err = failureError(failure([attempt('a', 'CONTEXT_LENGTH'), attempt('b', 'CONTEXT_LENGTH')], [], 'CONTEXT_LENGTH'));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.message).toBe("prompt is too long: 20000 tokens > 16000 maximum context length (the largest context window among the route's candidates)");
  });

  it('answers FAILED_PRECONDITION when every candidate was skipped before sending because its window is too small', () => {
    const tooSmall = (name: string, window: number) => ({ name, reason: `context window of ${window} tokens is smaller than the estimated prompt of 20000`, retryAt: 0, quota: false, promptTokens: 20000 });
    const err = failureError(failure([], [tooSmall('a', 8000), tooSmall('b', 16000)]));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.message).toBe("prompt is too long: 20000 tokens > 16000 maximum context length (the largest context window among the route's candidates)");
  });

  it('keeps UNAVAILABLE when a candidate that could hold the prompt was skipped for its health', () => {
    const err = failureError(
      failure([], [{ name: 'a', reason: 'context window too small', retryAt: 0, quota: false, promptTokens: 20000 }, { name: 'b', reason: 'circuit open', retryAt: 1_003_000, quota: false }]),
    );
    expect(err.code).toBe(status.UNAVAILABLE);
  });

  it("passes the provider's message through as INVALID_ARGUMENT on INVALID_REQUEST", () => {
    const err = failureError(failure([attempt('a', 'INVALID_REQUEST', { httpStatus: 400 })], [], 'INVALID_REQUEST'));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.message).toBe('provider rejected the request: rejected by deployment a: upstream says no');
    expect(err.details.badRequest?.[0]?.field).toBe('messages');
  });

  it('reports a content-filter refusal clearly', () => {
    const err = failureError(failure([attempt('a', 'CONTENT_FILTER')], [], 'CONTENT_FILTER'));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.message).toMatch(/^refused by the content filter of deployment a/);
  });

  it('uses the retry base as the hint when nothing better is known', () => {
    const err = failureError(failure([attempt('a', 'NETWORK')], [], 'NETWORK'));
    expect(err.details.retryDelayMs).toBe(1000);
  });
});
