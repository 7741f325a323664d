import { decideObserve } from './observe-policy';

const NOW = 1_700_000_000_000;
const DEFAULT_COOLDOWN_MS = 1_000;
const decide = (res: Partial<Parameters<typeof decideObserve>[0]>, now = NOW) =>
  decideObserve({ httpStatus: 200, headers: {}, errorClass: undefined, ...res }, now, DEFAULT_COOLDOWN_MS);

describe('decideObserve', () => {
  it('marks the deployment unavailable when the upstream quota is exhausted', () => {
    expect(decide({ httpStatus: 429, errorClass: 'QUOTA_EXHAUSTED' })).toEqual({
      kind: 'unavailable',
      reason: 'upstream quota exhausted (HTTP 429); until an operator calls ClearUnavailable',
    });
  });

  it('cools down for retry-after on a 429', () => {
    expect(decide({ httpStatus: 429, headers: { 'retry-after': '7' } })).toEqual({ kind: 'cooldown', ms: 7_000, reason: 'upstream 429, retry after 7000 ms' });
  });

  it('counts retry-after from when the caller received the answer', () => {
    expect(decide({ httpStatus: 429, headers: { 'retry-after': '7' }, observedAtMs: NOW - 2_000 })).toMatchObject({ kind: 'cooldown', ms: 5_000 });
  });

  it('cools down by the default when a 429 says nothing about when', () => {
    expect(decide({ errorClass: 'RATE_LIMITED', httpStatus: 429 })).toEqual({
      kind: 'cooldown',
      ms: DEFAULT_COOLDOWN_MS,
      reason: `upstream 429 without retry-after; default cooldown ${DEFAULT_COOLDOWN_MS} ms`,
    });
  });

  it('changes nothing when the provider’s wait was over before the Observe arrived', () => {
    expect(decide({ httpStatus: 429, headers: { 'retry-after': '1' }, observedAtMs: NOW - 5_000 })).toEqual({ kind: 'none' });
  });

  it('ignores an observed_at too far in the future (clock skew) and counts from now', () => {
    expect(decide({ httpStatus: 429, headers: { 'retry-after': '7' }, observedAtMs: NOW + 10_000 })).toMatchObject({ kind: 'cooldown', ms: 7_000 });
  });

  it('changes nothing for a success without rate-limit headers', () => {
    expect(decide({})).toEqual({ kind: 'none' });
  });

  it('tightens to the provider’s remaining quota on a success', () => {
    const d = decide({ headers: { 'x-ratelimit-remaining-requests': '4', 'x-ratelimit-reset-requests': '2s', 'x-ratelimit-remaining-tokens': '900' } });
    expect(d).toEqual({ kind: 'tighten', caps: { rpm: 4, rpmResetAt: NOW + 2_000, tpm: 900, tpmResetAt: 0 } });
  });

  it('tightens and cools down until the reset when the provider is at zero', () => {
    const d = decide({ headers: { 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '3s' } });
    expect(d).toEqual({ kind: 'tighten', caps: { rpm: 0, rpmResetAt: NOW + 3_000 }, cooldownMs: 3_000 });
  });
});
