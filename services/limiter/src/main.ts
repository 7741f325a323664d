import { telemetry } from './instrumentation';
import { runMain } from '@switchyard/runtime';
import { createLogger } from '@switchyard/telemetry';
import { loadConfig } from './config';
import { start } from './start';

const logger = createLogger('switchyard-limiter', { level: process.env.LOG_LEVEL ?? 'info' });

void runMain({
  name: 'limiter',
  logger,
  start: () => start(loadConfig(process.env)),
  flush: () => telemetry.shutdown(),
});
