import { create } from '@bufbuild/protobuf';
import { CompleteResponseSchema, type CompleteRequest, type CompleteResponse } from '@switchyard/contracts';
import type { CallContext } from '@switchyard/grpc';
import { setGenAiAttributes } from '@switchyard/telemetry';
import type { ChatResponse } from '@switchyard/providers';
import { runAttempts, type AttemptPorts } from '../domain/run-attempts';
import type { RouterContext } from '../router-context';
import { failureError } from './failure';
import { abandonIdempotency, claimIdempotency, completeIdempotency } from './idempotency';
import {
  cacheStatusFor,
  commitBudget,
  costMicros,
  degradedNotes,
  fanOut,
  finishReasonProto,
  fromCache,
  loopOptions,
  prepareCall,
  type PreparedCall,
  recordAttempt,
  releaseBudget,
  servedBy,
  settleAdmission,
  sharedPorts,
  storeInCache,
  toAttemptProto,
} from './pipeline';
import { inCallSpan, withAttemptSpan } from './tracing';

/** RouterService.Complete: the life of one call (DESIGN.md), one whole answer. */
export function createCompleteHandler(ctx: RouterContext) {
  return async (req: CompleteRequest, call: CallContext): Promise<CompleteResponse> =>
    inCallSpan('router.Complete', call, async (span) => {
      const p = prepareCall(ctx, req, call.metadata, call.deadline);
      span.setAttributes({ 'switchyard.request_id': p.requestId, 'switchyard.route': p.call.routeName, 'switchyard.tenant': p.owner.tenantId });
      const idem = await claimIdempotency(ctx, p);
      if (idem.kind === 'done') return idem.response;
      try {
        const response = await completeOnce(ctx, p, call, idem.kind === 'unavailable' ? idem.note : undefined);
        completeIdempotency(ctx, p, idem, response);
        return response;
      } catch (err) {
        abandonIdempotency(ctx, p, idem);
        throw err;
      }
    });
}

async function completeOnce(ctx: RouterContext, p: PreparedCall, call: CallContext, idempotencyNote: string | undefined): Promise<CompleteResponse> {
  const fan = await fanOut(ctx, p);

  if (fan.cache.kind === 'hit') {
    settleAdmission(ctx, p, fan.firstAdmission, 'cancelled');
    releaseBudget(ctx, p, fan.budget);
    return fromCache(p, fan.cache, []);
  }
  if (fan.budget.kind === 'denied') {
    settleAdmission(ctx, p, fan.firstAdmission, 'cancelled');
    throw fan.budget.error;
  }

  const ports: AttemptPorts<ChatResponse> = {
    ...sharedPorts(ctx, p, call.signal, false),
    call: (c, timeoutMs) =>
      withAttemptSpan(c, p.call.chat.maxTokens, async (span) => {
        const res = await ctx.adapters.get(c.name)!.complete(p.call.chat, { signal: call.signal, timeoutMs });
        setGenAiAttributes(span, { responseModel: res.model, inputTokens: res.usage.inputTokens, outputTokens: res.usage.outputTokens, finishReasons: [res.finishReason] });
        return res;
      }),
    afterAttempt: (e) => {
      if (e.value) ctx.latency.observe(e.candidate.name, e.record.latencyMs);
      recordAttempt(ctx, p, e, e.value ? { usage: e.value.usage, ...(e.value.rateLimit ? { rateLimit: e.value.rateLimit } : {}) } : {});
    },
    upstreamRequestIdOf: (res) => res.upstreamRequestId,
  };
  const result = await runAttempts(p.plan.usable, ports, loopOptions(ctx, p, fan, call.signal));

  if (result.ok) {
    const { value, candidate } = result;
    const cost = costMicros(candidate, value.usage);
    commitBudget(ctx, p, fan.budget, cost);
    const notes = degradedNotes(fan, result.attempts);
    if (idempotencyNote) notes.push(idempotencyNote);
    const response = create(CompleteResponseSchema, {
      content: value.content,
      finishReason: finishReasonProto(value.finishReason),
      usage: value.usage,
      costMicros: BigInt(cost),
      servedBy: servedBy(candidate),
      attempts: result.attempts.map(toAttemptProto),
      cacheStatus: cacheStatusFor(fan.cache),
      degraded: notes.length > 0,
      degradedReason: notes.join('; '),
      requestId: p.requestId,
    });
    storeInCache(ctx, p, response);
    return response;
  }

  releaseBudget(ctx, p, fan.budget);
  const failure = { ...result, skipped: [...p.plan.skipped, ...result.skipped] };
  if (fan.cache.kind === 'stale' && !failure.cancelled && failure.last?.classification.errorClass !== 'CONTENT_FILTER') {
    return fromCache(p, fan.cache, failure.attempts.map(toAttemptProto), 'stale cache: all candidates failed');
  }
  throw failureError(ctx, p, failure);
}
