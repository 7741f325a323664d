import { type Clock, systemClock } from '@switchyard/util';
import {
  type BudgetStore,
  type CapUsage,
  type CommitResult,
  type ReleaseResult,
  type ReserveInput,
  type ReserveResult,
  type ThresholdCrossing,
  SETTLED_RETENTION_MS,
} from '../domain/budget-store';
import { type CapSpec, thresholdsReached } from '../domain/caps';
import { periodWindow } from '../domain/period';

interface Counter {
  spent: number;
  reserved: number;
  /** Alert thresholds already announced this period. */
  alerted: Set<number>;
  epoch: number;
  /** End of the counter's period: it is dropped a retention after (like the Redis key expiry). */
  endMs: number;
}

interface Reservation {
  tenant: string;
  amount: number;
  expiresAt: number;
  /** Counter keys the amount is held against (the periods current at reserve time). */
  keys: string[];
  state: 'held' | 'expired' | 'released' | 'committed';
  /** Dropped from memory after this instant (retention for idempotent settles). */
  forgetAt: number;
  commit?: { found: boolean; returned: number };
}

/**
 * In-process BudgetStore for the embedded demo and fast tests. Same semantics
 * as the Redis store (one contract suite runs against both); each method runs
 * synchronously, which makes it as atomic as the Lua scripts.
 */
export function createMemoryBudgetStore(options: { clock?: Clock } = {}): BudgetStore {
  const clock = options.clock ?? systemClock;
  const counters = new Map<string, Counter>();
  const reservations = new Map<string, Reservation>();
  const byRequest = new Map<string, string>();

  const keyOf = (tenant: string, cap: CapSpec, now: number) => {
    const w = periodWindow(cap.period, now);
    return { key: `${tenant}:${cap.id}:${w.label}`, window: w };
  };
  const counter = (key: string, endMs = Number.POSITIVE_INFINITY): Counter => {
    let c = counters.get(key);
    if (!c) counters.set(key, (c = { spent: 0, reserved: 0, alerted: new Set(), epoch: 0, endMs }));
    return c;
  };
  let prunedAt = Number.NEGATIVE_INFINITY;
  /** Gives a reservation's hold back; a counter already swept with its period stays gone. */
  const unhold = (r: Reservation) => {
    for (const k of r.keys) {
      const c = counters.get(k);
      if (c) c.reserved -= r.amount;
    }
  };
  /** Adds `micros` to the spend of the counters the reservation was held on (its expiry charge, or taking it back). */
  const chargeHeldKeys = (r: Reservation, micros: number) => {
    for (const k of r.keys) {
      const c = counters.get(k);
      if (c) c.spent += micros;
    }
  };

  function reclaim(now: number) {
    for (const [id, r] of reservations) {
      if (r.state === 'held' && r.expiresAt <= now) {
        // Unsettled at expiry: the call may have run, so its worst case is spent
        // until a late Commit (or Release) corrects it.
        unhold(r);
        chargeHeldKeys(r, r.amount);
        r.state = 'expired';
        r.forgetAt = now + SETTLED_RETENTION_MS;
      }
      if (r.state !== 'held' && r.forgetAt <= now) reservations.delete(id);
    }
    // Ended periods are garbage for a long-running demo process; sweep them now and then.
    if (now - prunedAt > 60_000) {
      prunedAt = now;
      for (const [key, c] of counters) if (c.endMs + SETTLED_RETENTION_MS <= now) counters.delete(key);
    }
  }

  return {
    async reserve(input: ReserveInput): Promise<ReserveResult> {
      const now = clock.now();
      reclaim(now);
      const reqKey = input.requestId ? `${input.tenant}:${input.requestId}` : undefined;
      if (reqKey) {
        const prior = byRequest.get(reqKey);
        if (prior && reservations.get(prior)?.state === 'held') return { granted: true, reservationId: prior, existing: true };
      }
      const slots = input.caps.map((cap) => ({ cap, ...keyOf(input.tenant, cap, now) }));
      for (const s of slots) {
        const c = counter(s.key, s.window.endMs);
        if (s.cap.hard && c.spent + c.reserved + input.amountMicros > s.cap.limitMicros) {
          return {
            granted: false,
            cap: s.cap,
            spentMicros: c.spent,
            reservedMicros: c.reserved,
            periodStartMs: s.window.startMs,
            periodEndMs: s.window.endMs,
          };
        }
      }
      for (const s of slots) counter(s.key).reserved += input.amountMicros;
      const expiresAt = now + input.ttlMs;
      reservations.set(input.reservationId, {
        tenant: input.tenant,
        amount: input.amountMicros,
        expiresAt,
        keys: slots.map((s) => s.key),
        state: 'held',
        forgetAt: Number.POSITIVE_INFINITY,
      });
      if (reqKey) byRequest.set(reqKey, input.reservationId);
      return { granted: true, reservationId: input.reservationId, existing: false };
    },

    async commit({ tenant, caps, reservationId, actualMicros }): Promise<CommitResult> {
      const now = clock.now();
      reclaim(now);
      let r = reservations.get(reservationId);
      if (r?.state === 'committed') {
        return { found: r.commit!.found, returnedMicros: r.commit!.returned, alreadySettled: true, crossed: [] };
      }
      let held = 0;
      if (r?.state === 'held') {
        unhold(r);
        held = r.amount;
      } else if (r?.state === 'expired') {
        // Replace the expiry's worst-case charge with the actual cost below.
        chargeHeldKeys(r, -r.amount);
        held = r.amount;
      }
      const found = r?.state === 'held';
      const crossed: ThresholdCrossing[] = [];
      for (const cap of caps) {
        const { key, window } = keyOf(tenant, cap, now);
        const c = counter(key, window.endMs);
        c.spent += actualMicros;
        for (const t of thresholdsReached(c.spent, cap.limitMicros)) {
          if (c.alerted.has(t)) continue;
          c.alerted.add(t);
          crossed.push({ cap, thresholdPercent: t, spentMicros: c.spent, periodStartMs: window.startMs, epoch: ++c.epoch, atMs: now });
        }
      }
      const commit = { found, returned: held - actualMicros };
      if (!r) {
        r = { tenant, amount: 0, expiresAt: now, keys: [], state: 'committed', forgetAt: 0 };
        reservations.set(reservationId, r);
      }
      r.state = 'committed';
      r.commit = commit;
      r.forgetAt = now + SETTLED_RETENTION_MS;
      return { found, returnedMicros: commit.returned, alreadySettled: false, crossed };
    },

    async release({ reservationId }): Promise<ReleaseResult> {
      const now = clock.now();
      reclaim(now);
      const r = reservations.get(reservationId);
      if (!r) return { released: false, alreadySettled: false };
      if (r.state === 'held') unhold(r);
      // A late Release: the call cost nothing after all, so the expiry charge is taken back.
      else if (r.state === 'expired') chargeHeldKeys(r, -r.amount);
      else return { released: false, alreadySettled: true };
      r.state = 'released';
      r.forgetAt = now + SETTLED_RETENTION_MS;
      return { released: true, alreadySettled: false };
    },

    async usage({ tenant, caps }): Promise<CapUsage[]> {
      const now = clock.now();
      reclaim(now);
      return caps.map((cap) => {
        const { key, window } = keyOf(tenant, cap, now);
        const c = counters.get(key);
        return {
          cap,
          spentMicros: c?.spent ?? 0,
          reservedMicros: c?.reserved ?? 0,
          periodStartMs: window.startMs,
          periodEndMs: window.endMs,
        };
      });
    },

    async close() {},
  };
}
