import { randomUUID } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { AttemptOutcomeSchema, ErrorClass as ErrorClassEnum } from '@switchyard/contracts';
import type { Classification, ErrorClass, RateLimitSnapshot, Usage } from '@switchyard/providers';
import type { LimiterPeer } from '../adapters/limiter-peer';
import type { OutcomePublisher } from '../adapters/outcome-publisher';
import type { RouterMetrics } from '../adapters/router-metrics';
import type { AttemptEvent } from '../domain/run-attempts';
import { costMicros, countedTokens, reservedTokens } from '../domain/token-accounting';
import { logsInfo, type RouterContext } from '../router-context';
import type { AttemptAdmission } from './admission';
import { requestFor, type PreparedCall } from './prepare-call';
import { deploymentRef } from './response-shapes';

/** What an attempt produced besides its classification: usage, stream timing, the provider's rate-limit headers. */
export interface AttemptExtras {
  usage?: Usage;
  streaming?: boolean;
  timeToFirstTokenMs?: number;
  rateLimit?: RateLimitSnapshot;
}

/**
 * Step 7 for one upstream attempt: settle its limiter reservation (tokens as
 * the provider counts them; see token-accounting), tell the limiter about
 * rate limits / exhausted quota, publish the outcome, log one line. All of it
 * off the response path.
 */
export type AttemptReport = <T>(p: PreparedCall, event: AttemptEvent<T>, extras?: AttemptExtras) => void;

/**
 * The class an attempt's outcome event carries, which the breakers (shared
 * and local) count: the attempt's own, except for a stream interrupted after
 * its first output by a breaker failure (a reset, an overloaded error event, a
 * stall past the idle timeout), which carries what interrupted it. A stream
 * ended by its total timer was ended by the caller's deadline (a stream has no
 * other), which says nothing about the deployment.
 */
export function outcomeErrorClass(own: ErrorClass | undefined, c: Classification | undefined): ErrorClass | undefined {
  if (c?.errorClass !== 'STREAM_INTERRUPTED' || !c.interruptedBy || !c.countsTowardBreaker) return own;
  if (c.interruptedBy === 'TIMEOUT' && c.timeoutKind === 'total') return own;
  return c.interruptedBy;
}

export function createAttemptReport(
  deps: { admission: AttemptAdmission; limiter: LimiterPeer; outcomes: OutcomePublisher; metrics?: RouterMetrics } & Pick<RouterContext, 'clock' | 'logger'>,
): AttemptReport {
  const { admission: admissions, limiter, outcomes, clock, logger, metrics } = deps;
  return (p, event, extras = {}) => {
    const { candidate, admission, record, classification } = event;
    if (event.cancelled) {
      admissions.settle(p, admission, 'cancelled');
      logger.info({ event: 'attempt', request_id: p.requestId, deployment: candidate.name, attempt: record.attempt, cancelled: true }, 'attempt cancelled');
      return;
    }
    const usage = extras.usage;
    const cost = usage ? costMicros(candidate, usage) : undefined;
    metrics?.attempt({
      deployment: candidate.name,
      provider: candidate.deployment.provider,
      model: candidate.deployment.model,
      ...(record.errorClass ? { errorClass: record.errorClass } : {}),
      seconds: record.latencyMs / 1000,
      tenant: p.owner.tenantId,
      feature: p.call.feature,
      ...(usage ? { inputTokens: usage.inputTokens, outputTokens: usage.outputTokens } : {}),
      ...(cost !== undefined ? { costUsd: cost / 1_000_000 } : {}),
      ...(extras.timeToFirstTokenMs !== undefined ? { timeToFirstTokenSeconds: extras.timeToFirstTokenMs / 1000 } : {}),
    });
    const reserved = reservedTokens(p.inputTokens.get(candidate.name) ?? 0, requestFor(p, candidate.name).maxTokens);
    admissions.settle(p, admission, { tokens: countedTokens(candidate.deployment.provider, reserved, usage) });
    limiter.observe({
      deployment: deploymentRef(candidate),
      ...(classification ? { classification } : {}),
      ...(extras.rateLimit ? { successLimits: extras.rateLimit } : {}),
      requestId: p.requestId,
    });
    // The breakers (shared and local) learn of a deployment from its outcomes;
    // an attempt the caller's deadline cut short has none to tell.
    const outcomeClass = outcomeErrorClass(record.errorClass, classification);
    if (!event.cutByDeadline) {
      outcomes.publish(
        create(AttemptOutcomeSchema, {
          eventId: randomUUID(),
          requestId: p.requestId,
          route: p.call.routeName,
          tenant: p.owner.tenantId,
          feature: p.call.feature,
          deployment: deploymentRef(candidate),
          errorClass: outcomeClass ? ErrorClassEnum[outcomeClass] : ErrorClassEnum.UNSPECIFIED,
          httpStatus: record.httpStatus ?? (record.errorClass ? 0 : 200),
          latencyMs: record.latencyMs,
          upstreamRequestId: record.upstreamRequestId ?? '',
          timeUnixMs: BigInt(clock.now()),
          attempt: record.attempt,
          streaming: extras.streaming ?? false,
          timeToFirstTokenMs: extras.timeToFirstTokenMs ?? 0,
          ...(usage ? { usage } : {}),
        }),
      );
    }
    if (!logsInfo(logger)) return;
    logger.info(
      {
        event: 'attempt',
        request_id: p.requestId,
        tenant: p.owner.tenantId,
        feature: p.call.feature || undefined,
        route: p.call.routeName,
        provider: candidate.deployment.provider,
        deployment: candidate.name,
        model: candidate.deployment.model,
        attempt: record.attempt,
        // The HTTP status on success too (a success without one was a 200).
        status: record.httpStatus ?? (record.errorClass ? undefined : 200),
        error_class: record.errorClass,
        latency_ms: record.latencyMs,
        upstream_request_id: record.upstreamRequestId,
        prompt_tokens: usage?.inputTokens,
        completion_tokens: usage?.outputTokens,
        estimated_cost_micros: cost,
        note: record.note,
      },
      'provider attempt',
    );
  };
}
