import { startInMemoryTracing, startRedis, type InMemoryTracing, type ServerHandle } from '@switchyard/testing';
import { freePort } from '@switchyard/testing';
import { createRedisClient, defineScript, key, redisTime, waitUntilReady, type Redis } from '../src/index';

const INCR_BOTH = `
  local a = redis.call('INCRBY', KEYS[1], ARGV[1])
  local b = redis.call('INCRBY', KEYS[2], ARGV[1])
  local t = redis.call('TIME')
  return { a, b, tonumber(t[1]) }
`;

function until(predicate: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tick = async () => {
      if (await predicate().catch(() => false)) return resolve();
      if (Date.now() > deadline) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 50);
    };
    void tick();
  });
}

describe('@switchyard/redis against a real redis-server', () => {
  let server: ServerHandle;
  let redis: Redis;
  let tracing: InMemoryTracing;

  beforeAll(async () => {
    tracing = startInMemoryTracing();
    server = await startRedis();
    redis = createRedisClient({ url: server.url, name: 'test-client' });
  });
  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
    await tracing?.shutdown();
  });

  it('waitUntilReady: true for a reachable server (also when already ready), false after the timeout for a dead one', async () => {
    const fresh = createRedisClient({ url: server.url, name: 'test-ready' });
    try {
      expect(await waitUntilReady(fresh, 5_000)).toBe(true);
      expect(await waitUntilReady(fresh, 1)).toBe(true);
    } finally {
      fresh.disconnect();
    }
    const dead = createRedisClient({ url: `redis://127.0.0.1:${await freePort()}`, name: 'test-dead' });
    try {
      const listenersBefore = dead.listenerCount('ready');
      const started = Date.now();
      expect(await waitUntilReady(dead, 300)).toBe(false);
      expect(Date.now() - started).toBeGreaterThanOrEqual(290);
      // No listener left behind by the wait (the client keeps its own).
      expect(dead.listenerCount('ready')).toBe(listenersBefore);
    } finally {
      dead.disconnect();
    }
  });

  it('names the connection and reports server time', async () => {
    expect(await redis.client('GETNAME')).toBe('test-client');
    const ms = await redisTime(redis);
    expect(Math.abs(ms - Date.now())).toBeLessThan(5_000);
  });

  it('runs a script on hash-tagged keys, and survives SCRIPT FLUSH (NOSCRIPT → EVAL)', async () => {
    const incrBoth = defineScript(redis, { name: 'sy_test_incr_both', lua: INCR_BOTH, numberOfKeys: 2 });
    const keys = [key('sy:test', 'dep-a', 'rpm'), key('sy:test', 'dep-a', 'tpm')];
    expect(((await incrBoth(keys, [2])) as number[]).slice(0, 2)).toEqual([2, 2]);
    await redis.script('FLUSH');
    expect(((await incrBoth(keys, [3])) as number[]).slice(0, 2)).toEqual([5, 5]);
    // Defining the same script again is idempotent.
    expect(defineScript(redis, { name: 'sy_test_incr_both', lua: INCR_BOTH, numberOfKeys: 2 })).toBeInstanceOf(Function);
    const span = tracing.spans().find((s) => s.name === 'redis.script sy_test_incr_both');
    expect(span?.attributes['switchyard.redis.script']).toBe('sy_test_incr_both');
  });

  it('rejects calls that would break on Redis Cluster or misuse the script', async () => {
    const incrBoth = defineScript(redis, { name: 'sy_test_incr_both', lua: INCR_BOTH, numberOfKeys: 2 });
    await expect(incrBoth([key('sy:test', 'a', 'x'), key('sy:test', 'b', 'x')], [1])).rejects.toThrow(/share one hash tag/);
    await expect(incrBoth([key('sy:test', 'a', 'x')], [1])).rejects.toThrow(/takes 2 keys, got 1/);
    await expect(incrBoth([key('sy:test', 'a', 'x'), key('sy:test', 'a', 'y')], [Number.NaN])).rejects.toThrow(/ARGV\[1\]/);
    expect(() => defineScript(redis, { name: 'sy_test_incr_both', lua: 'return 1', numberOfKeys: 0 })).toThrow(/different Lua/);
    expect(() => defineScript(redis, { name: 'get', lua: 'return 1', numberOfKeys: 0 })).toThrow(/collides/);
    expect(() => defineScript(redis, { name: 'bad-name', lua: 'return 1', numberOfKeys: 0 })).toThrow(/script name "bad-name"/);
  });

  it('fails fast while Redis is down, then recovers (scripts reload themselves)', async () => {
    const script = defineScript(redis, { name: 'sy_test_echo', lua: 'return ARGV[1]', numberOfKeys: 0 });
    expect(await script([], ['up'])).toBe('up');
    await server.kill();
    await until(async () => redis.status !== 'ready', 'client to notice the crash');
    const started = Date.now();
    await expect(redis.get('anything')).rejects.toThrow();
    await expect(script([], ['down'])).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(1_500);

    await server.restart();
    await until(async () => (await script([], ['back'])) === 'back', 'script to work after restart');
    expect(await redis.get('sy:test:{dep-a}:rpm')).toBeNull(); // persistence is off: state was lost
  }, 20_000);
});
