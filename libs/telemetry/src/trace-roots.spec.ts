import { context, ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { extractTraceContext, injectTraceContext } from './propagation';
import { entryPointSampler, TRACE_ROOT_ATTRIBUTE, withTraceRoot } from './trace-roots';

describe('entryPointSampler: only calls start traces', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ sampler: entryPointSampler(), spanProcessors: [new SimpleSpanProcessor(exporter)] });
  beforeAll(() => provider.register());
  afterAll(async () => {
    await provider.shutdown();
    trace.disable();
    context.disable();
  });
  beforeEach(() => exporter.reset());
  const tracer = () => trace.getTracer('t');

  it('drops a root that is not a request (a heartbeat publish, a sweep, a probe client call) and every child of it', () => {
    for (const kind of [SpanKind.INTERNAL, SpanKind.CLIENT, SpanKind.PRODUCER, SpanKind.CONSUMER]) {
      const root = tracer().startSpan('housekeeping', { kind });
      expect(root.isRecording()).toBe(false);
      const child = tracer().startSpan('EVALSHA', { kind: SpanKind.CLIENT }, trace.setSpan(ROOT_CONTEXT, root));
      expect(child.isRecording()).toBe(false);
      child.end();
      root.end();
    }
    expect(exporter.getFinishedSpans()).toEqual([]);
  });

  it('drops the remote side of housekeeping too: a peer whose parent was not sampled records nothing', () => {
    const probe = tracer().startSpan('GetQuota', { kind: SpanKind.CLIENT });
    const headers: Record<string, string> = {};
    injectTraceContext((k, v) => (headers[k] = v), trace.setSpan(ROOT_CONTEXT, probe));
    expect(headers.traceparent).toMatch(/-00$/);
    const server = tracer().startSpan('grpc.switchyard.limiter.v1.LimiterService/GetQuota', { kind: SpanKind.SERVER }, extractTraceContext((k) => headers[k]));
    expect(server.isRecording()).toBe(false);
  });

  it('keeps an incoming request and everything under it, but not health checks', () => {
    const server = tracer().startSpan('grpc.switchyard.router.v1.RouterService/Complete', { kind: SpanKind.SERVER });
    const child = tracer().startSpan('redis.script sy_lim_acquire', {}, trace.setSpan(ROOT_CONTEXT, server));
    child.end();
    server.end();
    expect(exporter.getFinishedSpans().map((s) => s.name)).toEqual(['redis.script sy_lim_acquire', 'grpc.switchyard.router.v1.RouterService/Complete']);
    expect(tracer().startSpan('grpc.grpc.health.v1.Health/Check', { kind: SpanKind.SERVER }).isRecording()).toBe(false);
  });

  it('keeps user work that arrives without a request when it is marked as a trace root', async () => {
    const traceId = await withTraceRoot('job run', async (span) => {
      tracer().startSpan('grpc.switchyard.router.v1.RouterService/Complete', { kind: SpanKind.CLIENT }).end();
      return span.spanContext().traceId;
    });
    const spans = exporter.getFinishedSpans();
    expect(spans.map((s) => [s.name, s.spanContext().traceId])).toEqual([
      ['grpc.switchyard.router.v1.RouterService/Complete', traceId],
      ['job run', traceId],
    ]);
    expect(spans[1]!.attributes[TRACE_ROOT_ATTRIBUTE]).toBe(true);
  });
});
