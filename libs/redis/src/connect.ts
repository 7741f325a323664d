import { type CreateRedisClientOptions, type Redis, type RedisLogger, createRedisClient, waitUntilReady } from './client';

export interface ConnectRedisOptions extends CreateRedisClientOptions {
  logger: RedisLogger;
  /** How long start-up waits for the first connection. */
  graceMs: number;
  /**
   * Not connected within `graceMs`: a sentence saying how the service serves
   * meanwhile (logged once as `redis_unreachable_at_start`; the client keeps
   * reconnecting), or 'fail' for a service that cannot work without Redis:
   * start-up then fails at the first connection error, naming the URL.
   */
  whileUnreachable: string | 'fail';
}

/**
 * The one way a service connects to Redis at start-up (see waitUntilReady for
 * why most serve without it rather than refuse to start).
 */
export async function connectRedis(options: ConnectRedisOptions): Promise<Redis> {
  const { graceMs, whileUnreachable, ...clientOptions } = options;
  if (whileUnreachable === 'fail') {
    const redis = createRedisClient({ ...clientOptions, lazyConnect: true });
    const timer = setTimeout(() => redis.disconnect(), graceMs);
    timer.unref();
    try {
      await redis.connect();
      return redis;
    } catch (err) {
      redis.disconnect();
      throw new Error(`redis ${options.url}: ${(err as Error).message}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }
  const redis = createRedisClient(clientOptions);
  if (!(await waitUntilReady(redis, graceMs))) {
    options.logger.warn({ event: 'redis_unreachable_at_start', url: options.url }, whileUnreachable);
  }
  return redis;
}

/**
 * Closes a client this process owns: QUIT when connected (pending replies
 * arrive first), and in any case a disconnect, which also stops the reconnect
 * timers of a client whose Redis is away.
 */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === 'ready') await redis.quit().catch(() => undefined);
  redis.disconnect();
}
