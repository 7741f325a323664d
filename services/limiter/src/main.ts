import { telemetry } from './instrumentation';
import { runMain } from '@switchyard/runtime';
import { createLogger } from '@switchyard/telemetry';
import { loadConfig } from './config';
import { start } from './start';

// Lifecycle lines (readiness, stop) are always written: supervisors wait for
// the "listening" line whatever LOG_LEVEL says. The service logs at LOG_LEVEL.
const lifecycle = createLogger('switchyard-limiter', { level: 'info' });

void runMain({
  name: 'limiter',
  logger: lifecycle,
  start: () => start(loadConfig(process.env)),
  flush: () => telemetry.shutdown(),
});
