import type { Rng } from './candidates';

export interface RetrySettings {
  /** Attempts per deployment, the first one included. */
  maxAttempts: number;
  baseMs: number;
  capMs: number;
}

/**
 * Exponential backoff with full jitter (AWS architecture blog): a uniform wait
 * in [0, min(cap, base * 2^(retry-1))). Full jitter spreads a herd of retrying
 * callers evenly instead of synchronising them on the same instants.
 * `retry` is 1 for the first retry.
 */
export function fullJitterBackoffMs(retry: number, settings: Pick<RetrySettings, 'baseMs' | 'capMs'>, rng: Rng): number {
  const ceiling = Math.min(settings.capMs, settings.baseMs * 2 ** Math.max(0, retry - 1));
  return Math.floor(rng() * ceiling);
}

/** Share of a Retry-After added as jitter, so callers told the same instant do not all return at once. */
export const RETRY_AFTER_JITTER = 0.1;
/**
 * Upper bound of that jitter: Retry-After is honoured to within 50 ms (never
 * sooner), so a long Retry-After does not turn 10 % into seconds of extra wait.
 */
export const RETRY_AFTER_JITTER_CAP_MS = 25;

/** The wait before retry number `retry`: the provider's Retry-After wins (plus a little jitter, ≤ 25 ms), else full-jitter backoff. */
export function retryDelayMs(
  retry: number,
  retryAfterMs: number | undefined,
  settings: Pick<RetrySettings, 'baseMs' | 'capMs'>,
  rng: Rng,
): number {
  if (retryAfterMs !== undefined && retryAfterMs >= 0) {
    return Math.ceil(retryAfterMs + rng() * Math.min(retryAfterMs * RETRY_AFTER_JITTER, RETRY_AFTER_JITTER_CAP_MS));
  }
  return fullJitterBackoffMs(retry, settings, rng);
}
