import { SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import type { CallContext } from '@switchyard/grpc';
import type { ProviderError } from '@switchyard/providers';
import { getTracer, setGenAiAttributes } from '@switchyard/telemetry';
import { GEN_AI_PROVIDER } from '../adapters/router-metrics';
import type { Candidate } from '../domain/candidates';

export const TRACE_ID_HEADER = 'x-switchyard-trace-id';

const tracer = () => getTracer('switchyard-router');


/** Sends the active trace id as initial metadata so a caller can quote it; skipped when tracing is off. */
export function sendTraceId(call: CallContext): void {
  const ctx = trace.getActiveSpan()?.spanContext();
  if (ctx && trace.isSpanContextValid(ctx)) call.sendHeaders({ [TRACE_ID_HEADER]: ctx.traceId });
}

/**
 * The span of one router call (child of the gRPC server span when the
 * instrumentation runs): every peer hop and provider attempt nests under it,
 * and its trace id goes back to the caller as initial metadata.
 */
export async function inCallSpan<T>(name: string, call: CallContext, fn: (span: Span) => Promise<T>): Promise<T> {
  return tracer().startActiveSpan(name, async (span) => {
    try {
      sendTraceId(call);
      return await fn(span);
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
      throw err;
    } finally {
      span.end();
    }
  });
}

/**
 * One CLIENT span per provider attempt with GenAI semantic-convention
 * attributes (never prompt or completion text); the SDK's HTTP span nests under it.
 */
export async function withAttemptSpan<T>(c: Candidate, maxTokens: number, fn: (span: Span) => Promise<T>): Promise<T> {
  return tracer().startActiveSpan(`chat ${c.deployment.model}`, { kind: SpanKind.CLIENT, attributes: { 'switchyard.deployment': c.name } }, async (span) => {
    // Attributes only for a span that keeps them (tracing off or not sampled: nothing to build).
    if (span.isRecording()) setGenAiAttributes(span, { providerName: GEN_AI_PROVIDER[c.deployment.provider] ?? c.deployment.provider, requestModel: c.deployment.model, maxTokens });
    try {
      return await fn(span);
    } catch (err) {
      const classification = (err as ProviderError).classification;
      if (classification) {
        span.setAttributes({ 'error.type': classification.errorClass, 'switchyard.upstream_request_id': classification.upstreamRequestId ?? '' });
        // A stream that broke after it began, or a filtered answer, has an answer id too.
        if (classification.responseId) span.setAttribute('gen_ai.response.id', classification.responseId);
      }
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
      throw err;
    } finally {
      span.end();
    }
  });
}

/** What a successful attempt learnt about the answer (a ChatResponse, or a stream's end chunk). */
export interface AttemptAnswer {
  usage: { inputTokens: number; outputTokens: number };
  finishReason: string;
  model?: string;
  responseId?: string;
  upstreamRequestId?: string;
}

/**
 * Records the answer on its attempt span: usage, finish reason, and the two
 * ids a support ticket quotes, `gen_ai.response.id` (the provider's id of the
 * answer) and the upstream request id, on every successful attempt (failed
 * ones carry the request id from their classification).
 */
export function tagAttemptAnswer(span: Span, a: AttemptAnswer): void {
  if (!span.isRecording()) return;
  setGenAiAttributes(span, {
    ...(a.model ? { responseModel: a.model } : {}),
    ...(a.responseId ? { responseId: a.responseId } : {}),
    inputTokens: a.usage.inputTokens,
    outputTokens: a.usage.outputTokens,
    finishReasons: [a.finishReason],
  });
  if (a.upstreamRequestId) span.setAttribute('switchyard.upstream_request_id', a.upstreamRequestId);
}

/** Names the call on its span once it is known (after authentication and validation). */
export function tagCallSpan(span: Span, p: { requestId: string; call: { routeName: string }; owner: { tenantId: string } }): void {
  span.setAttributes({ 'switchyard.request_id': p.requestId, 'switchyard.route': p.call.routeName, 'switchyard.tenant': p.owner.tenantId });
}
