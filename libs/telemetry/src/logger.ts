import { TraceFlags, trace } from '@opentelemetry/api';
import pino, { type DestinationStream, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

export interface CreateLoggerOptions {
  /** Minimum level; default `info`. */
  level?: LoggerOptions['level'];
  /** Where lines go; default stdout (synchronous, so a readiness line is never lost). */
  destination?: DestinationStream;
  /** Fields on every line (e.g. `{ service: 'router', replica }`). */
  base?: Record<string, unknown>;
  /** Extra paths to redact, in pino syntax. */
  redact?: string[];
}

/**
 * Prompt and completion text, and credentials, never reach the logs by default
 * (DESIGN: "no prompt or completion text in spans or logs unless explicitly
 * enabled"): these paths are censored wherever they appear one level deep.
 */
const SENSITIVE = ['messages', 'prompt', 'completion', 'content', 'system', 'apiKey', 'api_key', 'authorization'];
export const REDACTED_PATHS = SENSITIVE.flatMap((key) => [key, `*.${key}`]).concat([
  'headers.authorization',
  'headers["x-api-key"]',
  '*.headers.authorization',
  '*.headers["x-api-key"]',
]);

/**
 * JSON logger whose every line carries `trace_id`/`span_id` of the active span,
 * so a log line found in Loki/grep leads straight to its trace, and vice versa.
 * Timestamps are ISO 8601 UTC (`time`), levels are labels (`"level":"info"`).
 */
export function createLogger(name: string, options: CreateLoggerOptions = {}): Logger {
  if (!name) throw new TypeError('createLogger: name is required');
  const pinoOptions: LoggerOptions = {
    name,
    level: options.level ?? 'info',
    base: { ...options.base },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: [...REDACTED_PATHS, ...(options.redact ?? [])], censor: '[redacted]' },
    mixin() {
      const span = trace.getActiveSpan();
      if (!span) return {};
      const { traceId, spanId, traceFlags } = span.spanContext();
      // Housekeeping runs in unsampled spans (entryPointSampler): their ids lead to no trace, so a line does not quote them.
      if ((traceFlags & TraceFlags.SAMPLED) === 0) return {};
      return { trace_id: traceId, span_id: spanId };
    },
  };
  return options.destination ? pino(pinoOptions, options.destination) : pino(pinoOptions);
}
