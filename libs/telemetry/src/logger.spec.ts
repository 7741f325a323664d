import { context, TraceFlags, trace } from '@opentelemetry/api';
import { startInMemoryTracing, type InMemoryTracing } from '@switchyard/testing';
import { Writable } from 'node:stream';
import { createLogger } from './logger';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, destination };
}

describe('createLogger', () => {
  let tracing: InMemoryTracing;
  beforeAll(() => (tracing = startInMemoryTracing()));
  afterAll(() => tracing.shutdown());

  it('stamps trace_id/span_id of the active span on every line', () => {
    const { lines, destination } = capture();
    const logger = createLogger('router', { destination });
    const ids = trace.getTracer('t').startActiveSpan('attempt', (span) => {
      logger.info({ deployment: 'gpt4o' }, 'attempt');
      span.end();
      return span.spanContext();
    });
    logger.info('outside');
    expect(lines[0]).toMatchObject({ name: 'router', level: 'info', trace_id: ids.traceId, span_id: ids.spanId, deployment: 'gpt4o' });
    expect(lines[1]).not.toHaveProperty('trace_id');
  });

  it('quotes no trace id from an unsampled span (housekeeping): it would lead to no trace', () => {
    const { lines, destination } = capture();
    const logger = createLogger('limiter', { destination });
    const unsampled = trace.wrapSpanContext({ traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), traceFlags: TraceFlags.NONE });
    context.with(trace.setSpan(context.active(), unsampled), () => logger.warn('heartbeat failed'));
    expect(lines[0]).not.toHaveProperty('trace_id');
    expect(lines[0]).toMatchObject({ msg: 'heartbeat failed' });
  });

  it('writes ISO UTC timestamps and honours the level', () => {
    const { lines, destination } = capture();
    const logger = createLogger('x', { destination, level: 'warn', base: { replica: 'r1' } });
    logger.info('dropped');
    logger.warn('kept');
    expect(lines).toHaveLength(1);
    expect(lines[0]!.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(lines[0]).toMatchObject({ replica: 'r1', level: 'warn', msg: 'kept' });
  });

  it('never prints prompt text or credentials', () => {
    const { lines, destination } = capture();
    const logger = createLogger('x', { destination });
    logger.info({ messages: [{ role: 'user', content: 'secret prompt' }], request: { prompt: 'p', headers: { authorization: 'Bearer k' } } }, 'req');
    const text = JSON.stringify(lines[0]);
    expect(text).not.toContain('secret prompt');
    expect(text).not.toContain('Bearer k');
    expect(lines[0]).toMatchObject({ messages: '[redacted]', request: { prompt: '[redacted]' } });
  });
});
