import { ErrorClass as ErrorClassEnum, KeyKind, LimitKind } from '@switchyard/contracts';
import { status } from '@switchyard/grpc';
import { rateLimitHeadersOf, type Classification, type RateLimitSnapshot } from '@switchyard/providers';
import { classEffects } from '../domain/outcome-action';
import { createRateLimitReports } from '../domain/rate-limit-reports';
import type { Admission } from '../domain/run-attempts';
import type { SettleRetry } from '../settle-retry';
import type { LimiterFallback, SharedAcquire } from './limiter-fallback';
import { hopDeadline, peerErrorCode, peerErrorText, withinHalfTimeLeft, type PeerDeps } from './peer-call';
import type { LimiterClient } from './peers';
import type { LeasePair, LeaseSettlement, LeaseSize, QuotaLeases } from './quota-leases';

export interface LimiterAcquire {
  deployment: string;
  tenant: string;
  /** Tokens to reserve (domain/token-accounting reservedTokens). */
  tokens: number;
  /** How long the limiter may queue the call for quota; 0 = answer at once. */
  maxWaitMs: number;
  /** The caller's cancellation: a queued wait ends when the caller leaves. */
  signal?: AbortSignal;
  requestId: string;
  /** Caller deadline as an instant; Infinity when none. */
  deadlineAt: number;
  /** Only the per-call Acquire will do (a half-open probe): never from a lease. */
  exact?: boolean;
}

/** What the provider said about its limits after one attempt: a failure's classification, or a success's headers. */
export interface LimiterObservation {
  deployment: { provider: string; deployment: string; model: string };
  classification?: Classification;
  successLimits?: RateLimitSnapshot;
  requestId: string;
}

/** The limiter service as the router uses it: Acquire → admission, Settle, Observe; its fallback when unreachable. */
export interface LimiterPeer {
  /**
   * Deployment key and tenant key, all-or-nothing. Never throws: while the
   * limiter service cannot answer, this router's share of every limit admits
   * (limiter-fallback.ts), degraded, never unmetered.
   */
  acquire(a: LimiterAcquire): Promise<Admission>;
  /** Settle a reservation to the tokens counted, or hand it back unused (off the response path). */
  settle(reservationId: string, usage: { tokens: number } | 'cancelled', requestId: string): void;
  /**
   * Every 429 / insufficient_quota with its retry-after and rate-limit
   * headers, and the headers of successful answers when they carry news (see
   * rate-limit-reports), reach the limiter (off the response path).
   */
  observe(o: LimiterObservation): void;
  /**
   * A quota event for the deployment (cooldown, exhaustion, unavailable): its
   * leases admit no more and are settled once their calls are over.
   */
  revokeLeases(deployment: string): void;
  /** Settles every lease (shutdown; the settles join the pending accounting). */
  stop(): void;
}

/** Quota leases (ROUTER_QUOTA_LEASES): most calls admitted without an Acquire hop. */
export interface LimiterLeasing {
  book: QuotaLeases;
  /** The limiter's lease_ms (the book's useMs). */
  leaseMs: number;
  /** reservation_ttl_ms of a lease: its settle comes before (the book's holdMs), a dead router's lease ends then. */
  reservationTtlMs: number;
  /** How often leases that are over are settled. */
  sweepMs: number;
}

const LIMIT_NAMES: Record<number, string> = {
  [LimitKind.RPM]: 'RPM',
  [LimitKind.TPM]: 'TPM',
  [LimitKind.TPD]: 'TPD',
  [LimitKind.CONCURRENCY]: 'concurrency',
  [LimitKind.COOLDOWN]: 'cooldown',
  [LimitKind.UNAVAILABLE]: 'unavailable',
};

/**
 * `settleRetry`: a failed Settle is retried on the next replica until its
 * reservation would expire. `fallback`: admission from this router's share of
 * the limits while the limiter service is unreachable.
 */
export function createLimiterPeer({
  client,
  clock,
  logger,
  tasks,
  peerDeadlineMs,
  settleRetry,
  fallback,
  leasing,
}: PeerDeps<LimiterClient> & { settleRetry: SettleRetry; fallback: LimiterFallback; leasing?: LimiterLeasing }): LimiterPeer {
  const rateLimitReports = createRateLimitReports();
  const keysOf = (p: LeasePair) => [
    { kind: KeyKind.DEPLOYMENT, id: p.deployment },
    { kind: KeyKind.TENANT, id: p.tenant },
  ];

  /** Acquire on the limiter service; what it came to decides whether the share steps in. Never throws. */
  async function acquireShared(a: LimiterAcquire): Promise<SharedAcquire> {
    const hop = hopDeadline({ now: clock.now(), deadlineAt: a.deadlineAt, peerDeadlineMs, waitMs: a.maxWaitMs });
    try {
      const res = await client.acquire(
        {
          keys: [
            { kind: KeyKind.DEPLOYMENT, id: a.deployment },
            { kind: KeyKind.TENANT, id: a.tenant },
          ],
          requests: 1,
          tokens: a.tokens,
          maxWaitMs: a.maxWaitMs,
        },
        a.signal ? { ...hop, signal: a.signal } : hop,
      );
      if (res.granted) {
        return {
          kind: 'answered',
          admission: res.localFallback
            ? { granted: true, reservationId: res.reservationId, note: 'limiter local fallback', degraded: { kind: 'limiter-local-fallback' } }
            : { granted: true, reservationId: res.reservationId },
        };
      }
      const key = res.blockedKey;
      const tenantBlocked = key?.kind === KeyKind.TENANT;
      const who = key ? `${tenantBlocked ? 'tenant' : 'deployment'} ${key.id}` : a.deployment;
      return {
        kind: 'answered',
        admission: {
          granted: false,
          retryAfterMs: res.retryAfterMs,
          reason: `${who} ${LIMIT_NAMES[res.blockedLimit] ?? 'limit'} exhausted`,
          final: tenantBlocked,
          ...(res.blockedLimit === LimitKind.CONCURRENCY ? { mayFreeSooner: true } : {}),
        },
      };
    } catch (err) {
      // The caller left while queued: not a limiter failure, and nothing to admit.
      if (a.signal?.aborted) return { kind: 'unanswered', admission: { granted: false, retryAfterMs: 0, reason: 'caller cancelled while waiting for quota', final: true } };
      const code = peerErrorCode(err);
      // A wait in the limiter's queue that outlived its hop is the caller's time
      // running out while short of quota, not a limiter outage: admitting it
      // from the share would send exactly the request the queue was holding back.
      if (a.maxWaitMs > 0 && code === status.DEADLINE_EXCEEDED) {
        return { kind: 'unanswered', admission: { granted: false, retryAfterMs: 0, reason: `${a.deployment} quota: still queued when the wait ran out`, final: true } };
      }
      // A hop cut short by the caller's own deadline says nothing about the
      // limiter (it must not switch every call to the share), and leaves no
      // time for an attempt.
      if (code === status.DEADLINE_EXCEEDED && hop.deadlineMs < peerDeadlineMs) {
        return { kind: 'unanswered', admission: { granted: false, retryAfterMs: 0, reason: "no limiter answer before the caller's deadline", final: true } };
      }
      // A request the limiter refuses as invalid is our misconfiguration (e.g.
      // ADMISSION_MAX_WAIT_MS above LIMITER_MAX_WAIT_MS), not an outage: admitting
      // it from the share would turn a config slip into a silently smaller limit.
      if (code === status.INVALID_ARGUMENT) {
        logger.error({ request_id: a.requestId, peer: 'limiter', deployment: a.deployment, err: { message: peerErrorText(err) } }, 'limiter rejected the acquire as invalid');
        return { kind: 'answered', admission: { granted: false, retryAfterMs: 0, reason: `limiter rejected the acquire (${peerErrorText(err)})`, final: true } };
      }
      return { kind: 'unreachable', error: peerErrorText(err) };
      }
  }

  /** The lease Acquire of a pair in flight: calls that find no room wait for its answer instead of asking too. */
  const taking = new Map<string, Promise<'granted' | 'refused' | { unreachable: string }>>();
  const pairKey = (p: LeasePair) => `${p.deployment}\u0000${p.tenant}`;

  function settleLease(l: LeaseSettlement) {
    tasks.run('limiter lease settle', { reservation_id: l.reservationId }, () =>
      settleRetry.run(() =>
        client.settle({ reservationId: l.reservationId, actualTokens: l.actualTokens, leaseUsedRequests: l.usedRequests, leaseLastUseMs: l.lastUseMs }),
      ),
    );
  }
  const settleDue = () => {
    if (leasing) for (const l of leasing.book.due()) settleLease(l);
  };
  const sweep = leasing ? setInterval(settleDue, leasing.sweepMs) : undefined;
  sweep?.unref?.();

  /** One lease Acquire for the pair; the book learns what came of it. Never throws. */
  function takeLease(l: LimiterLeasing, pair: LeasePair, size: LeaseSize) {
    const key = pairKey(pair);
    const sentAt = clock.now();
    const p = client
      .acquire(
        { keys: keysOf(pair), requests: size.requests, tokens: size.tokens, maxWaitMs: 0, leaseMs: l.leaseMs, reservationTtlMs: l.reservationTtlMs },
        hopDeadline({ now: sentAt, deadlineAt: Infinity, peerDeadlineMs, waitMs: 0 }),
      )
      .then(
        (res): 'granted' | 'refused' => {
          if (res.granted && !res.localFallback) {
            l.book.granted(pair, res.reservationId, size, sentAt);
            return 'granted';
          }
          // A lease from the limiter's own fallback share is no lease: hand it back, admit per call (marked degraded there).
          if (res.granted) settleLease({ reservationId: res.reservationId, usedRequests: 0, actualTokens: 0, lastUseMs: 0 });
          l.book.refused(pair);
          return 'refused';
        },
        (err: unknown) => {
          l.book.refused(pair);
          // A lease the limiter refuses as invalid (e.g. its config gave the key a concurrency limit) is not an outage.
          return peerErrorCode(err) === status.INVALID_ARGUMENT ? 'refused' : { unreachable: peerErrorText(err) };
        },
      )
      .finally(() => taking.delete(key));
    taking.set(key, p);
    return p;
  }

  /** Admission from a lease when one has room (or can be had); otherwise the per-call Acquire. */
  async function acquireLeased(l: LimiterLeasing, a: LimiterAcquire): Promise<SharedAcquire> {
    const pair = { deployment: a.deployment, tenant: a.tenant };
    // A few rounds at most: the lease this call asked for (or waited on) may be taken by the calls ahead of it.
    for (let round = 0; round < 4; round++) {
      const d = l.book.admit(pair, a.tokens);
      if (d.kind === 'admitted') {
        if (d.prefetch) void takeLease(l, pair, d.prefetch);
        return { kind: 'answered', admission: { granted: true, reservationId: d.id } };
      }
      if (d.kind === 'exact') break;
      const lease = d.kind === 'take' ? takeLease(l, pair, d.size) : (taking.get(pairKey(pair)) ?? Promise.resolve('refused' as const));
      const out = await withinHalfTimeLeft(lease, a.deadlineAt, clock);
      if (out === 'refused' || out === 'late') break;
      if (typeof out === 'object') return { kind: 'unreachable', error: out.unreachable };
    }
    return acquireShared(a);
  }

  return {
    acquire(a) {
      const call = { deployment: a.deployment, tenant: a.tenant, tokens: a.tokens };
      // A wait in the fair queue and a half-open probe are per call, as before.
      if (leasing && a.maxWaitMs === 0 && !a.exact) return fallback.admit(call, () => acquireLeased(leasing, a));
      return fallback.admit(call, () => acquireShared(a));
    },
    settle(reservationId, usage, requestId) {
      // A reservation the share made alone has nothing to settle at the limiter.
      if (fallback.settle(reservationId, usage)) return;
      // A lease admission is local bookkeeping: the lease settles once for all its calls.
      if (leasing?.book.settle(reservationId, usage)) {
        settleDue();
        return;
      }
      tasks.run('limiter settle', { request_id: requestId, reservation_id: reservationId }, () =>
        settleRetry.run(() =>
          usage === 'cancelled' ? client.settle({ reservationId, cancelled: true }) : client.settle({ reservationId, actualTokens: usage.tokens }),
        ),
      );
    },
    observe(o) {
      const { classification } = o;
      let headers: Record<string, string>;
      if (classification) {
        if (!classEffects(classification.errorClass).observeLimiter) return;
        headers = classification.rateLimit ? rateLimitHeadersOf(classification.rateLimit) : {};
        if (classification.retryAfterMs !== undefined) headers['retry-after-ms'] = String(classification.retryAfterMs);
      } else {
        if (!rateLimitReports.shouldReport(o.deployment.deployment, o.successLimits, clock.now())) return;
        headers = rateLimitHeadersOf(o.successLimits!);
      }
      // The provider pushed back: this router stops spending its leases there at once (the limiter's cooldown follows).
      if (classification && leasing) leasing.book.revoke(o.deployment.deployment);
      const observedAtUnixMs = BigInt(clock.now());
      tasks.run('limiter observe', { request_id: o.requestId, deployment: o.deployment.deployment }, () =>
        client.observe({
          deployment: o.deployment,
          observedAtUnixMs,
          httpStatus: classification ? (classification.status ?? 0) : 200,
          headers,
          errorClass: classification ? ErrorClassEnum[classification.errorClass] : ErrorClassEnum.UNSPECIFIED,
        }),
      );
    },
    revokeLeases(deployment) {
      if (!leasing) return;
      leasing.book.revoke(deployment);
      settleDue();
    },
    stop() {
      if (sweep) clearInterval(sweep);
      if (leasing) for (const l of leasing.book.drain()) settleLease(l);
    },
  };
}
