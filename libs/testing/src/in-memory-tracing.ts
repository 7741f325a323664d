import { context, propagation, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';

export interface InMemoryTracing {
  /** Finished spans, oldest first. */
  spans(): ReadableSpan[];
  reset(): void;
  /** Unregisters the global provider, context manager and propagator. */
  shutdown(): Promise<void>;
}

/**
 * Registers a global tracer provider with an in-memory span sink, for tests that
 * assert the spans a library creates in-process (no exporter, no network).
 * Call once per test file (beforeAll) and `shutdown()` in afterAll.
 */
export function startInMemoryTracing(): InMemoryTracing {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  provider.register();
  return {
    spans: () => exporter.getFinishedSpans(),
    reset: () => exporter.reset(),
    async shutdown() {
      await provider.shutdown();
      trace.disable();
      context.disable();
      propagation.disable();
    },
  };
}
