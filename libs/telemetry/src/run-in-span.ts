import { context, SpanStatusCode, type Context, type Span } from '@opentelemetry/api';

/**
 * Runs `fn` with `ctx` active and ends `span` when it settles; a throw is
 * recorded on the span (exception event, ERROR status) and rethrown.
 */
export async function runInSpan<T>(span: Span, ctx: Context, fn: () => Promise<T> | T): Promise<T> {
  try {
    return await context.with(ctx, fn);
  } catch (err) {
    span.recordException(err as Error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.message });
    throw err;
  } finally {
    span.end();
  }
}
