export { startTelemetry, type StartTelemetryOptions, type Telemetry } from './start-telemetry';
export { createLogger, REDACTED_PATHS, type CreateLoggerOptions, type Logger } from './logger';
export { getTracer, getMeter, genAiAttributes, setGenAiAttributes, type GenAiAttributes } from './gen-ai';
export { entryPointSampler, EntryPointSampler, withTraceRoot, TRACE_ROOT_ATTRIBUTE } from './trace-roots';
export {
  injectTraceContext,
  extractTraceContext,
  withProducerSpan,
  withConsumerSpan,
  type MessagingSpanOptions,
} from './propagation';
export {
  metricsRegistry,
  counter,
  gauge,
  histogram,
  serveMetrics,
  startWithMetrics,
  LATENCY_BUCKETS_SECONDS,
  type MetricSpec,
  type HistogramSpec,
  type ServeMetricsOptions,
  type MetricsEndpoint,
  type Counter,
  type Gauge,
  type Histogram,
  Registry,
} from './metrics';
