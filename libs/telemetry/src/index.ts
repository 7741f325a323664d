export { startTelemetry, type StartTelemetryOptions, type Telemetry } from './start-telemetry';
export { createLogger, REDACTED_PATHS, type CreateLoggerOptions, type Logger } from './logger';
export { getTracer, getMeter, genAiAttributes, setGenAiAttributes, type GenAiAttributes } from './gen-ai';
export {
  injectTraceContext,
  extractTraceContext,
  withProducerSpan,
  withConsumerSpan,
  type MessagingSpanOptions,
} from './propagation';
