import { telemetry } from './instrumentation';
import { runMain } from '@switchyard/runtime';
import { createLogger } from '@switchyard/telemetry';
import { loadConfig } from './config';
import { start } from './start';

const logger = createLogger('switchyard-breaker', { level: process.env.LOG_LEVEL ?? 'info' });

void runMain({
  name: 'breaker',
  logger,
  start: () => start(loadConfig(process.env)),
  flush: () => telemetry.shutdown(),
});
