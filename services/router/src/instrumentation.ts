import { startTelemetry } from '@switchyard/telemetry';

/** Loaded first by main.ts so grpc-js and undici are instrumented before they are required. */
export const telemetry = startTelemetry({ serviceName: 'switchyard-router' });
