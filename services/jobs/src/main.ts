import { telemetry } from './instrumentation';
import { createLogger } from '@switchyard/telemetry';
import { runMain } from '@switchyard/runtime';
import { loadConfig } from './config';
import { start } from './start';

const logger = createLogger('switchyard-jobs', { level: process.env.LOG_LEVEL ?? 'info' });

void runMain({
  name: 'jobs',
  logger,
  start: () => start(loadConfig(process.env), { logger }),
  flush: () => telemetry.shutdown(),
});
