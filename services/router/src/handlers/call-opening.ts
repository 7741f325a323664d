import type { CompleteResponse } from '@switchyard/contracts';
import type { CallContext } from '@switchyard/grpc';
import type { Span } from '@opentelemetry/api';
import type { CallRequest } from '../domain/validate-request';
import type { CallObservation } from './call-summary';
import type { CallSteps } from './call-steps';
import type { FanOut } from './fan-out';
import type { IdempotencyClaim } from './idempotency';
import type { PreparedCall } from './prepare-call';
import { tagCallSpan } from './tracing';

/**
 * Steps 1-2 and the idempotency claim, the same for Complete and
 * StreamComplete: who is calling, what they asked for, where it may go, and
 * whether an earlier call with the same key already answered.
 */
export async function openCall(
  steps: CallSteps,
  req: CallRequest,
  call: Pick<CallContext, 'metadata' | 'deadline'>,
  span: Span,
  obs: CallObservation,
): Promise<{ p: PreparedCall; idempotency: IdempotencyClaim }> {
  const p = steps.prepare(req, call.metadata, call.deadline);
  obs.prepared(p);
  tagCallSpan(span, p);
  return { p, idempotency: await steps.claimIdempotency(p) };
}

/**
 * Step 3: cache, budget and the first admission in parallel. `early` is the
 * whole answer when a hit or a denial ends the call here (already kept for
 * the idempotency key); otherwise the attempts run on `fan`.
 */
export async function firstWave(steps: CallSteps, p: PreparedCall, idempotency: IdempotencyClaim, obs: CallObservation): Promise<{ fan: FanOut; early?: CompleteResponse }> {
  const fan = await steps.fanOut(p);
  obs.fanOut(fan);
  const early = steps.answer.beforeAttempts(p, fan);
  if (!early) return { fan };
  idempotency.keep(early);
  return { fan, early };
}
