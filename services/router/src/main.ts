import { telemetry } from './instrumentation';
import { runMain } from '@switchyard/runtime';
import { createLogger } from '@switchyard/telemetry';
import { loadConfig } from './config';
import { start } from './start';

const logger = createLogger('router', { level: process.env.LOG_LEVEL ?? 'info' });

void runMain({
  name: 'router',
  logger,
  start: () => start(loadConfig(process.env), { logger }),
  flush: () => telemetry.shutdown(),
});
