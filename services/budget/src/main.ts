import { telemetry } from './instrumentation';
import { createLogger, startWithMetrics } from '@switchyard/telemetry';
import { runMain } from '@switchyard/runtime';
import { loadConfig } from './config';
import { start } from './start';

const logger = createLogger('switchyard-budget', { level: process.env.LOG_LEVEL ?? 'info' });

void runMain({
  name: 'budget',
  logger,
  start: () => {
    const config = loadConfig(process.env);
    // /metrics is bound first: a taken METRICS_PORT stops start-up before any call is accepted.
    return startWithMetrics({ port: config.metricsPort, host: config.grpcHost }, () => start(config, { logger }));
  },
  flush: () => telemetry.shutdown(),
});
