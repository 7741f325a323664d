import { Redis } from 'ioredis';
import { type ServerHandle, startRedis } from '@switchyard/testing';
import { ManualClock } from '@switchyard/util';
import { createRedisHealthStore, breakerKeys, TRACK_REFRESH_MS } from '../src/adapters/redis-health-store';
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

describe('the registry and open set on the outcome path', () => {
  const id = { deployment: 'memo', provider: 'openai', model: 'm' };
  const policy = { ...DEFAULT_POLICY, consecutiveFailures: 2, openMs: 60_000 };
  let redis: Redis;
  let peerRedis: Redis;
  let clock: ManualClock;
  beforeEach(async () => {
    redis = new Redis(server.url);
    peerRedis = new Redis(server.url);
    await redis.flushall();
    clock = new ManualClock(1_700_000_000_000);
  });
  afterEach(async () => {
    await redis.quit();
    await peerRedis.quit();
  });
  const members = async () => ({
    registered: await redis.sismember(breakerKeys.deployments(), id.deployment),
    open: await redis.sismember(breakerKeys.open(), id.deployment),
  });

  it('writes them once per TRACK_REFRESH_MS while nothing changes, and again after', async () => {
    const store = createRedisHealthStore({ redis, policy, clock });
    await store.record(id, { errorClass: undefined, latencyMs: 5 });
    expect(await members()).toEqual({ registered: 1, open: 0 });
    // As if Redis had lost the registry: a replica that wrote it just now does not look again …
    await redis.del(breakerKeys.deployments());
    await store.recordBatch(id, [{ errorClass: undefined, latencyMs: 5 }, { errorClass: undefined, latencyMs: 6 }]);
    clock.advance(TRACK_REFRESH_MS - 1);
    await store.record(id, { errorClass: undefined, latencyMs: 5 });
    expect(await members()).toEqual({ registered: 0, open: 0 });
    // … until its write is TRACK_REFRESH_MS old.
    clock.advance(1);
    await store.recordBatch(id, [{ errorClass: undefined, latencyMs: 5 }]);
    expect(await members()).toEqual({ registered: 1, open: 0 });
  });

  it('writes every transition at once, whatever it wrote before', async () => {
    const store = createRedisHealthStore({ redis, policy, clock });
    await store.record(id, { errorClass: undefined, latencyMs: 5 });
    const opened = await store.recordBatch(id, [{ errorClass: 'NETWORK', latencyMs: 5 }, { errorClass: 'NETWORK', latencyMs: 5 }]);
    expect(opened[1]!.transition?.to).toBe('OPEN');
    expect(await members()).toEqual({ registered: 1, open: 1 });
  });

  it('writes what it reads when another replica moved the circuit since its own last write', async () => {
    const store = createRedisHealthStore({ redis, policy, clock });
    const peer = createRedisHealthStore({ redis: peerRedis, policy, clock });
    await store.record(id, { errorClass: undefined, latencyMs: 5 });
    // The peer opens it and writes the open set; then the open set is lost.
    await peer.recordBatch(id, [{ errorClass: 'NETWORK', latencyMs: 5 }, { errorClass: 'NETWORK', latencyMs: 5 }]);
    await redis.srem(breakerKeys.open(), id.deployment);
    // This replica last wrote "not open": an outcome that finds the circuit OPEN writes it back.
    const step = await store.record(id, { errorClass: 'NETWORK', latencyMs: 5 });
    expect(step.record.state).toBe('OPEN');
    expect(await members()).toEqual({ registered: 1, open: 1 });
  });
});
