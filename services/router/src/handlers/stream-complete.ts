import { create, type MessageInitShape } from '@bufbuild/protobuf';
import {
  CompleteResponseSchema,
  ErrorClass as ErrorClassEnum,
  FinalSchema,
  FinishReason,
  type StreamCompleteRequest,
  type StreamCompleteResponseSchema,
} from '@switchyard/contracts';
import type { CallContext, StreamSend } from '@switchyard/grpc';
import { CancelledError, CLASS_POLICY, ProviderError, type StreamChunk, type Usage } from '@switchyard/providers';
import { setGenAiAttributes } from '@switchyard/telemetry';
import { countTextTokens } from '@switchyard/tokens';
import type { Candidate } from '../domain/candidates';
import { ANSWER_MARGIN_MS, runAttempts, type AttemptPorts } from '../domain/run-attempts';
import type { RouterContext } from '../router-context';
import { failureError } from './failure';
import { IdempotencyHold } from './idempotency';
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
  recordAttempt,
  releaseBudget,
  servedBy,
  settleAdmission,
  sharedPorts,
  storeInCache,
  toAttemptProto,
} from './pipeline';
import { inCallSpan, withAttemptSpan } from './tracing';

type End = Extract<StreamChunk, { type: 'end' }>;
interface StreamedAnswer {
  text: string;
  end: End;
}

/**
 * RouterService.StreamComplete: the same pipeline as Complete, with deltas
 * forwarded as they arrive. Until the first delta reaches the caller a failure
 * fails over like any other; after it, the stream ends with a Final marked
 * INCOMPLETE / STREAM_INTERRUPTED (never a clean end), and the partial output
 * is still accounted (tokens counted locally when the provider gave no usage).
 *
 * With an idempotency key the call runs once per key (see idempotency.ts):
 * duplicates get the kept answer replayed as a stream. Only a whole answer is
 * kept (a clean end, or a cached one); a throw, an INCOMPLETE end or a
 * cancelled caller gives the key back, so partial output is never replayed.
 */
export function createStreamCompleteHandler(ctx: RouterContext) {
  return (req: StreamCompleteRequest, call: CallContext, send: StreamSend<typeof StreamCompleteResponseSchema>): Promise<void> => {
    const idempotency = new IdempotencyHold(ctx);
    return inCallSpan('router.StreamComplete', call, async (span) => {
      const p = prepareCall(ctx, req, call.metadata, call.deadline);
      span.setAttributes({ 'switchyard.request_id': p.requestId, 'switchyard.route': p.call.routeName, 'switchyard.tenant': p.owner.tenantId });
      const sendDelta = (text: string) => send({ event: { case: 'delta', value: { text } } });
      const sendFinal = (final: MessageInitShape<typeof FinalSchema>) => send({ event: { case: 'final', value: create(FinalSchema, final) } });

      const replayCached = async (response: ReturnType<typeof fromCache>) => {
        if (response.content) await sendDelta(response.content);
        const { content: _content, $typeName: _t, ...rest } = response;
        await sendFinal(rest);
      };

      const claim = await idempotency.claim(p);
      if (claim.kind === 'done') return replayCached(claim.response);
      const fan = await fanOut(ctx, p);
      if (fan.cache.kind === 'hit') {
        settleAdmission(ctx, p, fan.firstAdmission, 'cancelled');
        releaseBudget(ctx, p, fan.budget);
        const cached = fromCache(p, fan.cache, []);
        idempotency.keep(cached);
        await replayCached(cached);
        return;
      }
      if (fan.budget.kind === 'denied') {
        settleAdmission(ctx, p, fan.firstAdmission, 'cancelled');
        throw fan.budget.error;
      }

      let committed = false;
      let partial = '';
      let startedAt = 0;
      let timeToFirstTokenMs: number | undefined;
      let current: Candidate | undefined;
      const partialUsage = (c: Candidate): Usage => ({ inputTokens: p.inputTokens.get(c.name) ?? 0, outputTokens: countTextTokens(partial) });

      const ports: AttemptPorts<StreamedAnswer> = {
        ...sharedPorts(ctx, p, call.signal, true),
        committed: () => committed,
        call: (c) =>
          withAttemptSpan(c, p.call.chat.maxTokens, async (span) => {
            current = c;
            partial = '';
            timeToFirstTokenMs = undefined;
            startedAt = ctx.clock.now();
            // A stream is bounded by the caller's deadline and the first-token and
            // idle timeouts, not by the per-attempt timeoutMs: long answers are fine
            // as long as tokens keep coming.
            const remaining = p.deadlineAt - startedAt - ANSWER_MARGIN_MS;
            const stream = ctx.adapters.get(c.name)!.stream(p.call.chat, {
              signal: call.signal,
              firstTokenTimeoutMs: c.deployment.firstTokenTimeoutMs,
              idleTimeoutMs: c.deployment.idleTimeoutMs,
              ...(Number.isFinite(remaining) ? { timeoutMs: Math.max(1, remaining) } : {}),
            });
            for await (const chunk of stream) {
              if (chunk.type === 'end') {
                setGenAiAttributes(span, { inputTokens: chunk.usage.inputTokens, outputTokens: chunk.usage.outputTokens, finishReasons: [chunk.finishReason] });
                return { text: partial, end: chunk };
              }
              // Tool-call deltas are not relayed yet (issue 12, router part); text only, as before.
              if (chunk.type !== 'delta' || !chunk.text) continue;
              if (!committed) timeToFirstTokenMs = ctx.clock.now() - startedAt;
              committed = true;
              partial += chunk.text;
              try {
                await sendDelta(chunk.text);
              } catch (err) {
                throw new CancelledError(err);
              }
            }
            // The adapter promises an end chunk; a silent end is an interruption, never a clean end.
            throw new ProviderError({ errorClass: 'STREAM_INTERRUPTED', ...CLASS_POLICY.STREAM_INTERRUPTED, message: 'upstream stream ended without an end event' }, undefined, c.name);
          }),
        upstreamRequestIdOf: (v) => v.end.upstreamRequestId,
        afterAttempt: (e) => {
          if (timeToFirstTokenMs !== undefined && e.candidate === current) ctx.latency.observe(`stream:${e.candidate.name}`, timeToFirstTokenMs);
          const usage = e.value ? e.value.end.usage : committed ? partialUsage(e.candidate) : undefined;
          recordAttempt(ctx, p, e, {
            streaming: true,
            ...(usage ? { usage } : {}),
            ...(e.value?.end.rateLimit ? { rateLimit: e.value.end.rateLimit } : {}),
            ...(timeToFirstTokenMs !== undefined ? { timeToFirstTokenMs } : {}),
          });
        },
      };
      const result = await runAttempts(p.plan.usable, ports, loopOptions(ctx, p, fan, call.signal));

      if (result.ok) {
        const { value, candidate } = result;
        const cost = costMicros(candidate, value.end.usage);
        commitBudget(ctx, p, fan.budget, cost);
        const notes = degradedNotes(fan, result.attempts);
        if (claim.kind === 'unavailable') notes.push(claim.note);
        const summary = {
          finishReason: finishReasonProto(value.end.finishReason),
          usage: value.end.usage,
          costMicros: BigInt(cost),
          servedBy: servedBy(candidate),
          attempts: result.attempts.map(toAttemptProto),
          cacheStatus: cacheStatusFor(fan.cache),
          degraded: notes.length > 0,
          degradedReason: notes.join('; '),
          requestId: p.requestId,
        };
        const whole = create(CompleteResponseSchema, { ...summary, content: value.text });
        storeInCache(ctx, p, whole);
        idempotency.keep(whole);
        await sendFinal(summary);
        return;
      }

      if (committed && current) {
        // Output already reached the caller: account for it and end explicitly incomplete.
        const usage = partialUsage(current);
        const cost = costMicros(current, usage);
        commitBudget(ctx, p, fan.budget, cost);
        if (result.cancelled) return;
        const cause = result.last?.classification;
        await sendFinal({
          finishReason: FinishReason.INCOMPLETE,
          errorClass: ErrorClassEnum.STREAM_INTERRUPTED,
          errorMessage: cause ? `${cause.interruptedBy ? `${cause.interruptedBy}: ` : ''}${cause.message}` : result.reason,
          usage,
          costMicros: BigInt(cost),
          servedBy: servedBy(current),
          attempts: result.attempts.map(toAttemptProto),
          cacheStatus: cacheStatusFor(fan.cache),
          requestId: p.requestId,
        });
        return;
      }

      releaseBudget(ctx, p, fan.budget);
      const failure = { ...result, skipped: [...p.plan.skipped, ...result.skipped] };
      if (fan.cache.kind === 'stale' && !failure.cancelled && failure.last?.classification.errorClass !== 'CONTENT_FILTER') {
        const stale = fromCache(p, fan.cache, failure.attempts.map(toAttemptProto), 'stale cache: all candidates failed');
        idempotency.keep(stale);
        await replayCached(stale);
        return;
      }
      throw failureError(ctx, p, failure);
    }).finally(() => idempotency.releaseUnlessKept());
  };
}
