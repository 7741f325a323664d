import { telemetry } from './instrumentation';
import { runMain } from '@switchyard/runtime';
import { createLogger, startWithMetrics } from '@switchyard/telemetry';
import { loadConfig } from './config';
import { start } from './start';

const logger = createLogger('switchyard-limiter', { level: process.env.LOG_LEVEL ?? 'info' });

void runMain({
  name: 'limiter',
  logger,
  start: () => {
    const config = loadConfig(process.env);
    // /metrics is bound first: a taken METRICS_PORT stops start-up before any call is accepted.
    return startWithMetrics({ port: config.metricsPort, host: config.grpcHost }, () => start(config));
  },
  flush: () => telemetry.shutdown(),
});
