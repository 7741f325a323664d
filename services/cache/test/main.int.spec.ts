import { join } from 'node:path';
import { CacheService, LookupStatus } from '@switchyard/contracts';
import { createClient } from '@switchyard/grpc';
import { spawnProcess, startRedis, type ServerHandle } from '@switchyard/testing';

/** The process entry point: reads env, announces readiness, serves, stops on SIGTERM. */
describe('cache main.ts as a process', () => {
  let redis: ServerHandle;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('serves Store/Lookup and exits cleanly on SIGTERM', async () => {
    const proc = await spawnProcess({
      entry: join(__dirname, '../src/main.ts'),
      env: { REDIS_URL: redis.url, GRPC_PORT: '0', GRPC_HOST: '127.0.0.1', OTEL_SDK_DISABLED: 'true' },
      readyTimeoutMs: 60_000,
    });
    const client = createClient(CacheService, `127.0.0.1:${proc.port}`, { defaultDeadlineMs: 5_000 });
    try {
      await client.store({ tenant: 'acme', key: 'chat:1', response: new Uint8Array([1, 2]) });
      expect((await client.lookup({ tenant: 'acme', key: 'chat:1' })).status).toBe(LookupStatus.HIT);
    } finally {
      client.close();
      expect(await proc.stop()).toBe(0);
    }
  }, 90_000);
});
