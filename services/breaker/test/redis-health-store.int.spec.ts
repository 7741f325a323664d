import { Redis } from 'ioredis';
import { type ServerHandle, startRedis } from '@switchyard/testing';
import { ManualClock } from '@switchyard/util';
import { createRedisHealthStore, breakerKeys } from '../src/adapters/redis-health-store';
import { DEFAULT_POLICY } from '../src/domain/circuit';
import { healthStoreContract } from './health-store.contract';

let server: ServerHandle;
beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server?.stop();
});

healthStoreContract('redis', async (policy) => {
  const clock = new ManualClock(1_700_000_000_000);
  const a = new Redis(server.url);
  const b = new Redis(server.url);
  return {
    store: createRedisHealthStore({ redis: a, policy, clock, ownsConnection: true }),
    peer: createRedisHealthStore({ redis: b, policy, clock, ownsConnection: true }),
    clock,
    close: async () => {
      await a.quit();
      await b.quit();
    },
  };
});

describe('redis health store without an injected clock', () => {
  it('takes time from Redis TIME and keeps every key of a deployment under one hash tag', async () => {
    const redis = new Redis(server.url);
    try {
      const store = createRedisHealthStore({ redis, policy: { ...DEFAULT_POLICY, consecutiveFailures: 2, openMs: 60_000 } });
      const before = Date.now();
      await store.record({ deployment: 'tagged', provider: 'openai', model: 'm' }, { errorClass: 'NETWORK', latencyMs: 0, eventId: 'x1' });
      const step = await store.record({ deployment: 'tagged', provider: 'openai', model: 'm' }, { errorClass: 'NETWORK', latencyMs: 0 });
      expect(step.transition?.to).toBe('OPEN');
      expect(Math.abs(step.now - before)).toBeLessThan(5_000);
      expect(step.transition!.openUntil).toBe(step.now + 60_000);
      const keys = (await redis.keys('sy:brk:{tagged}:*')).sort();
      expect(keys).toEqual([breakerKeys.circuit('tagged'), breakerKeys.event('tagged', 'x1')]);
      expect(await redis.pttl(breakerKeys.event('tagged', 'x1'))).toBeGreaterThan(500_000);
    } finally {
      await redis.quit();
    }
  });

  it('reads a circuit written by the previous version (count-based window, no new fields)', async () => {
    const redis = new Redis(server.url);
    try {
      await redis.hset(breakerKeys.circuit('legacy'), {
        deployment: 'legacy', provider: 'openai', model: 'm', state: 'CLOSED', cf: '2', ou: '0', forced: '0',
        reopen: '0', epoch: '4', win: '0110', lec: 'TIMEOUT', lat: '120', upd: '1',
      });
      const store = createRedisHealthStore({ redis });
      const step = await store.record({ deployment: 'legacy', provider: 'openai', model: 'm' }, { errorClass: 'NETWORK', latencyMs: 80 });
      expect(step.record).toMatchObject({ state: 'CLOSED', consecutiveFailures: 3, epoch: 4, latencyVarMs2: expect.any(Number), halfOpenSuccesses: 0 });
      expect(step.record.window).toMatch(/^\d+:1:1:0$/);
    } finally {
      await redis.quit();
    }
  });
});
