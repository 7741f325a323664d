import { createRateLimitReports } from './rate-limit-reports';

const half = (remaining: number, limit?: number) => ({ ignored: [], requests: { remaining, ...(limit !== undefined ? { limit } : {}) } });

describe('rate-limit reports of successful answers', () => {
  it('reports a bucket below half, at zero, or without a known limit; not a bucket with plenty left', () => {
    const r = createRateLimitReports(0);
    expect(r.shouldReport('a', half(60, 100), 0)).toBe(false);
    expect(r.shouldReport('a', half(50, 100), 0)).toBe(false);
    expect(r.shouldReport('a', half(49, 100), 0)).toBe(true);
    expect(r.shouldReport('a', half(0, 100), 0)).toBe(true);
    expect(r.shouldReport('a', half(900), 0)).toBe(true); // Azure sends remaining only
    expect(r.shouldReport('a', { ignored: [] }, 0)).toBe(false);
    expect(r.shouldReport('a', undefined, 0)).toBe(false);
  });

  it('sends at most one report per deployment per interval', () => {
    const r = createRateLimitReports(100);
    expect(r.shouldReport('a', half(1, 100), 1000)).toBe(true);
    expect(r.shouldReport('a', half(1, 100), 1099)).toBe(false);
    expect(r.shouldReport('b', half(1, 100), 1099)).toBe(true);
    expect(r.shouldReport('a', half(1, 100), 1100)).toBe(true);
  });
});
