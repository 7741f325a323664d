import { GrpcInstrumentation } from '@opentelemetry/instrumentation-grpc';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { IORedisInstrumentation } from '@opentelemetry/instrumentation-ioredis';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import type { Instrumentation } from '@opentelemetry/instrumentation';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { IncomingMessage } from 'node:http';
import { entryPointSampler } from './trace-roots';

export interface StartTelemetryOptions {
  /** `service.name` on every span (router, limiter, ...). */
  serviceName: string;
  serviceVersion?: string;
  /** Added to the standard set (grpc, ioredis, undici, http). */
  instrumentations?: Instrumentation[];
  /**
   * Extra span processors (tests). When given, the NodeSDK does not build an
   * exporter from OTEL_* itself, so include your exporter's processor here.
   */
  spanProcessors?: SpanProcessor[];
  /**
   * OTel metric readers; default none. Service metrics are prom-client
   * instruments served by `serveMetrics` on the service's METRICS_PORT, so
   * OTEL_METRICS_EXPORTER is not read: with it, every process of a host would
   * race for the exporter's one port (9464) and all but one export nothing.
   */
  metricReaders?: SdkConfig['metricReaders'];
}

type SdkConfig = NonNullable<ConstructorParameters<typeof NodeSDK>[0]>;

export interface Telemetry {
  /** Flushes pending spans and stops instrumentation; call last during shutdown. */
  shutdown(): Promise<void>;
}

/**
 * Redis commands are recorded by name and first key only: values can hold
 * cached completions, and prompts must never reach a span.
 */
function redisStatement(command: string, args: unknown[]): string {
  const first = args[0];
  return typeof first === 'string' && first.length <= 200 ? `${command} ${first}` : command;
}

/** Prometheus scrapes are not calls; a trace per scrape would be noise. */
function isMetricsScrape(req: IncomingMessage): boolean {
  return (req.url ?? '').split('?')[0] === '/metrics';
}

/**
 * Starts OpenTelemetry for one service process: traces for gRPC (client and
 * server), Redis (ioredis), provider HTTP calls (undici = global fetch used by
 * the openai and Anthropic SDKs) and node:http.
 *
 * It patches modules as they are required, so it must run BEFORE @grpc/grpc-js
 * or ioredis are loaded. Pattern: each service has `src/instrumentation.ts`
 *
 *     import { startTelemetry } from '@switchyard/telemetry';
 *     export const telemetry = startTelemetry({ serviceName: 'router' });
 *
 * and `src/main.ts` imports it on its first line (`import { telemetry } from './instrumentation';`),
 * calling `telemetry.shutdown()` last on SIGTERM. Services stay CommonJS (no
 * `"type": "module"`), so require hooks see every import.
 *
 * Exporters come from the SDK's standard environment handling, never from this
 * lib: OTEL_TRACES_EXPORTER (`otlp` default, `none` disables, `console`),
 * OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
 * OTEL_EXPORTER_OTLP_PROTOCOL (`http/protobuf` default, `http/json`, `grpc`),
 * (metrics are not OTel's: see `serveMetrics` and METRICS_PORT),
 * OTEL_SDK_DISABLED=true turns everything off.
 *
 * Only calls start traces (entryPointSampler): a span without a parent is kept
 * when it is a SERVER span (an incoming gRPC or HTTP request; health checks
 * and /metrics scrapes excepted) or marked by withTraceRoot; everything else
 * follows its parent. So heartbeats, sweeps and periodic probes, which run
 * outside any request, export nothing, while a call stays one trace across
 * gRPC, Redis, provider HTTP and NATS. The sampler is fixed: given one, the
 * SDK does not read OTEL_TRACES_SAMPLER.
 */
export function startTelemetry(options: StartTelemetryOptions): Telemetry {
  if (!options?.serviceName) throw new TypeError('startTelemetry: serviceName is required');
  const sdk = new NodeSDK({
    serviceName: options.serviceName,
    ...(options.serviceVersion ? { resource: resourceFromAttributes({ 'service.version': options.serviceVersion }) } : {}),
    ...(options.spanProcessors ? { spanProcessors: options.spanProcessors } : {}),
    metricReaders: options.metricReaders ?? [],
    sampler: entryPointSampler(),
    instrumentations: [
      new GrpcInstrumentation(),
      new IORedisInstrumentation({ requireParentSpan: true, dbStatementSerializer: redisStatement }),
      new UndiciInstrumentation(),
      new HttpInstrumentation({ ignoreIncomingRequestHook: isMetricsScrape }),
      ...(options.instrumentations ?? []),
    ],
  });
  sdk.start();
  let stopped: Promise<void> | undefined;
  return {
    shutdown: () => (stopped ??= sdk.shutdown()),
  };
}
