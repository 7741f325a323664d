import {
  context,
  INVALID_SPAN_CONTEXT,
  ROOT_CONTEXT,
  SpanKind,
  trace,
  type Attributes,
  type Context,
  type Span,
} from '@opentelemetry/api';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { runInSpan } from './run-in-span';

/**
 * W3C trace context (+ baggage) is the wire format of trace context on NATS
 * messages (DESIGN: "W3C trace context in the NATS headers"). We use this
 * propagator explicitly instead of the global one so the header format does not
 * depend on whether (or how) a process configured the SDK: a message published
 * from a process without tracing still carries a valid traceparent if a span is
 * active, and a consumer always understands it.
 */
const w3c = new CompositePropagator({
  propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()],
});

const TRACER_NAME = '@switchyard/telemetry';

/** Writes `traceparent`/`tracestate`/`baggage` for `ctx` (default: the active context) through `set`. */
export function injectTraceContext(set: (key: string, value: string) => void, ctx: Context = context.active()): void {
  w3c.inject(ctx, undefined, { set: (_carrier, key, value) => set(key, value) });
}

/** Reads W3C trace context through `get` and returns a context whose parent is the remote span. */
export function extractTraceContext(
  get: (key: string) => string | undefined,
  ctx: Context = ROOT_CONTEXT,
): Context {
  return w3c.extract(ctx, undefined, {
    get: (_carrier, key) => get(key),
    keys: () => ['traceparent', 'tracestate', 'baggage'],
  });
}

export interface MessagingSpanOptions {
  /** `messaging.system`; default `nats`. */
  system?: string;
  attributes?: Attributes;
  /** Tracer (instrumentation scope) name; default `@switchyard/telemetry`. */
  tracerName?: string;
}

function messagingAttributes(subject: string, operation: 'publish' | 'process', options: MessagingSpanOptions): Attributes {
  return {
    'messaging.system': options.system ?? 'nats',
    'messaging.destination.name': subject,
    'messaging.operation.name': operation,
    'messaging.operation.type': operation === 'publish' ? 'send' : 'process',
    ...options.attributes,
  };
}

/**
 * Runs `fn` inside a PRODUCER span named `<subject> publish` and hands it the
 * trace headers to put on the message, so the consumer's span joins this trace.
 *
 * Only inside a trace: a publish with no active span (a heartbeat, a sweep's
 * event) is housekeeping, so it gets no span and no headers, and its consumer
 * starts no trace either (see entryPointSampler). A message that is user work
 * without a caller is published inside withTraceRoot.
 */
export async function withProducerSpan<T>(
  subject: string,
  fn: (traceHeaders: Record<string, string>, span: Span) => Promise<T> | T,
  options: MessagingSpanOptions = {},
): Promise<T> {
  const active = trace.getSpanContext(context.active());
  if (!active || !trace.isSpanContextValid(active)) return fn({}, trace.wrapSpanContext(INVALID_SPAN_CONTEXT));
  const tracer = trace.getTracer(options.tracerName ?? TRACER_NAME);
  const span = tracer.startSpan(`${subject} publish`, {
    kind: SpanKind.PRODUCER,
    attributes: messagingAttributes(subject, 'publish', options),
  });
  const ctx = trace.setSpan(context.active(), span);
  const traceHeaders: Record<string, string> = {};
  injectTraceContext((key, value) => (traceHeaders[key] = value), ctx);
  return runInSpan(span, ctx, () => fn(traceHeaders, span));
}

/**
 * Runs a message handler inside a CONSUMER span named `<subject> process`
 * whose parent is the producer span carried in `getHeader` (same trace id).
 */
export function withConsumerSpan<T>(
  subject: string,
  getHeader: (key: string) => string | undefined,
  fn: (span: Span) => Promise<T> | T,
  options: MessagingSpanOptions = {},
): Promise<T> {
  const tracer = trace.getTracer(options.tracerName ?? TRACER_NAME);
  const parent = extractTraceContext(getHeader, context.active());
  const span = tracer.startSpan(
    `${subject} process`,
    { kind: SpanKind.CONSUMER, attributes: messagingAttributes(subject, 'process', options) },
    parent,
  );
  const ctx = trace.setSpan(parent, span);
  return runInSpan(span, ctx, () => fn(span));
}
