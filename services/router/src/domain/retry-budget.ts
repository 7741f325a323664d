import type { Clock } from '@switchyard/util';

export interface RetryBudgetSettings {
  /** Retries allowed as a share of requests over the window (0.2 = 20 %). */
  ratio: number;
  /** Retries always allowed per second on top of the ratio, so a quiet replica can still retry. */
  minPerSecond: number;
  /** How long a request's deposit counts (Finagle's ttl); default 10 s. */
  windowMs?: number;
}

/**
 * A per-replica retry budget in the spirit of Finagle's RetryBudget and gRPC
 * retryThrottling: every call deposits `ratio` of a retry, every retry (or
 * transient-failure fallback) withdraws one. Deposits expire after the window,
 * so a long healthy spell cannot bank an unbounded burst for the next outage.
 * A small reserve refills at `minPerSecond` (capped at one second's worth) so
 * a low-traffic replica can still retry. When both are empty the caller fails
 * fast (or falls back to a deployment known to be fine) instead of feeding a
 * retry storm.
 */
export interface RetryBudget {
  /** One caller request entered the attempt loop. */
  deposit(): void;
  /** Take one retry; false when the budget is spent. */
  tryWithdraw(): boolean;
  /** Retries available right now (for logs, metrics and tests). */
  available(): number;
}

const SLOT_MS = 100;

export function createRetryBudget(settings: RetryBudgetSettings, clock: Clock): RetryBudget {
  if (!(settings.ratio >= 0 && settings.ratio <= 10)) throw new Error(`retry budget ratio: must be in [0, 10], got ${settings.ratio}`);
  if (!(settings.minPerSecond >= 0)) throw new Error(`retry budget minPerSecond: must be ≥ 0, got ${settings.minPerSecond}`);
  const windowMs = settings.windowMs ?? 10_000;
  if (!(windowMs >= SLOT_MS)) throw new Error(`retry budget windowMs: must be ≥ ${SLOT_MS}, got ${windowMs}`);
  const slots = Math.ceil(windowMs / SLOT_MS);
  // Ring of per-slot request and ratio-funded retry counts: the window slides by SLOT_MS.
  const requests = new Array<number>(slots).fill(0);
  const retries = new Array<number>(slots).fill(0);
  let currentSlot = Math.floor(clock.now() / SLOT_MS);
  let reserve = settings.minPerSecond;
  let reserveAt = clock.now();

  const advance = () => {
    const now = clock.now();
    const slot = Math.floor(now / SLOT_MS);
    const steps = Math.min(slots, slot - currentSlot);
    for (let i = 1; i <= steps; i++) {
      const idx = (currentSlot + i) % slots;
      requests[idx] = 0;
      retries[idx] = 0;
    }
    if (slot > currentSlot) currentSlot = slot;
    if (now > reserveAt) {
      reserve = Math.min(settings.minPerSecond, reserve + ((now - reserveAt) / 1000) * settings.minPerSecond);
      reserveAt = now;
    }
  };
  const sum = (a: number[]) => a.reduce((s, n) => s + n, 0);
  const ratioRoom = () => settings.ratio * sum(requests) - sum(retries);

  return {
    deposit() {
      advance();
      requests[currentSlot % slots]! += 1;
    },
    tryWithdraw() {
      advance();
      if (ratioRoom() >= 1) {
        retries[currentSlot % slots]! += 1;
        return true;
      }
      if (reserve >= 1) {
        reserve -= 1;
        return true;
      }
      return false;
    },
    available() {
      advance();
      return Math.floor(Math.max(0, ratioRoom())) + Math.floor(reserve);
    },
  };
}
