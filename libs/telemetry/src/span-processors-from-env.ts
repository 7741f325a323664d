/* eslint-disable @typescript-eslint/no-require-imports -- exporters are required lazily, see below */
import { diag } from '@opentelemetry/api';
import { getStringFromEnv, getStringListFromEnv } from '@opentelemetry/core';
import { BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';

/**
 * Each exporter is required only when the environment chooses it: the OTLP
 * exporters pull in their transports (grpc-js service definitions, protobuf
 * serializers, HTTP agents), and a process pays the memory of the one it uses,
 * not of all of them as with the NodeSDK.
 */
const OTLP_EXPORTERS: Record<string, () => SpanExporter> = {
  grpc: () => new (require('@opentelemetry/exporter-trace-otlp-grpc') as typeof import('@opentelemetry/exporter-trace-otlp-grpc')).OTLPTraceExporter(),
  'http/json': () => new (require('@opentelemetry/exporter-trace-otlp-http') as typeof import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter(),
  'http/protobuf': () =>
    new (require('@opentelemetry/exporter-trace-otlp-proto') as typeof import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter(),
};

/** OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf (the spec's default). */
function otlpExporter(): SpanExporter {
  const protocol = getStringFromEnv('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ?? getStringFromEnv('OTEL_EXPORTER_OTLP_PROTOCOL') ?? 'http/protobuf';
  const create = OTLP_EXPORTERS[protocol];
  if (create) return create();
  diag.warn(`Unsupported OTLP traces protocol: ${protocol}. Using http/protobuf.`);
  return OTLP_EXPORTERS['http/protobuf']!();
}

/**
 * The span processors OTEL_TRACES_EXPORTER asks for, by the rules of the
 * NodeSDK this replaces (@opentelemetry/sdk-node getSpanProcessorsFromEnv):
 * unset or empty means `otlp`; `none` first means no processor (tracing off);
 * `none` beside another exporter falls back to `otlp`; `console` prints each
 * span as it ends. An OTLP exporter is batched (OTEL_BSP_* read by the
 * BatchSpanProcessor itself), and reads its endpoint, headers, timeout and
 * compression from OTEL_EXPORTER_OTLP_[TRACES_]* itself. `zipkin` is not
 * offered (it was never documented here, and would load its exporter).
 */
export function spanProcessorsFromEnv(): SpanProcessor[] {
  let names = [...new Set(getStringListFromEnv('OTEL_TRACES_EXPORTER') ?? [])].filter((name) => name !== 'null');
  if (names[0] === 'none') return [];
  if (names.length === 0 || names.includes('none')) names = ['otlp'];
  return names.flatMap((name): SpanProcessor[] => {
    if (name === 'otlp') return [new BatchSpanProcessor(otlpExporter())];
    if (name === 'console') return [new SimpleSpanProcessor(new ConsoleSpanExporter())];
    diag.warn(`Unrecognized OTEL_TRACES_EXPORTER value: ${name}.`);
    return [];
  });
}
