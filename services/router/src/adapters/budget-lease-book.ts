import type { Clock } from '@switchyard/util';

/**
 * Local bookkeeping of budget leases (no I/O; budget-leases.ts does the hops).
 *
 * A lease is one budget reservation of `amountMicros` held by this router for
 * the calls of one cap set. A call takes its worst case from the lease's room
 * (amount − actual cost of the calls settled − worst case of those still
 * running), so the calls of a lease can never cost more than the lease holds:
 * the hard cap the service checked for the lease holds for them too. A lease
 * admits calls for `leaseMs` after its grant (or until revoked), then ends
 * when its last call is settled: one Commit of the summed actual cost.
 */

/** Smallest lease, in calls: a lease for one call saves nothing over the per-call path. */
const MIN_CALLS = 2;
/** First lease of a key: a few calls, grown from the observed peak afterwards. */
const FIRST_CALLS = 4;
/** Largest lease, in calls (also when the tenant has no hard cap). */
const MAX_CALLS = 256;

export interface LeaseEnd {
  readonly key: string;
  readonly reservationId: string;
  readonly amountMicros: number;
  /** Summed actual cost of the lease's committed calls. */
  readonly actualMicros: number;
  /** Calls that committed (0: every call was released, or none came): the lease is released, not committed. */
  readonly committedCalls: number;
}

/** One call's share of a lease; settling it twice changes nothing. */
export interface LeasedCall {
  readonly reservationId: string;
  commit(actualMicros: number): void;
  release(): void;
}

interface Lease {
  key: string;
  tenant: string;
  reservationId: string;
  amountMicros: number;
  admitUntil: number;
  open: boolean;
  inFlight: number;
  inFlightWorstMicros: number;
  peakInFlightWorstMicros: number;
  actualMicros: number;
  committedCalls: number;
  seq: number;
}

interface KeyState {
  current?: Lease;
  /** No lease is taken before this instant (the last one was refused: the cap is near). */
  exactUntil: number;
  /** Peak worst case in flight on the last ended lease: sizes the next one. */
  lastPeakMicros: number;
  /** Last lease sizing: a key idle for long is forgotten. */
  touchedAt: number;
}

/** A key without a lease for this many lease lifetimes is forgotten (its sizing starts over). */
const FORGET_AFTER_LEASES = 10;

export interface LeaseBookOptions {
  clock: Clock;
  /** How long a lease admits calls after its grant. */
  leaseMs: number;
  /** A lease's calls are all settled: Commit (or Release) it. */
  onEnd(end: LeaseEnd): void;
}

export type LeaseBook = ReturnType<typeof createLeaseBook>;

export function createLeaseBook({ clock, leaseMs, onEnd }: LeaseBookOptions) {
  const keys = new Map<string, KeyState>();
  /** Leases closed to new calls whose calls are still running. */
  const draining = new Set<Lease>();

  const stateOf = (key: string): KeyState => {
    let s = keys.get(key);
    if (!s) keys.set(key, (s = { exactUntil: 0, lastPeakMicros: 0, touchedAt: 0 }));
    s.touchedAt = clock.now();
    return s;
  };

  function endIfDrained(lease: Lease): void {
    if (lease.open || lease.inFlight > 0) return;
    draining.delete(lease);
    const s = keys.get(lease.key);
    if (s) s.lastPeakMicros = lease.peakInFlightWorstMicros;
    onEnd({ key: lease.key, reservationId: lease.reservationId, amountMicros: lease.amountMicros, actualMicros: lease.actualMicros, committedCalls: lease.committedCalls });
  }

  function close(lease: Lease): void {
    if (!lease.open) return;
    lease.open = false;
    const s = keys.get(lease.key);
    if (s?.current === lease) delete s.current;
    draining.add(lease);
    endIfDrained(lease);
  }

  function call(lease: Lease, worstMicros: number): LeasedCall {
    let settled = false;
    const settle = (actualMicros: number | undefined) => {
      if (settled) return;
      settled = true;
      lease.inFlight--;
      lease.inFlightWorstMicros -= worstMicros;
      if (actualMicros !== undefined) {
        lease.actualMicros += actualMicros;
        lease.committedCalls++;
      }
      endIfDrained(lease);
    };
    return {
      reservationId: `${lease.reservationId}/${++lease.seq}`,
      commit: (actualMicros) => settle(actualMicros),
      release: () => settle(undefined),
    };
  }

  return {
    /**
     * How much the next lease of `key` should hold, or undefined when a call of
     * `worstMicros` must take the per-call path: a recent lease was refused, or
     * `ceilingMicros` (the share of the tenant's smallest hard cap a lease may
     * hold) leaves room for fewer than two calls.
     */
    size(key: string, worstMicros: number, ceilingMicros: number): number | undefined {
      const s = stateOf(key);
      if (worstMicros <= 0 || clock.now() < s.exactUntil) return undefined;
      // A lease that is still open but too small (it is being replaced) tells the demand best.
      const peak = Math.max(s.lastPeakMicros, s.current?.peakInFlightWorstMicros ?? 0);
      const wanted = Math.min(Math.max(FIRST_CALLS * worstMicros, 2 * peak), MAX_CALLS * worstMicros, Math.floor(ceilingMicros));
      return wanted >= MIN_CALLS * worstMicros ? wanted : undefined;
    },

    /** Takes `worstMicros` from the key's open lease; undefined when there is none or it lacks room. */
    admit(key: string, worstMicros: number): LeasedCall | undefined {
      const lease = keys.get(key)?.current;
      if (!lease) return undefined;
      if (clock.now() >= lease.admitUntil) {
        close(lease);
        return undefined;
      }
      // The demand counts also when it does not fit: the next lease is sized from it.
      lease.peakInFlightWorstMicros = Math.max(lease.peakInFlightWorstMicros, lease.inFlightWorstMicros + worstMicros);
      if (lease.amountMicros - lease.actualMicros - lease.inFlightWorstMicros < worstMicros) return undefined;
      lease.inFlight++;
      lease.inFlightWorstMicros += worstMicros;
      return call(lease, worstMicros);
    },

    /** A granted lease becomes the key's open one; the one it replaces (too small) stops admitting. */
    install(key: string, tenant: string, reservationId: string, amountMicros: number): void {
      const s = stateOf(key);
      if (s.current) close(s.current);
      s.current = {
        key,
        tenant,
        reservationId,
        amountMicros,
        admitUntil: clock.now() + leaseMs,
        open: true,
        inFlight: 0,
        inFlightWorstMicros: 0,
        peakInFlightWorstMicros: 0,
        actualMicros: 0,
        committedCalls: 0,
        seq: 0,
      };
    },

    /** Calls that did not fit a lease being requested: the next lease is sized from this much worst case in flight. */
    noteDemand(key: string, worstInFlightMicros: number): void {
      const s = stateOf(key);
      s.lastPeakMicros = Math.max(s.lastPeakMicros, worstInFlightMicros);
    },

    /** The service refused a lease (or could not grant one): per-call path for this key for a lease's lifetime. */
    backOff(key: string): void {
      stateOf(key).exactUntil = clock.now() + leaseMs;
    },

    /** A budget event of `tenant`: its leases stop admitting (each ends when its calls are settled). */
    revoke(tenant: string): void {
      for (const s of keys.values()) if (s.current?.tenant === tenant) close(s.current);
    },

    /** Ends the admission of leases past their time (run on a timer: an idle lease must not hold money). */
    sweep(): void {
      const now = clock.now();
      for (const [key, s] of keys) {
        if (s.current && now >= s.current.admitUntil) close(s.current);
        if (!s.current && now >= s.touchedAt + FORGET_AFTER_LEASES * leaseMs && now >= s.exactUntil && !hasDraining(key)) keys.delete(key);
      }
    },

    /** Shutdown: every lease stops admitting. */
    closeAll(): void {
      for (const s of keys.values()) if (s.current) close(s.current);
    },

    /** Leases held (open or with calls running), for tests and metrics. */
    held(): number {
      let open = 0;
      for (const s of keys.values()) if (s.current) open++;
      return open + draining.size;
    },
  };

  function hasDraining(key: string): boolean {
    for (const l of draining) if (l.key === key) return true;
    return false;
  }
}
