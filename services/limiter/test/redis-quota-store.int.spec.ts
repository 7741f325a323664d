import { randomUUID } from 'node:crypto';
import { type Redis, createRedisClient } from '@switchyard/redis';
import { startRedis } from '@switchyard/testing';
import { sleep } from '@switchyard/util';
import { createRedisQuotaStore } from '../src/adapters/redis-quota-store';
import { quotaStoreContract } from './quota-store.contract';

// One real redis-server for the file; each case gets its own key prefix.
let server: Awaited<ReturnType<typeof startRedis>>;
let redis: Redis;

beforeAll(async () => {
  server = await startRedis();
  redis = createRedisClient({ url: server.url, name: 'limiter-store-test' });
});

afterAll(async () => {
  await redis?.quit();
  await server?.stop();
});

// Redis TIME cannot be injected, so the TPD day is time-scaled: 1.2 s in 100 ms buckets.
const DAY = { windowMs: 1_200, bucketMs: 100 };

quotaStoreContract('redis', async () => ({
  store: createRedisQuotaStore({ redis, prefix: `t${randomUUID().slice(0, 8)}:`, dayWindowMs: DAY.windowMs, dayBucketMs: DAY.bucketMs }),
  // Redis TIME cannot be injected: really wait.
  advance: (ms) => sleep(ms),
  slackMs: 20,
  day: DAY,
  close: async () => {},
}));

it('survives a script cache flush (NOSCRIPT falls back to EVAL)', async () => {
  const store = createRedisQuotaStore({ redis, prefix: 'flush:' });
  const key = { kind: 'deployment' as const, id: 'd1', limits: { rpm: 5 } };
  expect((await store.acquire({ keys: [key], requests: 1, tokens: 0, ttlMs: 1000, reservationId: 'r1' })).granted).toBe(true);
  await redis.script('FLUSH');
  expect((await store.acquire({ keys: [key], requests: 1, tokens: 0, ttlMs: 1000, reservationId: 'r2' })).granted).toBe(true);
  expect((await store.state(key)).usage[0]).toMatchObject({ used: 2 });
});
