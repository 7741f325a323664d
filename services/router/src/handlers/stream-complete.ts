import { create, type MessageInitShape } from '@bufbuild/protobuf';
import {
  ErrorClass as ErrorClassEnum,
  FinalSchema,
  FinishReason,
  type CompleteResponse,
  type StreamCompleteRequest,
  type StreamCompleteResponseSchema,
} from '@switchyard/contracts';
import type { CallContext, StreamSend } from '@switchyard/grpc';
import { CancelledError, CLASS_POLICY, ProviderError, ToolCallAssembler, type StreamChunk, type ToolCallDelta, type Usage } from '@switchyard/providers';
import { countTextTokens } from '@switchyard/tokens';
import type { Candidate } from '../domain/candidates';
import { ANSWER_MARGIN_MS, runAttempts, type AttemptPorts } from '../domain/run-attempts';
import { cacheStatusFor } from './answer';
import { firstWave, openCall } from './call-opening';
import type { CallSteps } from './call-steps';
import { requestFor } from './prepare-call';
import { servedBy, toAttemptProto } from './response-shapes';
import { inCallSpan, tagAttemptAnswer, withAttemptSpan } from './tracing';

type End = Extract<StreamChunk, { type: 'end' }>;
interface StreamedAnswer {
  text: string;
  end: End;
}

/**
 * RouterService.StreamComplete: the same steps as Complete, with deltas
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
export function createStreamCompleteHandler(steps: CallSteps) {
  return (req: StreamCompleteRequest, call: CallContext, send: StreamSend<typeof StreamCompleteResponseSchema>): Promise<void> =>
    inCallSpan('router.StreamComplete', call, (span) => steps.summary.run('StreamComplete', req, async (obs) => {
      /** `inputTokens`: on the stream's first delta only (Delta.input_tokens). */
      const sendDelta = (text: string, inputTokens = 0) => send({ event: { case: 'delta', value: { text, inputTokens } } });
      const sendToolCallDelta = (d: ToolCallDelta, inputTokens = 0) =>
        send({ event: { case: 'delta', value: { inputTokens, toolCall: { index: d.index, id: d.id ?? '', name: d.name ?? '', argumentsFragment: d.argumentsDelta } } } });
      const sendFinal = (final: MessageInitShape<typeof FinalSchema>) => send({ event: { case: 'final', value: create(FinalSchema, final) } });
      /** A whole answer as a stream: its content and each tool call as one delta (none already sent), the rest as the Final. */
      const sendWhole = async (response: CompleteResponse, contentSent: boolean) => {
        obs.answered(response);
        const inputTokens = response.usage?.inputTokens ?? 0;
        if (response.content && !contentSent) await sendDelta(response.content, inputTokens);
        if (!contentSent) {
          for (const [index, c] of response.toolCalls.entries()) {
            await sendToolCallDelta({ type: 'tool_call_delta', index, id: c.id, name: c.name, argumentsDelta: c.arguments }, index === 0 && !response.content ? inputTokens : 0);
          }
        }
        const { content: _content, $typeName: _t, ...rest } = response;
        await sendFinal(rest);
      };

      // 1-2. Who is calling, what they asked for, where it may go.
      const { p, idempotency } = await openCall(steps, req, call, span, obs);
      if (idempotency.replay) {
        obs.replayed();
        return sendWhole(idempotency.replay, false);
      }
      try {
        // 3. Cache, budget and the first admission in parallel; a hit or a denial ends the call here.
        const { fan, early } = await firstWave(steps, p, idempotency, obs);
        if (early) {
          return await sendWhole(early, false);
        }

        // 4-6. Pick, dispatch, classify, retry or fall back; deltas reach the caller as they come.
        let committed = false;
        let partial = '';
        // The tool calls relayed by the current attempt: what an INCOMPLETE Final reports.
        let toolCalls = new ToolCallAssembler();
        let toolCallText = '';
        let startedAt = 0;
        let timeToFirstTokenMs: number | undefined;
        let current: Candidate | undefined;
        const partialUsage = (c: Candidate): Usage => ({ inputTokens: p.inputTokens.get(c.name) ?? 0, outputTokens: countTextTokens(partial) + countTextTokens(toolCallText) });

        const loop = steps.loop(p, fan, call.signal, true);
        const ports: AttemptPorts<StreamedAnswer> = {
          ...loop.ports,
          committed: () => committed,
          call: (c) =>
            withAttemptSpan(c, requestFor(p, c.name).maxTokens, async (attemptSpan) => {
              current = c;
              partial = '';
              toolCalls = new ToolCallAssembler();
              toolCallText = '';
              timeToFirstTokenMs = undefined;
              startedAt = steps.clock.now();
              // A stream is bounded by the caller's deadline and the first-token and
              // idle timeouts, not by the per-attempt timeoutMs: long answers are fine
              // as long as tokens keep coming.
              const remaining = p.deadlineAt - startedAt - ANSWER_MARGIN_MS;
              const stream = steps.providers.get(c.name)!.stream(requestFor(p, c.name), {
                signal: call.signal,
                firstTokenTimeoutMs: c.deployment.firstTokenTimeoutMs,
                idleTimeoutMs: c.deployment.idleTimeoutMs,
                ...(Number.isFinite(remaining) ? { timeoutMs: Math.max(1, remaining) } : {}),
              });
              for await (const chunk of stream) {
                if (chunk.type === 'end') {
                  tagAttemptAnswer(attemptSpan, chunk);
                  return { text: partial, end: chunk };
                }
                if (chunk.type === 'delta' && !chunk.text) continue;
                // The first text or tool-call piece commits the stream: before it a failure fails over, after it the Final is INCOMPLETE.
                const inputTokens = committed ? 0 : (p.inputTokens.get(c.name) ?? 0);
                if (!committed) timeToFirstTokenMs = steps.clock.now() - startedAt;
                committed = true;
                try {
                  if (chunk.type === 'delta') {
                    partial += chunk.text;
                    await sendDelta(chunk.text, inputTokens);
                  } else {
                    toolCalls.add(chunk);
                    toolCallText += (chunk.name ?? '') + chunk.argumentsDelta;
                    await sendToolCallDelta(chunk, inputTokens);
                  }
                } catch (err) {
                  throw new CancelledError(err);
                }
              }
              // The adapter promises an end chunk; a silent end is an interruption, never a clean end.
              throw new ProviderError({ errorClass: 'STREAM_INTERRUPTED', ...CLASS_POLICY.STREAM_INTERRUPTED, message: 'upstream stream ended without an end event' }, undefined, c.name);
            }),
          upstreamRequestIdOf: (v) => v.end.upstreamRequestId,
          afterAttempt: (e) => {
            if (timeToFirstTokenMs !== undefined && e.candidate === current) steps.latency.observe(`stream:${e.candidate.name}`, timeToFirstTokenMs);
            const usage = e.value ? e.value.end.usage : committed ? partialUsage(e.candidate) : undefined;
            steps.reportAttempt(p, e, {
              streaming: true,
              ...(usage ? { usage } : {}),
              ...(e.value?.end.rateLimit ? { rateLimit: e.value.end.rateLimit } : {}),
              ...(timeToFirstTokenMs !== undefined ? { timeToFirstTokenMs } : {}),
            });
          },
        };
        const result = await runAttempts(p.plan.usable, ports, loop.options);
        obs.loop(result);

        if (!result.ok && committed && current) {
          // Output already reached the caller: account for it and end explicitly incomplete.
          const usage = partialUsage(current);
          const cost = steps.answer.chargePartial(p, fan, current, usage);
          if (result.cancelled) return;
          const cause = result.last?.classification;
          const final = {
            finishReason: FinishReason.INCOMPLETE,
            errorClass: ErrorClassEnum.STREAM_INTERRUPTED,
            errorMessage: cause ? `${cause.interruptedBy ? `${cause.interruptedBy}: ` : ''}${cause.message}` : result.reason,
            ...(cause?.interruptedBy ? { interruptedBy: ErrorClassEnum[cause.interruptedBy] } : {}),
            usage,
            costMicros: BigInt(cost),
            servedBy: servedBy(current),
            attempts: result.attempts.map(toAttemptProto),
            cacheStatus: cacheStatusFor(fan.cache),
            requestId: p.requestId,
            toolCalls: toolCalls.result() ?? [],
            ...(toolCalls.lastIndex !== undefined ? { partialToolCallIndex: toolCalls.lastIndex } : {}),
          };
          obs.answered({ ...final, degraded: false, degradedReason: '' });
          await sendFinal(final);
          return;
        }
        // 7-8. Account, store, answer; or a stale answer; or the error listing every attempt.
        const answer = steps.answer.afterAttempts(p, fan, result, (v) => ({
          content: v.text,
          finishReason: v.end.finishReason,
          usage: v.end.usage,
          ...(v.end.toolCalls ? { toolCalls: v.end.toolCalls } : {}),
          ...(v.end.refusal ? { refusal: v.end.refusal } : {}),
          ...(v.end.stopSequence ? { stopSequence: v.end.stopSequence } : {}),
        }), idempotency.degraded);
        if (answer.replayable) idempotency.keep(answer.response);
        await sendWhole(answer.response, result.ok);
      } finally {
        idempotency.finish();
      }
    }));
}
