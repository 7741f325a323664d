import type { Clock } from '@switchyard/util';
import { type LeaseBook, createLeaseBook } from './budget-lease-book';
import type { BudgetHold, BudgetPeer, BudgetReserve } from './budget-peer';
import { withinHalfTimeLeft } from './peer-call';

/** The budget peer with leases: the same interface, most calls without a Reserve or Commit hop of their own. */
export interface LeasedBudgetPeer extends BudgetPeer {
  /** A budget event of `tenant` (threshold crossed): its leases stop admitting and are committed once their calls end. */
  revoke(tenant: string): void;
  /** Shutdown: stop the sweep timer and end every lease (committed as their calls end). */
  close(): void;
  readonly book: LeaseBook;
}

export interface BudgetLeaseOptions {
  /** The per-call budget peer (budget-peer.ts): takes and settles the leases, and is the exact path near a cap. */
  inner: BudgetPeer;
  clock: Clock;
  /** How long a lease admits calls (ROUTER_BUDGET_LEASE_MS). */
  leaseMs: number;
  /**
   * Most a lease may hold for `tenant`, in micro-USD: a share of its smallest
   * hard cap (Infinity without one). Unused leased money is what other routers
   * cannot reserve until the lease ends, so this bounds the cap's utilisation loss.
   */
  ceilingMicros(tenant: string): number;
  /** Sweep timer; tests run `book.sweep()` themselves. Default: setInterval, unref'd. */
  every?: (ms: number, fn: () => void) => () => void;
}

/** Leased money of a tenant with hard caps, per hard cap, as a share (LEASE_CAP_PERCENT / 100) of the smallest. */
export function leaseCeiling(budgets: readonly { limitUsd: number; hard: boolean }[], capPercent: number): number {
  const hard = budgets.filter((b) => b.hard).map((b) => Math.round(b.limitUsd * 1_000_000));
  return hard.length === 0 ? Number.POSITIVE_INFINITY : (Math.min(...hard) * capPercent) / 100;
}

/** The caps a Reserve touches are chosen by tenant, API key and feature: one lease per such set. */
const keyOf = (r: BudgetReserve) => `${r.tenant}\u0000${r.apiKeyId}\u0000${r.feature}`;

/** What the taking of a lease means for the calls waiting on it. */
type LeaseTaken = 'retry' | 'exact' | BudgetHold;

const LEASE_REQUEST_ID = 'budget-lease';

/**
 * Budget leases (issue 15): a router reserves money for many calls at once
 * and admits each from it locally. Exactness: a lease is an ordinary Reserve
 * against every cap of the call (all-or-nothing, hard caps checked by the
 * service), and its calls never take more than it holds; expiry and late
 * Commit apply to it as to any reservation. Near a cap the service refuses
 * the lease and the calls take today's per-call path (and its denial, with the
 * same error and details) for a lease's lifetime.
 */
export function createLeasedBudgetPeer(options: BudgetLeaseOptions): LeasedBudgetPeer {
  const { inner } = options;
  const book = createLeaseBook({
    clock: options.clock,
    leaseMs: options.leaseMs,
    onEnd(end) {
      const hold: BudgetHold = { kind: 'granted', reservationId: end.reservationId };
      if (end.committedCalls > 0) inner.commit(hold, end.actualMicros, LEASE_REQUEST_ID);
      else inner.release(hold, LEASE_REQUEST_ID);
    },
  });
  /**
   * One lease request per key at a time: concurrent calls wait for it rather
   * than each taking one, as many as its amount fits (`claimedMicros`); the
   * others do not wait (a call never waits on a lease and then makes its own hop).
   */
  const taking = new Map<string, { promise: Promise<LeaseTaken>; amountMicros: number; claimedMicros: number }>();
  const every =
    options.every ??
    ((ms: number, fn: () => void) => {
      const t = setInterval(fn, ms);
      t.unref();
      return () => clearInterval(t);
    });
  const stopSweep = every(Math.max(10, Math.floor(options.leaseMs / 4)), () => book.sweep());

  function take(key: string, r: BudgetReserve): Promise<LeaseTaken> | 'exact' {
    const pending = taking.get(key);
    if (pending) {
      if (pending.amountMicros - pending.claimedMicros < r.amountMicros) {
        book.noteDemand(key, pending.claimedMicros + r.amountMicros);
        return 'exact';
      }
      pending.claimedMicros += r.amountMicros;
      return pending.promise;
    }
    const amountMicros = book.size(key, r.amountMicros, options.ceilingMicros(r.tenant));
    if (amountMicros === undefined) return 'exact';
    const promise = inner.reserve({ ...r, amountMicros, requestId: '' }).then((hold): LeaseTaken => {
      taking.delete(key);
      if (hold.kind === 'granted' && !hold.degraded) {
        book.install(key, r.tenant, hold.reservationId, amountMicros);
        return 'retry';
      }
      book.backOff(key);
      if (hold.kind === 'granted') {
        // Granted without the store (fail open): no lease; each call asks and is answered as today.
        inner.release(hold, LEASE_REQUEST_ID);
        return 'exact';
      }
      // Refused by a hard cap: the cap is near, so each call asks for itself and gets its own exact answer.
      if (hold.kind === 'denied' && hold.denial.kind === 'exceeded') return 'exact';
      // The service or its store is down: the answer a per-call Reserve would get now (fail closed or open per the tenant's caps).
      return hold;
    });
    taking.set(key, { promise, amountMicros, claimedMicros: r.amountMicros });
    return promise;
  }

  return {
    book,
    async reserve(r) {
      const key = keyOf(r);
      const now = book.admit(key, r.amountMicros);
      if (now) return { kind: 'granted', reservationId: now.reservationId, leased: now };
      const taken = take(key, r);
      // Waiting on another call's lease: at most half this call's own time left, then its own Reserve.
      const outcome = taken === 'exact' ? 'exact' : await withinHalfTimeLeft(taken, r.deadlineAt, options.clock);
      if (outcome === 'retry') {
        // Every call that waited claimed room in the lease; only a revocation in between leaves it without.
        const leased = book.admit(key, r.amountMicros);
        if (leased) return { kind: 'granted', reservationId: leased.reservationId, leased };
      } else if (outcome !== 'exact' && outcome !== 'late') {
        return outcome;
      }
      return inner.reserve(r);
    },
    commit(hold, actualMicros, requestId) {
      if (hold.kind === 'granted' && hold.leased) hold.leased.commit(actualMicros);
      else inner.commit(hold, actualMicros, requestId);
    },
    release(hold, requestId) {
      if (hold.kind === 'granted' && hold.leased) hold.leased.release();
      else inner.release(hold, requestId);
    },
    revoke: (tenant) => book.revoke(tenant),
    close() {
      stopSweep();
      book.closeAll();
    },
  };
}
