import { context, SpanKind, trace, type Attributes, type Context, type Link, type Span } from '@opentelemetry/api';
import { runInSpan } from './run-in-span';
import { ParentBasedSampler, SamplingDecision, type Sampler, type SamplingResult } from '@opentelemetry/sdk-trace-base';

/**
 * Marks a span as the start of user work that arrives without a request
 * (a queued job taken by a worker, a script's own call): the entry-point
 * sampler lets such a span start a trace although it is not a SERVER span.
 */
export const TRACE_ROOT_ATTRIBUTE = 'switchyard.trace.root';

/**
 * Incoming requests that are probes, not calls: gRPC health checks and
 * reflection. (Prometheus scrapes of /metrics are not traced at all; see
 * startTelemetry.)
 */
const PROBE_SPAN_PREFIXES = ['grpc.grpc.health.v1.', 'grpc.grpc.reflection.'];

/**
 * Decides whether a span WITHOUT a parent may start a trace: only a SERVER
 * span (a request arriving from outside the process) or a span marked with
 * TRACE_ROOT_ATTRIBUTE. Everything else that has no parent is housekeeping a
 * process does by itself (heartbeats, sweeps, probes, KV watches, periodic
 * reads) and is neither recorded nor exported, nor are its children: they
 * inherit the "not sampled" flag, also across gRPC and NATS.
 */
export class EntryPointSampler implements Sampler {
  shouldSample(_ctx: Context, _traceId: string, spanName: string, spanKind: SpanKind, attributes: Attributes, _links: Link[]): SamplingResult {
    const entry =
      attributes[TRACE_ROOT_ATTRIBUTE] === true || (spanKind === SpanKind.SERVER && !PROBE_SPAN_PREFIXES.some((p) => spanName.startsWith(p)));
    return { decision: entry ? SamplingDecision.RECORD_AND_SAMPLED : SamplingDecision.NOT_RECORD };
  }

  toString(): string {
    return 'EntryPointSampler';
  }
}

/** The sampler every service process runs with: a child follows its parent's decision; a root must be an entry point. */
export function entryPointSampler(): Sampler {
  return new ParentBasedSampler({ root: new EntryPointSampler() });
}

/**
 * Runs `fn` in a span that may start a trace although it is not a request
 * (TRACE_ROOT_ATTRIBUTE): for user work that arrives without trace context.
 * Inside an existing trace it is an ordinary child span. Never use it for
 * housekeeping.
 */
export function withTraceRoot<T>(name: string, fn: (span: Span) => Promise<T>, attributes: Attributes = {}, tracerName = '@switchyard/telemetry'): Promise<T> {
  const span = trace.getTracer(tracerName).startSpan(name, { kind: SpanKind.INTERNAL, attributes: { ...attributes, [TRACE_ROOT_ATTRIBUTE]: true } });
  return runInSpan(span, trace.setSpan(context.active(), span), () => fn(span));
}
