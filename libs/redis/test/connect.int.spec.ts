import { freePort, startRedis, type ServerHandle } from '@switchyard/testing';
import { closeRedis, connectRedis } from '../src/index';

describe('connectRedis / closeRedis against a real redis-server', () => {
  let server: ServerHandle;
  const warnings: Array<{ obj: object; msg?: string }> = [];
  const logger = { info() {}, warn: (obj: object, msg?: string) => void warnings.push({ obj, msg }) };

  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(async () => {
    await server?.stop();
  });
  beforeEach(() => warnings.splice(0));

  /** The client has stopped for good (no reconnect timers left). */
  const ended = (redis: { status: string; once(event: 'end', fn: () => void): unknown }) =>
    new Promise<void>((resolve) => (redis.status === 'end' ? resolve() : void redis.once('end', resolve)));

  it('connects to a reachable server within the grace, saying nothing', async () => {
    const redis = await connectRedis({ url: server.url, name: 'test', logger, graceMs: 5_000, whileUnreachable: 'serving without Redis' });
    expect(redis.status).toBe('ready');
    expect(await redis.ping()).toBe('PONG');
    expect(warnings.filter((w) => (w.obj as { event?: string }).event === 'redis_unreachable_at_start')).toEqual([]);
    await closeRedis(redis);
    await ended(redis);
  });

  it('serves without an unreachable server after the grace, saying how (the client keeps trying)', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const started = Date.now();
    const redis = await connectRedis({ url, name: 'test', logger, graceMs: 200, whileUnreachable: 'serving without Redis for now (cache bypassed)' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(redis.status).not.toBe('ready');
    expect(warnings).toContainEqual({ obj: { event: 'redis_unreachable_at_start', url }, msg: 'serving without Redis for now (cache bypassed)' });
    // Closing a client that never connected does not wait for a QUIT reply that cannot come.
    await closeRedis(redis);
  });

  it('fails start-up at once, naming the URL, for a service that cannot work without Redis', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const started = Date.now();
    await expect(connectRedis({ url, name: 'test', logger, graceMs: 5_000, whileUnreachable: 'fail' })).rejects.toThrow(
      new RegExp(`^redis ${url.replace(/[.]/g, '\\.')}: `),
    );
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});
