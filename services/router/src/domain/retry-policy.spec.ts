import { fullJitterBackoffMs, retryDelayMs } from './retry-policy';
import { fixedRng } from './test-fixtures';

const settings = { baseMs: 1000, capMs: 30_000 };

describe('fullJitterBackoffMs', () => {
  it('draws uniformly below base * 2^(retry-1)', () => {
    expect(fullJitterBackoffMs(1, settings, fixedRng(0.5))).toBe(500);
    expect(fullJitterBackoffMs(2, settings, fixedRng(0.5))).toBe(1000);
    expect(fullJitterBackoffMs(3, settings, fixedRng(0.999))).toBe(3996);
  });

  it('never exceeds the cap', () => {
    expect(fullJitterBackoffMs(20, settings, fixedRng(0.999999))).toBeLessThan(30_000);
    expect(fullJitterBackoffMs(20, settings, fixedRng(0.5))).toBe(15_000);
  });

  it('can be zero (full jitter)', () => {
    expect(fullJitterBackoffMs(3, settings, fixedRng(0))).toBe(0);
  });
});

describe('retryDelayMs', () => {
  it('lets Retry-After win over backoff, plus at most 10 % jitter', () => {
    expect(retryDelayMs(1, 200, settings, fixedRng(0))).toBe(200);
    expect(retryDelayMs(1, 200, settings, fixedRng(0.5))).toBe(210);
  });

  it('honours a long Retry-After to within 50 ms and never sooner (jitter capped at 25 ms)', () => {
    for (const r of [0, 0.3, 0.999999]) {
      const d = retryDelayMs(1, 5000, settings, fixedRng(r));
      expect(d).toBeGreaterThanOrEqual(5000);
      expect(d).toBeLessThanOrEqual(5025);
    }
  });

  it('falls back to backoff without Retry-After', () => {
    expect(retryDelayMs(2, undefined, settings, fixedRng(0.25))).toBe(500);
  });
});
