import { trace } from '@opentelemetry/api';
import { startInMemoryTracing, type InMemoryTracing } from '@switchyard/testing';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createHttpFetch } from '../src/http-fetch';

/**
 * The router records a provider request on its attempt span instead of an
 * HTTP client span of its own (startTelemetry httpClientSpans: false), so the
 * provider fetch itself carries the trace upstream and records the HTTP facts.
 */
describe('createHttpFetch under tracing', () => {
  let tracing: InMemoryTracing;
  let server: Server;
  let base: string;
  let seen: IncomingHttpHeaders[] = [];
  const httpFetch = createHttpFetch();

  beforeAll(async () => {
    tracing = startInMemoryTracing();
    server = createServer((req, res) => {
      seen.push(req.headers);
      req.resume().on('end', () => res.writeHead(429, { 'content-type': 'application/json' }).end('{}'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await tracing.shutdown();
  });
  beforeEach(() => {
    seen = [];
    tracing.reset();
  });

  it('sends the active span as traceparent and records method, server, URL and status on it', async () => {
    const tracer = trace.getTracer('test');
    const spanContext = await tracer.startActiveSpan('chat gpt-4o', async (span) => {
      const res = await httpFetch(`${base}/v1/chat/completions?api-version=2024-10-21`, { method: 'POST', body: '{}' });
      expect(res.status).toBe(429);
      span.end();
      return span.spanContext();
    });
    expect(seen[0]!.traceparent).toBe(`00-${spanContext.traceId}-${spanContext.spanId}-01`);
    const [span] = tracing.spans();
    expect(span!.attributes).toEqual({
      'http.request.method': 'POST',
      'server.address': '127.0.0.1',
      'server.port': Number(new URL(base).port),
      'url.full': `${base}/v1/chat/completions`,
      'http.response.status_code': 429,
    });
  });

  it('sends no trace context and records nothing outside a span', async () => {
    await httpFetch(`${base}/v1/chat/completions`, { method: 'POST', body: '{}' });
    expect(seen[0]!.traceparent).toBeUndefined();
    expect(tracing.spans()).toEqual([]);
  });
});
