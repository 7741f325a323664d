import { telemetry } from './instrumentation';
import { createLogger, startWithMetrics } from '@switchyard/telemetry';
import { runMain } from '@switchyard/runtime';
import { loadConfig } from './config';
import { start } from './start';

const logger = createLogger('switchyard-jobs', { level: process.env.LOG_LEVEL ?? 'info' });

void runMain({
  name: 'jobs',
  logger,
  start: () => {
    const config = loadConfig(process.env);
    // /metrics is bound first: a taken METRICS_PORT stops start-up before any job is taken.
    return startWithMetrics({ port: config.metricsPort, host: config.grpcHost }, () => start(config, { logger }));
  },
  flush: () => telemetry.shutdown(),
});
