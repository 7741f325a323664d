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

/** The wait before retry number `retry`: the provider's Retry-After wins (plus a little jitter), else full-jitter backoff. */
export function retryDelayMs(
  retry: number,
  retryAfterMs: number | undefined,
  settings: Pick<RetrySettings, 'baseMs' | 'capMs'>,
  rng: Rng,
): number {
  if (retryAfterMs !== undefined && retryAfterMs >= 0) {
    return Math.ceil(retryAfterMs + rng() * retryAfterMs * RETRY_AFTER_JITTER);
  }
  return fullJitterBackoffMs(retry, settings, rng);
}
