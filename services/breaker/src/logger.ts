import { pino, type Logger } from 'pino';

/**
 * JSON logs. TODO(telemetry): switch to createLogger from @switchyard/telemetry
 * (trace_id/span_id mixin) once that lib exports it.
 */
export function createServiceLogger(name: string, level: string): Logger {
  return pino({ name: `switchyard-${name}`, level });
}
