import { startTelemetry } from '@switchyard/telemetry';

/**
 * Loaded first by main.ts so grpc-js and undici are instrumented before they are required.
 * No HTTP client spans: provider calls are recorded by their attempt spans (see providerFetch).
 * No Redis client: the router keeps its shared state through its peers and NATS.
 */
export const telemetry = startTelemetry({ serviceName: 'switchyard-router', httpClientSpans: false, redis: false });
