/* eslint-disable @typescript-eslint/no-require-imports -- each test requires the module in a fresh registry (jest.isolateModules) */

/**
 * A process that uses no Redis client (the router) does not load the ioredis
 * instrumentation: here that module is replaced by one that throws when
 * required, so loading it at all fails the test.
 */
describe('startTelemetry: the ioredis instrumentation only where Redis is used', () => {
  beforeEach(() => {
    jest.doMock('@opentelemetry/instrumentation-ioredis', () => {
      throw new Error('instrumentation-ioredis required');
    });
  });
  afterEach(() => jest.dontMock('@opentelemetry/instrumentation-ioredis'));

  it('with redis: false it is never required', () => {
    jest.isolateModules(() => {
      const { startTelemetry } = require('./start-telemetry') as typeof import('./start-telemetry');
      expect(() => startTelemetry({ serviceName: 'no-redis', redis: false, spanProcessors: [] })).not.toThrow();
    });
  });

  it('by default it is (every other service talks to Redis)', () => {
    jest.isolateModules(() => {
      const { startTelemetry } = require('./start-telemetry') as typeof import('./start-telemetry');
      expect(() => startTelemetry({ serviceName: 'with-redis', spanProcessors: [] })).toThrow('instrumentation-ioredis required');
    });
  });
});
