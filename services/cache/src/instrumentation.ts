import { startTelemetry } from '@switchyard/telemetry';

/** Started before grpc-js and ioredis load (main.ts imports this first) so their calls are traced. */
export const telemetry = startTelemetry({ serviceName: 'switchyard-cache' });
