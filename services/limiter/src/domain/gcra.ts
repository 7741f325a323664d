/**
 * GCRA (generic cell rate algorithm, as in redis-cell / Brandur's throttled)
 * for "limit units per period". No fixed windows, so no burst at a window
 * edge: a key admits at most `limit` units in any period-long interval and then
 * one unit per `period / limit` ms.
 *
 * Representation (shared with the Lua script in redis-quota-store.ts so both
 * stores make exactly the same decisions): instead of the theoretical arrival
 * time TAT as a float, a state keeps `debt = (TAT - ts) * limit` where `ts` is
 * the last update in ms. One unit adds `period` to the debt, the debt drains by
 * `limit` per ms, and the key admits while `debt <= period * limit`. Every
 * quantity is an integer far below 2^53 (limit ≤ MAX_LIMIT, period 60 000 ms),
 * so Lua doubles and JS numbers compute it exactly — no drift, and "RPM 10
 * admits exactly 10" holds for every limit, not just divisors of 60 000.
 */

/** Every limit is per minute (RPM / TPM). */
export const PERIOD_MS = 60_000;

/** Effective limits are clamped here to keep the integer math exact (debt cap 2.4e14 < 2^53). */
export const MAX_LIMIT = 1_000_000_000;

/** Overruns can push debt past capacity; cap it so one wild settle cannot block a key for hours. */
export const DEBT_CAP_PERIODS = 4;

export interface GcraState {
  /** (TAT - ts) * limit; 0 means the key is idle. */
  debt: number;
  /** Last update, ms. */
  ts: number;
  /** The limit at the last update (for the storage TTL; the debt does not depend on it). */
  limit: number;
}

/** The state brought forward to `now` (drained at `limit` per ms). */
export function gcraAt(state: GcraState | undefined, limit: number, now: number): GcraState {
  if (!state || state.debt <= 0) return { debt: 0, ts: now, limit };
  // Debt is in unit-periods, independent of the limit: after a config change the
  // units already sent still count, and only the drain rate follows the new limit.
  const elapsed = Math.max(0, now - state.ts);
  const debt = Math.max(0, state.debt - elapsed * limit);
  return { debt, ts: now, limit };
}

export interface GcraDecision {
  allowed: boolean;
  /** The state to store when allowed (unchanged input when not). */
  next: GcraState;
  /** When not allowed: ms until `cost` fits (0 when allowed). */
  retryAfterMs: number;
}

/** Would `cost` units fit now? Pure; the caller stores `next` only if every key allowed. */
export function gcraTake(state: GcraState | undefined, limit: number, cost: number, now: number): GcraDecision {
  const current = gcraAt(state, limit, now);
  const capacity = PERIOD_MS * limit;
  const debt = current.debt + cost * PERIOD_MS;
  if (debt <= capacity) return { allowed: true, next: { ...current, debt }, retryAfterMs: 0 };
  return { allowed: false, next: current, retryAfterMs: Math.ceil((debt - capacity) / limit) };
}

/**
 * Adds (overrun, `delta` > 0) or gives back (`delta` < 0) units: moves the TAT
 * forward or back. Debt never goes below 0 (an idle key cannot bank capacity)
 * nor above DEBT_CAP_PERIODS periods.
 */
export function gcraAdjust(state: GcraState | undefined, limit: number, delta: number, now: number): GcraState {
  const current = gcraAt(state, limit, now);
  const debt = Math.min(DEBT_CAP_PERIODS * PERIOD_MS * limit, Math.max(0, current.debt + delta * PERIOD_MS));
  return { ...current, debt };
}

export interface GcraUsage {
  limit: number;
  /** Units still counted against the key (rounded up). */
  used: number;
  remaining: number;
  /** When the key is fully drained again. */
  resetsAtMs: number;
}

export function gcraUsage(state: GcraState | undefined, limit: number, now: number): GcraUsage {
  const { debt } = gcraAt(state, limit, now);
  const used = Math.min(limit, Math.ceil(debt / PERIOD_MS));
  const remaining = Math.max(0, Math.floor((PERIOD_MS * limit - debt) / PERIOD_MS));
  return { limit, used, remaining, resetsAtMs: now + Math.ceil(debt / limit) };
}

/** ms until a state is idle again: the TTL to give its storage key. */
export function gcraTtlMs(state: GcraState): number {
  return state.limit > 0 ? Math.ceil(state.debt / state.limit) : 0;
}
