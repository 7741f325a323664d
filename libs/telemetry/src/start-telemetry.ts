import { context, diag, DiagConsoleLogger, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  CompositePropagator,
  diagLogLevelFromString,
  getBooleanFromEnv,
  getStringFromEnv,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} from '@opentelemetry/core';
import { registerInstrumentations, type Instrumentation } from '@opentelemetry/instrumentation';
import { GrpcInstrumentation } from '@opentelemetry/instrumentation-grpc';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { defaultResource, detectResources, envDetector, hostDetector, processDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { IncomingMessage } from 'node:http';
import { spanProcessorsFromEnv } from './span-processors-from-env';
import { entryPointSampler } from './trace-roots';

export interface StartTelemetryOptions {
  /** `service.name` on every span (router, limiter, ...); wins over OTEL_SERVICE_NAME. */
  serviceName: string;
  serviceVersion?: string;
  /** Added to the standard set (grpc, ioredis unless `redis: false`, undici, http). */
  instrumentations?: Instrumentation[];
  /**
   * Span processors to use instead of the ones OTEL_TRACES_EXPORTER asks for
   * (tests, the demo): include your exporter's processor here.
   */
  spanProcessors?: SpanProcessor[];
  /**
   * A CLIENT span for each outgoing node:http(s) request (default true). The
   * router turns it off: its only such requests are provider calls, whose
   * attempt span records the same facts (libs/providers providerFetch also
   * sends their traceparent), and the instrumentation cost about 5 % of its CPU.
   */
  httpClientSpans?: boolean;
  /**
   * Whether this process talks to Redis through ioredis (default true). The
   * router does not, and without it the ioredis instrumentation (about 1 MB
   * of heap, 3 MB of RSS with what it requires) is not even loaded.
   */
  redis?: boolean;
}

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

function ioredisInstrumentation(): Instrumentation {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- required only where Redis is used (StartTelemetryOptions.redis)
  const { IORedisInstrumentation } = require('@opentelemetry/instrumentation-ioredis') as typeof import('@opentelemetry/instrumentation-ioredis');
  return new IORedisInstrumentation({ requireParentSpan: true, dbStatementSerializer: redisStatement });
}

/** The standard instrumentations plus the caller's; constructing one patches its module on require. */
function instrumentations(options: StartTelemetryOptions): Instrumentation[] {
  return [
    new GrpcInstrumentation(),
    ...(options.redis === false ? [] : [ioredisInstrumentation()]),
    new UndiciInstrumentation(),
    new HttpInstrumentation({ ignoreIncomingRequestHook: isMetricsScrape, disableOutgoingRequestInstrumentation: options.httpClientSpans === false }),
    ...(options.instrumentations ?? []),
  ];
}

/**
 * What every span says about its process: the SDK's defaults (telemetry.sdk.*),
 * then what the environment says (OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME),
 * the process and the host, then our own names, which win.
 */
function serviceResource(options: StartTelemetryOptions) {
  return defaultResource()
    .merge(detectResources({ detectors: [envDetector, processDetector, hostDetector] }))
    .merge(resourceFromAttributes({ 'service.name': options.serviceName, ...(options.serviceVersion ? { 'service.version': options.serviceVersion } : {}) }));
}

/**
 * Starts OpenTelemetry tracing for one service process: traces for gRPC
 * (client and server), Redis (ioredis), provider HTTP calls (node:http, and
 * undici = global fetch) and incoming HTTP requests.
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
 * Traces only, built from their parts rather than by the OpenTelemetry NodeSDK:
 * the NodeSDK requires every exporter of every signal and protocol, and a
 * configuration validator, whatever is configured (about 54 MB RSS per
 * process, against about 20 MB for this). It reads the SDK's standard
 * variables, by the NodeSDK's rules: OTEL_TRACES_EXPORTER (`otlp` default,
 * `none` disables, `console`), OTEL_EXPORTER_OTLP_ENDPOINT /
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL
 * (`http/protobuf` default, `http/json`, `grpc`; only the chosen exporter is
 * loaded), OTEL_BSP_*, OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES,
 * OTEL_LOG_LEVEL (the SDK's own diagnostics), and OTEL_SDK_DISABLED=true turns
 * everything off (nothing is patched). Metrics are not OTel's (see
 * `serveMetrics` and METRICS_PORT) and logs are pino's, so OTEL_METRICS_EXPORTER
 * and OTEL_LOGS_EXPORTER are not read. Context travels as W3C trace context and
 * baggage (OTEL_PROPAGATORS is not read), as it does on NATS.
 *
 * Only calls start traces (entryPointSampler): a span without a parent is kept
 * when it is a SERVER span (an incoming gRPC or HTTP request; health checks
 * and /metrics scrapes excepted) or marked by withTraceRoot; everything else
 * follows its parent. So heartbeats, sweeps and periodic probes, which run
 * outside any request, export nothing, while a call stays one trace across
 * gRPC, Redis, provider HTTP and NATS. The sampler is fixed:
 * OTEL_TRACES_SAMPLER is not read.
 */
export function startTelemetry(options: StartTelemetryOptions): Telemetry {
  if (!options?.serviceName) throw new TypeError('startTelemetry: serviceName is required');
  const logLevel = getStringFromEnv('OTEL_LOG_LEVEL');
  if (logLevel) diag.setLogger(new DiagConsoleLogger(), { logLevel: diagLogLevelFromString(logLevel) });
  if (getBooleanFromEnv('OTEL_SDK_DISABLED')) return { shutdown: async () => {} };

  registerInstrumentations({ instrumentations: instrumentations(options) });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }));
  // With no processor (OTEL_TRACES_EXPORTER=none) no provider is registered: the
  // instrumentations still carry a caller's trace context through, recording nothing.
  const spanProcessors = options.spanProcessors ?? spanProcessorsFromEnv();
  if (spanProcessors.length === 0) return { shutdown: async () => {} };
  const provider = new BasicTracerProvider({ sampler: entryPointSampler(), resource: serviceResource(options), spanProcessors });
  trace.setGlobalTracerProvider(provider);
  let stopped: Promise<void> | undefined;
  return {
    shutdown: () => (stopped ??= provider.shutdown()),
  };
}
