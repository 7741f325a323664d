import { formatOpenAIDuration, formatRfc3339, retryAfterSeconds } from './durations';

describe('formatOpenAIDuration (Go time.Duration strings, as in x-ratelimit-reset-*)', () => {
  it.each([
    [0, '0s'],
    [-5, '0s'],
    [12, '12ms'],
    [1.5, '1.5ms'],
    [600, '600ms'],
    [999.9994, '999.999ms'],
    [1000, '1s'],
    [1500, '1.5s'],
    [6 * 60_000, '6m0s'],
    [6 * 60_000 + 250, '6m0.25s'],
    [59_999.6, '1m0s'],
    [3_600_000, '1h0m0s'],
    [23 * 3_600_000 + 47 * 60_000 + 36_648, '23h47m36.648s'],
  ])('formats %p ms as %p', (ms, expected) => {
    expect(formatOpenAIDuration(ms)).toBe(expected);
  });
});

describe('formatRfc3339', () => {
  it('rounds up to the next whole second, without fractional digits', () => {
    expect(formatRfc3339(Date.UTC(2025, 0, 1, 12, 0, 6, 1))).toBe('2025-01-01T12:00:07Z');
    expect(formatRfc3339(Date.UTC(2025, 0, 1, 12, 0, 7, 0))).toBe('2025-01-01T12:00:07Z');
  });
});

describe('retryAfterSeconds', () => {
  it('rounds up and never says 0 when a wait is needed', () => {
    expect(retryAfterSeconds(0)).toBe(0);
    expect(retryAfterSeconds(12)).toBe(1);
    expect(retryAfterSeconds(1000)).toBe(1);
    expect(retryAfterSeconds(1001)).toBe(2);
  });
});
