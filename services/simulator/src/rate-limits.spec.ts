import { ManualClock } from '@switchyard/util';
import { createRateLimiter, TokenBucket } from './rate-limits';

describe('TokenBucket', () => {
  it('refills continuously at capacity per minute', () => {
    const b = new TokenBucket(60, 0);
    b.take(60, 0);
    expect(b.available(0)).toBe(0);
    expect(b.available(500)).toBeCloseTo(0.5);
    expect(b.available(30_000)).toBeCloseTo(30);
    expect(b.available(120_000)).toBe(60); // never above capacity
  });

  it('says how long until an amount fits, and Infinity when it never can', () => {
    const b = new TokenBucket(100, 0);
    b.take(100, 0);
    expect(b.waitFor(1, 0)).toBeCloseTo(600);
    expect(b.waitFor(50, 0)).toBeCloseTo(30_000);
    expect(b.waitFor(101, 0)).toBe(Infinity);
    expect(b.untilFull(0)).toBeCloseTo(60_000);
  });

  it('refills over a shorter period for time-scaled tests', () => {
    const b = new TokenBucket(100, 0, 2_000);
    b.take(100, 0);
    expect(b.available(1_000)).toBeCloseTo(50);
    expect(b.untilFull(1_000)).toBeCloseTo(1_000);
  });
});

describe('createRateLimiter', () => {
  const limits = { rpm: 3, tpm: 1000 };

  it('admits up to the RPM, then rejects with the wait until one request refills', () => {
    const clock = new ManualClock(0);
    const limiter = createRateLimiter(clock);
    for (let i = 0; i < 3; i++) expect(limiter.admit('gpt-4o', 'k', limits, 10).ok).toBe(true);
    const r = limiter.admit('gpt-4o', 'k', limits, 10);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.rejection).toMatchObject({ dimension: 'requests', limit: 3, used: 3, requested: 1 });
    expect(r.rejection.retryAfterMs).toBeCloseTo(20_000);
    clock.advance(20_000);
    expect(limiter.admit('gpt-4o', 'k', limits, 10).ok).toBe(true);
  });

  it('charges tokens at admission and rejects on TPM without consuming a request', () => {
    const clock = new ManualClock(0);
    const limiter = createRateLimiter(clock);
    expect(limiter.admit('d', 'k', limits, 900).ok).toBe(true);
    const r = limiter.admit('d', 'k', limits, 200);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.rejection).toMatchObject({ dimension: 'tokens', limit: 1000, used: 900, requested: 200 });
    expect(r.rejection.retryAfterMs).toBeCloseTo(6_000); // 100 missing at 1000/60s
    expect(r.snapshot.requests!.remaining).toBe(2); // the rejected call took no request
  });

  it('keeps separate buckets per API key and per deployment', () => {
    const limiter = createRateLimiter(new ManualClock(0));
    const one = { rpm: 1, tpm: null };
    expect(limiter.admit('a', 'k1', one, 1).ok).toBe(true);
    expect(limiter.admit('a', 'k1', one, 1).ok).toBe(false);
    expect(limiter.admit('a', 'k2', one, 1).ok).toBe(true);
    expect(limiter.admit('b', 'k1', one, 1).ok).toBe(true);
  });

  it('reports a request larger than the whole TPM as never admissible', () => {
    const limiter = createRateLimiter(new ManualClock(0));
    const r = limiter.admit('d', 'k', limits, 5000);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.rejection.retryAfterMs).toBe(Infinity);
  });

  it('reset() refills everything', () => {
    const limiter = createRateLimiter(new ManualClock(0));
    const one = { rpm: 1, tpm: null };
    limiter.admit('a', 'k', one, 1);
    limiter.reset();
    expect(limiter.admit('a', 'k', one, 1).ok).toBe(true);
  });
});
