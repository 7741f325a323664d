import { startTelemetry } from '@switchyard/telemetry';

/** Started before grpc-js and ioredis are loaded (main.ts imports this first) so their instrumentation patches them. */
export const telemetry = startTelemetry({ serviceName: 'switchyard-limiter' });
