import { ErrorClass as ErrorClassEnum, KeyKind, LimitKind } from '@switchyard/contracts';
import { status } from '@switchyard/grpc';
import { rateLimitHeadersOf, type Classification, type RateLimitSnapshot } from '@switchyard/providers';
import { classEffects } from '../domain/outcome-action';
import { createRateLimitReports } from '../domain/rate-limit-reports';
import type { Admission } from '../domain/run-attempts';
import type { SettleRetry } from '../settle-retry';
import type { LimiterFallback, SharedAcquire } from './limiter-fallback';
import { hopDeadline, peerErrorCode, peerErrorText, type PeerDeps } from './peer-call';
import type { LimiterClient } from './peers';

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
}: PeerDeps<LimiterClient> & { settleRetry: SettleRetry; fallback: LimiterFallback }): LimiterPeer {
  const rateLimitReports = createRateLimitReports();

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
        admission: { granted: false, retryAfterMs: res.retryAfterMs, reason: `${who} ${LIMIT_NAMES[res.blockedLimit] ?? 'limit'} exhausted`, final: tenantBlocked },
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

  return {
    acquire(a) {
      return fallback.admit({ deployment: a.deployment, tenant: a.tenant, tokens: a.tokens }, () => acquireShared(a));
    },
    settle(reservationId, usage, requestId) {
      // A reservation the share made alone has nothing to settle at the limiter.
      if (fallback.settle(reservationId, usage)) return;
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
  };
}
