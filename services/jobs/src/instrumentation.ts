import { startTelemetry } from '@switchyard/telemetry';

/** Started before grpc-js loads (main.ts imports this first) so the router calls are traced. */
export const telemetry = startTelemetry({ serviceName: 'switchyard-jobs' });
