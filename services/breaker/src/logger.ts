import { type Logger, createLogger } from '@switchyard/telemetry';

/** JSON logs with trace_id/span_id of the active span. */
export function createServiceLogger(name: string, level: string): Logger {
  return createLogger(`switchyard-${name}`, { level });
}
