import { classEffects, decideNextStep, type FailureFacts } from './outcome-action';
import { fixedRng } from './test-fixtures';

const retry = { maxAttempts: 3, baseMs: 100, capMs: 1000 };
const rng = fixedRng(0.5);
function facts(overrides: Partial<FailureFacts>): FailureFacts {
  return {
    errorClass: 'OVERLOADED',
    retryable: true,
    attemptsOnDeployment: 1,
    hasMoreCandidates: true,
    remainingMs: 60_000,
    contextWindow: 8000,
    fallbackOnContentFilter: false,
    ...overrides,
  };
}

describe('decideNextStep', () => {
  it.each(['OVERLOADED', 'SERVER_ERROR', 'TIMEOUT', 'NETWORK'] as const)('retries %s on the same deployment with backoff', (errorClass) => {
    expect(decideNextStep(facts({ errorClass }), retry, rng)).toEqual({ kind: 'retry', delayMs: 50 });
  });

  it('falls back after maxAttempts on one deployment', () => {
    expect(decideNextStep(facts({ attemptsOnDeployment: 3 }), retry, rng)).toEqual({ kind: 'fallback' });
  });

  it('stops after maxAttempts when no candidate is left', () => {
    expect(decideNextStep(facts({ attemptsOnDeployment: 3, hasMoreCandidates: false }), retry, rng).kind).toBe('stop');
  });

  it('honours Retry-After, and skips the retry when the wait does not fit the deadline', () => {
    expect(decideNextStep(facts({ retryAfterMs: 400 }), retry, fixedRng(0))).toEqual({ kind: 'retry', delayMs: 400 });
    expect(decideNextStep(facts({ retryAfterMs: 40_000, remainingMs: 60_000 }), retry, fixedRng(0))).toEqual({ kind: 'fallback' });
  });

  it('does not retry when the provider said x-should-retry: false', () => {
    expect(decideNextStep(facts({ retryable: false }), retry, rng)).toEqual({ kind: 'fallback' });
  });

  it('RATE_LIMITED moves to the next candidate at once', () => {
    expect(decideNextStep(facts({ errorClass: 'RATE_LIMITED', retryAfterMs: 100 }), retry, rng)).toEqual({ kind: 'fallback' });
  });

  it('RATE_LIMITED on the last candidate waits only if it fits the deadline', () => {
    const last = { errorClass: 'RATE_LIMITED' as const, hasMoreCandidates: false };
    expect(decideNextStep(facts({ ...last, retryAfterMs: 1000 }), retry, fixedRng(0))).toEqual({ kind: 'retry', delayMs: 1000 });
    expect(decideNextStep(facts({ ...last, retryAfterMs: 1000, remainingMs: 1500 }), retry, fixedRng(0)).kind).toBe('stop');
  });

  it.each(['QUOTA_EXHAUSTED', 'AUTH'] as const)('%s never retries the deployment, falls back', (errorClass) => {
    expect(decideNextStep(facts({ errorClass, retryable: false }), retry, rng)).toEqual({ kind: 'fallback' });
  });

  it('CONTEXT_LENGTH falls back only to a larger context window', () => {
    expect(decideNextStep(facts({ errorClass: 'CONTEXT_LENGTH', contextWindow: 8000 }), retry, rng)).toEqual({ kind: 'fallback', minContextWindow: 8001 });
  });

  it('CONTENT_FILTER stops unless the route falls back on it', () => {
    expect(decideNextStep(facts({ errorClass: 'CONTENT_FILTER' }), retry, rng).kind).toBe('stop');
    expect(decideNextStep(facts({ errorClass: 'CONTENT_FILTER', fallbackOnContentFilter: true }), retry, rng)).toEqual({ kind: 'fallback' });
  });

  it.each(['INVALID_REQUEST', 'STREAM_INTERRUPTED'] as const)('%s fails fast', (errorClass) => {
    expect(decideNextStep(facts({ errorClass }), retry, rng).kind).toBe('stop');
  });
});

describe('classEffects', () => {
  it('tells the limiter about rate limits and exhausted quota only', () => {
    expect(classEffects('RATE_LIMITED').observeLimiter).toBe(true);
    expect(classEffects('QUOTA_EXHAUSTED').observeLimiter).toBe(true);
    expect(classEffects('OVERLOADED').observeLimiter).toBe(false);
  });
});

describe('decideNextStep with an observed latency', () => {
  const retry = { maxAttempts: 3, baseMs: 100, capMs: 1000 };
  const base: FailureFacts = {
    errorClass: 'OVERLOADED',
    retryable: true,
    attemptsOnDeployment: 1,
    hasMoreCandidates: false,
    remainingMs: 500,
    contextWindow: 1000,
    fallbackOnContentFilter: false,
  };
  it('retries only when the wait plus the deployment latency fits the remaining time', () => {
    expect(decideNextStep({ ...base, retryAfterMs: 200, expectedAttemptMs: 250 }, retry, () => 0)).toEqual({ kind: 'retry', delayMs: 200 });
    expect(decideNextStep({ ...base, retryAfterMs: 200, expectedAttemptMs: 350 }, retry, () => 0).kind).toBe('stop');
  });
});
