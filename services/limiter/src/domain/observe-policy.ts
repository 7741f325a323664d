import { parseRateLimitHeaders } from '@switchyard/providers';

/** An Observe's observed_at may run this far ahead of our clock (clock skew) before it is ignored. */
const OBSERVED_AT_FUTURE_SLACK_MS = 1_000;
/** An observed_at older than this is ignored (the caller's clock is off, or the Observe sat in a queue). */
const OBSERVED_AT_MAX_AGE_MS = 60_000;

/** What a provider's answer told us, as the caller reported it (Observe). */
export interface ObservedResponse {
  httpStatus: number;
  headers: Record<string, string>;
  /** Error class name as in @switchyard/providers ('RATE_LIMITED', …); undefined for success. */
  errorClass: string | undefined;
  /** When the caller received the response (epoch ms); relative headers count from then. 0 = now. */
  observedAtMs?: number;
}

/** The provider's remaining quota, to cap ours with (QuotaStore.tighten). */
export interface RemainingCaps {
  rpm?: number;
  tpm?: number;
  rpmResetAt?: number;
  tpmResetAt?: number;
}

/** What an observed response means for the deployment's quota state. */
export type ObserveDecision =
  /** Nothing to change (no rate-limit headers, or the provider's wait is already over). */
  | { kind: 'none' }
  /** Upstream quota exhausted: no admission until an operator clears it. */
  | { kind: 'unavailable'; reason: string }
  /** Upstream said "back off" for `ms`. */
  | { kind: 'cooldown'; ms: number; reason: string }
  /** The provider's remaining quota caps ours; `cooldownMs` when it is at zero until its reset. */
  | { kind: 'tighten'; caps: RemainingCaps; cooldownMs?: number };

/**
 * Decides what an observed provider response means, from the response and the
 * local time alone (no store, no clock reads): the limiter applies the decision.
 */
export function decideObserve(res: ObservedResponse, localNow: number, defaultCooldownMs: number): ObserveDecision {
  if (res.errorClass === 'QUOTA_EXHAUSTED') {
    return { kind: 'unavailable', reason: `upstream quota exhausted (HTTP ${res.httpStatus}); until an operator calls ClearUnavailable` };
  }
  // Relative headers count from when the caller received them, so the
  // cooldown ends when the provider said, not one hop (or a stall) later.
  const observedAt =
    res.observedAtMs && res.observedAtMs <= localNow + OBSERVED_AT_FUTURE_SLACK_MS && res.observedAtMs >= localNow - OBSERVED_AT_MAX_AGE_MS
      ? Math.min(res.observedAtMs, localNow)
      : localNow;
  const snapshot = parseRateLimitHeaders(res.headers, observedAt);
  const tokens = snapshot.tokens ?? snapshot.inputTokens;
  /** How long until each bucket the provider says is empty resets. */
  const emptyFor = () => [snapshot.requests, tokens].filter((b) => b?.remaining === 0 && b.resetAt !== undefined).map((b) => b!.resetAt! - localNow);
  if (res.errorClass === 'RATE_LIMITED' || res.httpStatus === 429) {
    // retry-after(-ms) wins; else the reset of a bucket the provider says is empty; else the default.
    const emptyReset = emptyFor();
    const fromHeaders = snapshot.retryAfterMs !== undefined ? snapshot.retryAfterMs - (localNow - observedAt) : emptyReset.length > 0 ? Math.max(...emptyReset) : undefined;
    // The provider's wait was over before this Observe arrived: nothing to cool down.
    if (fromHeaders !== undefined && fromHeaders <= 0 && localNow > observedAt) return { kind: 'none' };
    const ms = fromHeaders !== undefined && fromHeaders > 0 ? fromHeaders : defaultCooldownMs;
    const reason = fromHeaders !== undefined ? `upstream 429, retry after ${ms} ms` : `upstream 429 without retry-after; default cooldown ${ms} ms`;
    return { kind: 'cooldown', ms, reason };
  }
  // A success (or another error) carrying rate-limit headers: the provider's
  // remaining quota caps ours. Provider units are absolute, ours are scaled by
  // headroom, so "remaining" caps ours directly (never raises it).
  const remaining = { rpm: snapshot.requests?.remaining, tpm: tokens?.remaining };
  if (remaining.rpm === undefined && remaining.tpm === undefined) return { kind: 'none' };
  // Provider resets are local-clock instants; the store's clock is Redis, close enough for a cap that only tightens.
  const caps: RemainingCaps = {
    ...(remaining.rpm !== undefined ? { rpm: remaining.rpm, rpmResetAt: snapshot.requests?.resetAt ?? 0 } : {}),
    ...(remaining.tpm !== undefined ? { tpm: remaining.tpm, tpmResetAt: tokens?.resetAt ?? 0 } : {}),
  };
  // The provider is at zero: nothing fits until its reset, so cool down until then.
  const emptyUntil = emptyFor();
  const cooldownMs = emptyUntil.length > 0 ? Math.max(...emptyUntil) : 0;
  return cooldownMs > 0 ? { kind: 'tighten', caps, cooldownMs } : { kind: 'tighten', caps };
}
