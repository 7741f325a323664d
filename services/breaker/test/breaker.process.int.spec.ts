import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { AttemptOutcomeSchema, BreakerService, CircuitState, ErrorClass } from '@switchyard/contracts';
import { createClient } from '@switchyard/grpc';
import { type ServerHandle, spawnProcess, startNats, startRedis } from '@switchyard/testing';

/** The production entry point: readiness line even at LOG_LEVEL=warn, serves, exits 0 on SIGTERM. */
describe('breaker process (main.ts)', () => {
  let nats: ServerHandle;
  let redis: ServerHandle;
  beforeAll(async () => {
    [nats, redis] = await Promise.all([startNats({ jetstream: true }), startRedis()]);
  });
  afterAll(async () => {
    await Promise.all([nats?.stop(), redis?.stop()]);
  });

  it('announces its port, answers Report, and stops cleanly on SIGTERM', async () => {
    const proc = await spawnProcess({
      entry: join(__dirname, '../src/main.ts'),
      env: { NATS_URL: nats.url, REDIS_URL: redis.url, GRPC_HOST: '127.0.0.1', GRPC_PORT: '0', LOG_LEVEL: 'warn', OTEL_SDK_DISABLED: 'true' },
    });
    const client = createClient(BreakerService, `127.0.0.1:${proc.port}`, { defaultDeadlineMs: 5_000 });
    try {
      const res = await client.report({
        outcome: create(AttemptOutcomeSchema, {
          eventId: 'p1',
          deployment: { provider: 'anthropic', deployment: 'claude-main', model: 'claude' },
          errorClass: ErrorClass.OVERLOADED,
          latencyMs: 10,
        }),
      });
      expect(res.health).toMatchObject({ state: CircuitState.CLOSED, consecutiveFailures: 1 });
    } finally {
      client.close();
    }
    expect(await proc.stop('SIGTERM')).toBe(0);
  }, 60_000);
});
