/**
 * Telemetry for the embedded demo, loaded before anything imports grpc-js.
 * Spans are kept in memory (no collector needed on a fresh machine) so the demo
 * can show that one call is one trace; set OTEL_EXPORTER_OTLP_ENDPOINT (or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) to also send them to Jaeger or any OTLP
 * receiver. `traceDestination` is what the demo prints about it.
 */
import { InMemorySpanExporter, SimpleSpanProcessor, BatchSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { startTelemetry } from '@switchyard/telemetry';
import { demoTraceDestination } from './trace-destination';

export const traceDestination = demoTraceDestination(process.env);
export const demoSpans = new InMemorySpanExporter();
const processors: SpanProcessor[] = [new SimpleSpanProcessor(demoSpans)];
if (traceDestination.kind === 'otlp') processors.push(new BatchSpanProcessor(new OTLPTraceExporter({ url: traceDestination.endpoint })));
export const telemetry = startTelemetry({ serviceName: 'switchyard-demo', spanProcessors: processors });
