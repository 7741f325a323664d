import { OTLPTraceExporter as GrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtobufExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { spanProcessorsFromEnv } from './span-processors-from-env';

const VARS = ['OTEL_TRACES_EXPORTER', 'OTEL_EXPORTER_OTLP_PROTOCOL', 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL'] as const;

/** The processors and their exporters' classes under `env` (the OTEL_* variables above, the rest unset). */
async function chosen(env: Partial<Record<(typeof VARS)[number], string>>): Promise<string[]> {
  const saved = VARS.map((v) => [v, process.env[v]] as const);
  VARS.forEach((v) => (env[v] === undefined ? delete process.env[v] : (process.env[v] = env[v])));
  let processors: SpanProcessor[];
  try {
    processors = spanProcessorsFromEnv();
  } finally {
    saved.forEach(([v, value]) => (value === undefined ? delete process.env[v] : (process.env[v] = value)));
  }
  const described = processors.map((p) => {
    const exporter = (p as unknown as { _exporter: unknown })._exporter;
    const kind = p instanceof BatchSpanProcessor ? 'batch' : p instanceof SimpleSpanProcessor ? 'simple' : 'other';
    const which =
      exporter instanceof GrpcExporter ? 'otlp grpc' : exporter instanceof JsonExporter ? 'otlp http/json' : exporter instanceof ProtobufExporter ? 'otlp http/protobuf' : exporter instanceof ConsoleSpanExporter ? 'console' : 'other';
    return `${kind} ${which}`;
  });
  await Promise.all(processors.map((p) => p.shutdown()));
  return described;
}

describe('spanProcessorsFromEnv (the NodeSDK rules for OTEL_TRACES_EXPORTER and the OTLP protocol)', () => {
  it('batches OTLP over http/protobuf when nothing is set', async () => {
    expect(await chosen({})).toEqual(['batch otlp http/protobuf']);
  });

  it('takes the protocol from OTEL_EXPORTER_OTLP_PROTOCOL, the traces-specific variable winning', async () => {
    expect(await chosen({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' })).toEqual(['batch otlp http/json']);
    expect(await chosen({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toEqual(['batch otlp grpc']);
    expect(await chosen({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc' })).toEqual(['batch otlp grpc']);
  });

  it('falls back to http/protobuf for an unknown protocol', async () => {
    expect(await chosen({ OTEL_EXPORTER_OTLP_PROTOCOL: 'carrier-pigeon' })).toEqual(['batch otlp http/protobuf']);
  });

  it('turns tracing off with none, and prints spans as they end with console', async () => {
    expect(await chosen({ OTEL_TRACES_EXPORTER: 'none' })).toEqual([]);
    expect(await chosen({ OTEL_TRACES_EXPORTER: 'console' })).toEqual(['simple console']);
    expect(await chosen({ OTEL_TRACES_EXPORTER: 'otlp,console', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' })).toEqual(['batch otlp http/json', 'simple console']);
  });

  it('uses OTLP when none stands beside another exporter, and skips names it does not know', async () => {
    expect(await chosen({ OTEL_TRACES_EXPORTER: 'console,none' })).toEqual(['batch otlp http/protobuf']);
    expect(await chosen({ OTEL_TRACES_EXPORTER: 'zipkin' })).toEqual([]);
  });
});
