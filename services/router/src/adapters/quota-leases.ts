import type { SwitchyardConfig } from '@switchyard/config';
import type { Clock } from '@switchyard/util';

/**
 * Per-router quota leases, the bookkeeping only (no I/O; limiter-peer.ts does
 * the hops). A lease is one limiter reservation for several calls of one
 * (deployment, tenant) pair: the router admits those calls itself while the
 * lease has room and its use window (`useMs` from sending its Acquire) lasts,
 * then settles it ONCE with what the calls used. The limiter counts the whole
 * lease until then, so the cluster-wide bound stays exact; it refuses a lease
 * near the limit, and the calls take the per-call path.
 */

export interface LeasePair {
  deployment: string;
  tenant: string;
}

export interface LeaseSize {
  requests: number;
  tokens: number;
}

/** What a lease came to, for its one Settle. */
export interface LeaseSettlement {
  /** The limiter's reservation id of the lease. */
  reservationId: string;
  usedRequests: number;
  /** Actual tokens of the settled calls, plus the reserved tokens of calls still running at a forced close. */
  actualTokens: number;
  /** ms from sending the lease's Acquire to its last admission (the limiter re-stamps the used units there). */
  lastUseMs: number;
}

export type LeaseDecision =
  /** Admitted from a lease: `id` is the call's local reservation id (settle it through the book). */
  | { kind: 'admitted'; id: string; prefetch?: LeaseSize }
  /** No lease has room: ask the limiter for one of this size (then report granted / refused). */
  | { kind: 'take'; size: LeaseSize }
  /** A lease for this pair is already being asked for: wait for that answer. */
  | { kind: 'wait' }
  /** This call takes the per-call path (pair not leasable, lease too small, or leases refused lately). */
  | { kind: 'exact' };

export interface QuotaLeaseOptions {
  clock: Clock;
  /** How long a lease admits, from sending its Acquire (the limiter's lease_ms). */
  useMs: number;
  /** A lease whose calls are still running is settled anyway this long after it was sent (before its reservation expires). */
  holdMs: number;
  /**
   * The largest lease of a pair, or undefined when the pair takes no leases
   * (a concurrency or TPD limit: those stay per call).
   */
  caps(pair: LeasePair): LeaseSize | undefined;
  /**
   * A pair asks for a lease only once it has seen this many calls within one
   * window (default 4): a lease saves nothing at a trickle, and the per-call
   * path keeps the limiter's view of a quiet pair exact at every instant.
   */
  minDemand?: number;
}

export interface QuotaLeases {
  admit(pair: LeasePair, tokens: number): LeaseDecision;
  /** The limiter granted the lease asked for at `sentAt` (this book's clock). */
  granted(pair: LeasePair, reservationId: string, size: LeaseSize, sentAt: number): void;
  /** The lease was refused (near the limit) or could not be asked for: per-call path for a while, smaller next time. */
  refused(pair: LeasePair): void;
  /** A call admitted by `admit` is over. True when `id` was a lease admission (nothing to settle at the limiter). */
  settle(id: string, usage: { tokens: number } | 'cancelled'): boolean;
  /** True when `id` names a lease admission of this book. */
  owns(id: string): boolean;
  /** Stop admitting from the deployment's leases at once (cooldown, exhaustion, unavailable); they settle when their calls are over. */
  revoke(deployment: string): void;
  /** Leases that are over and whose calls are all settled (or held too long): settle each once. */
  due(): LeaseSettlement[];
  /** Every lease, over or not, for a final settle (shutdown). */
  drain(): LeaseSettlement[];
}

/** Local ids of lease admissions; never a limiter reservation id (those are UUIDs). */
const ID_PREFIX = 'lease:';
/** Smallest lease worth an Acquire: one call is the per-call path. */
const MIN_REQUESTS = 2;
/** After a lease whose answer took more than half its window, no lease is asked for this many windows. */
const SLOW_BACKOFF = 10;
/** Ask for the next lease when the current one has this fraction of its requests left, so calls do not wait for it. */
const PREFETCH_AT = 0.25;

interface Lease {
  reservationId: string;
  pair: string;
  deployment: string;
  size: LeaseSize;
  sentAt: number;
  requestsLeft: number;
  tokensLeft: number;
  used: number;
  actualTokens: number;
  lastUseMs: number;
  /** Local id → reserved tokens of its calls not settled yet. */
  running: Map<string, number>;
  revoked: boolean;
  /** A call found it without room before its window ended: the pair needs bigger leases. */
  ranOut: boolean;
}

interface PairState {
  taking: boolean;
  /** No lease is asked for before this instant (after a refusal). */
  backoffUntil: number;
  nextRequests: number;
  /** Calls that waited for the lease being asked for: the next one is at least twice that. */
  waiters: number;
  meanTokens: number;
  leases: Lease[];
  /** Calls seen in the current and the previous window (demand). */
  seen: number;
  seenBefore: number;
  seenSince: number;
}

export function createQuotaLeases(options: QuotaLeaseOptions): QuotaLeases {
  const { clock, useMs, holdMs } = options;
  const minDemand = options.minDemand ?? 4;
  const pairs = new Map<string, PairState>();
  /** Local id → its lease. */
  const calls = new Map<string, Lease>();
  let seq = 0;

  const pairKey = (p: LeasePair) => `${p.deployment}\u0000${p.tenant}`;
  const stateOf = (key: string): PairState => {
    let st = pairs.get(key);
    if (!st) pairs.set(key, (st = { taking: false, backoffUntil: 0, nextRequests: MIN_REQUESTS, waiters: 0, meanTokens: 0, leases: [], seen: 0, seenBefore: 0, seenSince: clock.now() }));
    return st;
  };
  const usable = (l: Lease, now: number) => !l.revoked && now < l.sentAt + useMs;

  /** The size of the next lease: grown after one ran out, capped by the pair's limits. */
  const sizeFor = (st: PairState, cap: LeaseSize, tokens: number): LeaseSize | undefined => {
    const requests = Math.min(cap.requests, st.nextRequests);
    if (requests < MIN_REQUESTS) return undefined;
    // Room for this call and the pair's usual ones after it, with a quarter to spare.
    const want = Math.ceil(tokens + (requests - 1) * st.meanTokens * 1.25);
    const leaseTokens = Math.min(cap.tokens, want);
    if (leaseTokens < tokens) return undefined;
    return { requests, tokens: leaseTokens };
  };

  const close = (l: Lease, forced: boolean): LeaseSettlement => {
    for (const [id, reserved] of l.running) {
      calls.delete(id);
      // Still running at a forced close: charged at its reservation, as an expired per-call reservation is.
      if (forced) l.actualTokens += reserved;
    }
    l.running.clear();
    const st = pairs.get(l.pair);
    if (st) {
      st.leases = st.leases.filter((x) => x !== l);
      // Sized to what the pair used in one window (grown at once when one ran out).
      if (!l.ranOut && !l.revoked) st.nextRequests = Math.max(MIN_REQUESTS, Math.ceil(l.used * 1.25));
    }
    return { reservationId: l.reservationId, usedRequests: l.used, actualTokens: l.actualTokens, lastUseMs: Math.min(useMs, Math.max(0, l.lastUseMs)) };
  };

  return {
    admit(pair, tokens) {
      const cap = options.caps(pair);
      if (!cap) return { kind: 'exact' };
      const now = clock.now();
      const key = pairKey(pair);
      const st = stateOf(key);
      st.meanTokens = st.meanTokens === 0 ? tokens : st.meanTokens * 0.8 + tokens * 0.2;
      if (now - st.seenSince >= useMs) {
        st.seenBefore = now - st.seenSince >= 2 * useMs ? 0 : st.seen;
        st.seen = 0;
        st.seenSince = now;
      }
      st.seen += 1;
      for (const l of st.leases) {
        if (!usable(l, now)) continue;
        if (l.requestsLeft < 1 || l.tokensLeft < tokens) {
          l.ranOut = true;
          continue;
        }
        l.requestsLeft -= 1;
        l.tokensLeft -= tokens;
        l.used += 1;
        l.lastUseMs = Math.max(l.lastUseMs, now - l.sentAt);
        const id = `${ID_PREFIX}${++seq}`;
        l.running.set(id, tokens);
        calls.set(id, l);
        const elapsed = (now - l.sentAt) / useMs;
        // Short of room early in its window: the pair needs twice as much. Near
        // the window's end: the next one, sized to this one's use.
        const short = l.requestsLeft < l.size.requests * PREFETCH_AT && elapsed < 1 - PREFETCH_AT;
        const ending = elapsed >= 1 - PREFETCH_AT / 2;
        if ((short || ending) && !st.taking && st.backoffUntil <= now && !st.leases.some((x) => x !== l && usable(x, now))) {
          st.nextRequests = short ? l.size.requests * 2 : Math.max(MIN_REQUESTS, Math.ceil(l.used * 1.25));
          const size = sizeFor(st, cap, st.meanTokens);
          if (size) {
            st.taking = true;
            return { kind: 'admitted', id, prefetch: size };
          }
        }
        return { kind: 'admitted', id };
      }
      if (st.taking) {
        st.waiters += 1;
        return { kind: 'wait' };
      }
      if (st.backoffUntil > now || Math.max(st.seen, st.seenBefore) < minDemand) return { kind: 'exact' };
      if (st.leases.some((l) => l.ranOut && usable(l, now))) st.nextRequests = Math.max(st.nextRequests, ...st.leases.map((l) => l.size.requests * 2));
      const size = sizeFor(st, cap, tokens);
      if (!size) return { kind: 'exact' };
      st.taking = true;
      return { kind: 'take', size };
    },

    granted(pair, reservationId, size, sentAt) {
      const key = pairKey(pair);
      const st = stateOf(key);
      st.taking = false;
      // Its answer took most of its window (a loaded limiter): leases cost a hop and admit little, so the per-call path for a while.
      if ((clock.now() - sentAt) * 2 > useMs) st.backoffUntil = clock.now() + SLOW_BACKOFF * useMs;
      st.nextRequests = Math.max(st.nextRequests, 2 * st.waiters);
      st.waiters = 0;
      st.leases.push({
        reservationId,
        pair: key,
        deployment: pair.deployment,
        size,
        sentAt,
        requestsLeft: size.requests,
        tokensLeft: size.tokens,
        used: 0,
        actualTokens: 0,
        lastUseMs: 0,
        running: new Map(),
        revoked: false,
        ranOut: false,
      });
    },

    refused(pair) {
      const st = stateOf(pairKey(pair));
      st.taking = false;
      st.waiters = 0;
      st.backoffUntil = clock.now() + useMs;
      st.nextRequests = Math.max(MIN_REQUESTS, Math.floor(st.nextRequests / 2));
    },

    settle(id, usage) {
      if (!id.startsWith(ID_PREFIX)) return false;
      const l = calls.get(id);
      if (!l) return true;
      calls.delete(id);
      const reserved = l.running.get(id) ?? 0;
      l.running.delete(id);
      if (usage === 'cancelled') {
        // It never reached the provider: not used, and its room is the lease's again.
        l.used -= 1;
        l.requestsLeft += 1;
        l.tokensLeft += reserved;
      } else {
        l.actualTokens += usage.tokens;
      }
      return true;
    },

    owns: (id) => id.startsWith(ID_PREFIX),

    revoke(deployment) {
      for (const st of pairs.values()) for (const l of st.leases) if (l.deployment === deployment) l.revoked = true;
    },

    due() {
      const now = clock.now();
      const out: LeaseSettlement[] = [];
      for (const st of [...pairs.values()]) {
        for (const l of [...st.leases]) {
          const spent = l.requestsLeft < 1;
          const over = !usable(l, now) || (spent && l.running.size === 0);
          if (over && l.running.size === 0) out.push(close(l, false));
          else if (now >= l.sentAt + holdMs) out.push(close(l, true));
        }
      }
      return out;
    },

    drain() {
      const out: LeaseSettlement[] = [];
      for (const st of [...pairs.values()]) for (const l of [...st.leases]) out.push(close(l, true));
      return out;
    },
  };
}

/** A lease is at most this share of any limit of its keys, so a few routers' leases leave room for the per-call path. */
const LEASE_SHARE_OF_LIMIT = 1 / 8;
/** The limiter's MAX_REQUESTS and MAX_TOKENS bound a lease like any Acquire. */
const MAX_LEASE_REQUESTS = 200;
const MAX_LEASE_TOKENS = 1_000_000;

/**
 * The largest lease of each pair, from the config the limiter enforces
 * (deployment limits × headroom, tenant limits as written); undefined for a
 * pair the limiter would refuse a lease: a concurrency or TPD limit.
 */
export function leaseCaps(gateway: SwitchyardConfig): (pair: LeasePair) => LeaseSize | undefined {
  const headroom = gateway.defaults.headroom;
  const part = (limit: number | undefined, factor: number) =>
    limit === undefined ? Infinity : Math.floor(Math.max(1, Math.floor(limit * factor)) * LEASE_SHARE_OF_LIMIT);
  return (pair) => {
    const d = Object.hasOwn(gateway.deployments, pair.deployment) ? gateway.deployments[pair.deployment] : undefined;
    if (!d || d.limits.concurrency !== undefined || d.limits.tpd !== undefined) return undefined;
    const t = Object.hasOwn(gateway.tenants, pair.tenant) ? gateway.tenants[pair.tenant] : undefined;
    return {
      requests: Math.min(MAX_LEASE_REQUESTS, part(d.limits.rpm, headroom), part(t?.limits.rpm, 1)),
      tokens: Math.min(MAX_LEASE_TOKENS, part(d.limits.tpm, headroom), part(t?.limits.tpm, 1)),
    };
  };
}
