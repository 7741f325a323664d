import { context, ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api';
import { startInMemoryTracing, type InMemoryTracing } from '@switchyard/testing';
import { extractTraceContext, injectTraceContext, withConsumerSpan, withProducerSpan } from './propagation';

describe('NATS trace propagation', () => {
  let tracing: InMemoryTracing;
  beforeAll(() => (tracing = startInMemoryTracing()));
  afterAll(() => tracing.shutdown());
  beforeEach(() => tracing.reset());

  it('round-trips W3C trace context through header setters/getters', () => {
    const headers: Record<string, string> = {};
    const span = trace.getTracer('t').startSpan('s');
    injectTraceContext((k, v) => (headers[k] = v), trace.setSpan(ROOT_CONTEXT, span));
    span.end();
    const { traceId, spanId } = span.spanContext();
    expect(headers.traceparent).toBe(`00-${traceId}-${spanId}-01`);
    const remote = trace.getSpanContext(extractTraceContext((k) => headers[k]));
    expect(remote).toMatchObject({ traceId, spanId, isRemote: true });
  });

  it('injects nothing without an active span, and extract of garbage yields no parent', () => {
    const headers: Record<string, string> = {};
    injectTraceContext((k, v) => (headers[k] = v));
    expect(headers).toEqual({});
    expect(trace.getSpanContext(extractTraceContext(() => 'not-a-traceparent'))).toBeUndefined();
  });

  it('links the consumer span to the producer span (inside a trace) and records handler errors', async () => {
    let carried: Record<string, string> = {};
    const caller = trace.getTracer('t').startSpan('router call');
    await context.with(trace.setSpan(ROOT_CONTEXT, caller), () =>
      withProducerSpan('switchyard.outcomes.openai.gpt4o', (h) => {
        carried = h;
      }),
    );
    caller.end();
    await expect(
      withConsumerSpan('switchyard.outcomes.openai.gpt4o', (k) => carried[k], () => {
        throw new Error('handler broke');
      }),
    ).rejects.toThrow('handler broke');
    const [producer, consumer] = tracing.spans().filter((s) => s.name !== 'router call');
    expect(tracing.spans()).toHaveLength(3);
    expect(producer!.name).toBe('switchyard.outcomes.openai.gpt4o publish');
    expect(producer!.kind).toBe(SpanKind.PRODUCER);
    expect(producer!.parentSpanContext?.spanId).toBe(caller.spanContext().spanId);
    expect(consumer!.name).toBe('switchyard.outcomes.openai.gpt4o process');
    expect(consumer!.kind).toBe(SpanKind.CONSUMER);
    expect(consumer!.spanContext().traceId).toBe(caller.spanContext().traceId);
    expect(consumer!.parentSpanContext?.spanId).toBe(producer!.spanContext().spanId);
    expect(consumer!.status.code).toBe(2);
    expect(consumer!.events[0]!.name).toBe('exception');
  });

  it('starts no span and sends no trace headers for a publish outside any trace (heartbeats, sweeps)', async () => {
    let carried: Record<string, string> | undefined;
    const result = await withProducerSpan('switchyard.limiter.replicas', (h, span) => {
      carried = h;
      expect(span.isRecording()).toBe(false);
      return 'published';
    });
    expect(result).toBe('published');
    expect(carried).toEqual({});
    expect(tracing.spans()).toEqual([]);
  });
});
