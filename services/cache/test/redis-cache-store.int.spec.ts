import { createRedisClient, type Redis } from '@switchyard/redis';
import { startRedis, type ServerHandle } from '@switchyard/testing';
import { createRedisCacheStore } from '../src/adapters/redis-cache-store';
import { cacheStoreContract } from './cache-store.contract';

let server: ServerHandle;
let redis: Redis;
beforeAll(async () => {
  server = await startRedis();
  redis = createRedisClient({ url: server.url, name: 'cache-test' });
});
afterAll(async () => {
  redis?.disconnect();
  await server?.stop();
});

cacheStoreContract('redis', async () => {
  let shift = 0;
  return { store: createRedisCacheStore(redis, { timeShiftMs: () => shift }), advance: (ms) => (shift += ms) };
});

describe('redis cache store layout', () => {
  it('keeps entries under the tenant hash tag with Redis expiry = ttl + stale window', async () => {
    const store = createRedisCacheStore(redis);
    const tenant = `layout-${Date.now()}`;
    await store.store({ tenant, key: 'chat:ab12', value: new Uint8Array([1]), ttlMs: 60_000, staleTtlMs: 120_000 });
    const keys = await redis.keys(`*${tenant}*`);
    expect(keys.every((k) => k.startsWith(`sy:cache:{${tenant}}:`))).toBe(true);
    const pttl = await redis.pttl(`sy:cache:{${tenant}}:e:chat:ab12`);
    expect(pttl).toBeGreaterThan(170_000);
    expect(pttl).toBeLessThanOrEqual(180_000);
  });

  it('lets a real lease expire on Redis time', async () => {
    const store = createRedisCacheStore(redis);
    const tenant = `lease-${Date.now()}`;
    const ask = (leaseId: string) => store.lookup({ tenant, key: 'k', allowStale: false, leaseTtlMs: 150, leaseId });
    expect((await ask('A')).status).toBe('leader');
    const deadline = Date.now() + 3_000;
    let status = 'wait';
    while (status === 'wait' && Date.now() < deadline) {
      status = (await ask('B')).status;
      if (status === 'wait') await new Promise((r) => setTimeout(r, 25));
    }
    expect(status).toBe('leader');
  });
});
