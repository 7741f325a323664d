import { ErrorClass, ErrorClassSchema, LimiterService, type LimitKey } from '@switchyard/contracts';
import { type AccessTable, type ServiceRegistration, serviceRegistration } from '@switchyard/grpc';
import { type Clock, systemClock } from '@switchyard/util';
import type { Limiter } from '../domain/limiter';
import { type KeyRef, LimiterInputError } from '../domain/limiter-input';
import type { LimiterMetrics } from './limiter-metrics';
import { keyKindFromProto, limitKeyToProto, limitKindToProto, quotaStateToProto } from './quota-proto';

function keyRef(key: LimitKey | undefined): KeyRef {
  return { kind: key ? keyKindFromProto(key.kind) : undefined, id: key?.id ?? '' };
}

/** Proto ErrorClass → the provider library's class name ('RATE_LIMITED'); undefined for success. */
function errorClassName(value: ErrorClass): string | undefined {
  if (value === ErrorClass.UNSPECIFIED) return undefined;
  return ErrorClassSchema.value[value]?.name.replace(/^ERROR_CLASS_/, '');
}

/**
 * Who may call what (checked by createGrpcServer): clearing a deployment's
 * unavailable mark is an operator's decision; quota views are read-only.
 */
export const LIMITER_ACCESS: AccessTable<(typeof LimiterService)['method']> = { clearUnavailable: 'operator', getQuota: 'either' };

/**
 * The call's deadline on the limiter's clock: gRPC gives it as a wall-clock
 * instant, the domain counts on its injected clock (the same for the system clock).
 */
function deadlineOn(clock: Clock, deadline: Date | undefined): number | undefined {
  return deadline ? clock.now() + (deadline.getTime() - Date.now()) : undefined;
}

/** LimiterService over the domain Limiter (the token checks are createGrpcServer's, per LIMITER_ACCESS). */
export function createLimiterHandlers(options: { limiter: Limiter; metrics?: LimiterMetrics; clock?: Clock }): ServiceRegistration {
  const { limiter, metrics } = options;
  const clock = options.clock ?? systemClock;

  return serviceRegistration(LimiterService, {
    async acquire(req, ctx) {
      const r = await limiter.acquire(
        {
          keys: req.keys.map(keyRef),
          requests: req.requests,
          tokens: req.tokens,
          reservationTtlMs: req.reservationTtlMs,
          maxWaitMs: req.maxWaitMs,
          requestId: req.requestId,
          leaseMs: req.leaseMs,
        },
        { signal: ctx.signal, deadlineMs: deadlineOn(clock, ctx.deadline) },
      );
      metrics?.acquire(r.granted ? 'granted' : 'denied', r.localFallback, r.waitedMs);
      if (r.granted) return { granted: true, reservationId: r.reservationId, waitedMs: r.waitedMs, localFallback: r.localFallback, grantedAtUnixMs: BigInt(r.grantedAtMs) };
      return {
        granted: false,
        retryAfterMs: r.retryAfterMs,
        retryAtUnixMs: BigInt(r.retryAtMs),
        blockedKey: limitKeyToProto(r.blockedKey),
        blockedLimit: limitKindToProto(r.blockedBy),
        waitedMs: r.waitedMs,
        localFallback: r.localFallback,
      };
    },

    async settle(req) {
      const r = await limiter.settle({
        reservationId: req.reservationId,
        actualTokens: req.actualTokens,
        cancelled: req.cancelled,
        leaseUsedRequests: req.leaseUsedRequests,
        leaseLastUseMs: req.leaseLastUseMs,
      });
      return { found: r.found, tokensReturned: r.tokensReturned, tokensOverrun: r.tokensOverrun };
    },

    async observe(req) {
      if (!req.deployment) throw new LimiterInputError('deployment', 'is required');
      const r = await limiter.observe({
        provider: req.deployment.provider,
        deployment: req.deployment.deployment,
        httpStatus: req.httpStatus,
        headers: req.headers,
        errorClass: errorClassName(req.errorClass),
        observedAtMs: Number(req.observedAtUnixMs),
      });
      if (r.cooldownUntilMs > 0 && (req.httpStatus === 429 || req.errorClass === ErrorClass.RATE_LIMITED)) metrics?.cooldown(req.deployment.deployment);
      return { cooldownUntilUnixMs: BigInt(r.cooldownUntilMs), unavailable: r.unavailable };
    },

    async clearUnavailable(req) {
      if (!req.deployment) throw new LimiterInputError('deployment', 'is required');
      const r = await limiter.clearUnavailable(req.deployment.provider, req.deployment.deployment);
      return { cleared: r.cleared, epoch: BigInt(r.epoch) };
    },

    async getQuota(req) {
      if (!req.key) throw new LimiterInputError('key', 'is required');
      const { key, state } = await limiter.getQuota(keyRef(req.key));
      return { quota: quotaStateToProto(key, state) };
    },
  }, LIMITER_ACCESS);
}
