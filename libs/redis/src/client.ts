import Redis from 'ioredis';

export type { Redis } from 'ioredis';

/** Minimal logger shape (pino-compatible). */
export interface RedisLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface CreateRedisClientOptions {
  url: string;
  /** Connection name (CLIENT SETNAME), e.g. `limiter-<replica>`. */
  name: string;
  /** Do not connect until the first command / `connect()`. Default false. */
  lazyConnect?: boolean;
  logger?: RedisLogger;
  /** A command without a reply within this long fails. Default 1000 ms. */
  commandTimeoutMs?: number;
  /** TCP connect timeout. Default 2000 ms. */
  connectTimeoutMs?: number;
  /** Longest wait between reconnect attempts. Default 2000 ms. */
  maxReconnectDelayMs?: number;
}

/**
 * Reconnect delay: exponential from 50 ms to `max`, with full jitter so a fleet
 * of replicas does not reconnect in lock-step after a Redis restart.
 */
export function reconnectDelay(attempt: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, 50 * 2 ** Math.min(attempt, 10));
  return Math.max(10, Math.round(random() * ceiling));
}

/**
 * A Redis client that fails fast while Redis is away, so callers can apply
 * their fallback policy (local limits, fail-closed budget, cache bypass)
 * instead of hanging a request:
 *  - `maxRetriesPerRequest: 1`: a command is not re-sent over many reconnects;
 *  - the offline queue is on only until the first `ready` (so start-up commands
 *    wait for the connection) and off afterwards: while disconnected, commands
 *    reject immediately instead of queueing;
 *  - `commandTimeout`: a command to a hung (not closed) server fails in ~1 s;
 *  - reconnects forever with capped, jittered backoff; scripts survive a
 *    restart because `defineScript` falls back from EVALSHA to EVAL.
 */
export function createRedisClient(options: CreateRedisClientOptions): Redis {
  if (!options?.url) throw new TypeError('createRedisClient: url is required (redis://host:port)');
  if (!options.name) throw new TypeError('createRedisClient: name is required');
  const maxDelay = options.maxReconnectDelayMs ?? 2_000;
  const client = new Redis(options.url, {
    connectionName: options.name,
    lazyConnect: options.lazyConnect ?? false,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: true,
    commandTimeout: options.commandTimeoutMs ?? 1_000,
    connectTimeout: options.connectTimeoutMs ?? 2_000,
    retryStrategy: (times) => reconnectDelay(times, maxDelay),
  });
  const logger = options.logger;
  // An 'error' listener is required (ioredis would print unhandled errors); log once per outage.
  let healthy = true;
  client.on('error', (err: Error) => {
    if (!healthy) return;
    healthy = false;
    logger?.warn({ err, redis: options.name }, 'redis connection error');
  });
  client.on('ready', () => {
    client.options.enableOfflineQueue = false;
    if (!healthy) logger?.info({ redis: options.name }, 'redis reconnected');
    healthy = true;
  });
  return client;
}

/** Redis server time in ms (TIME). Scripts call TIME themselves; this is for tests and diagnostics. */
export async function redisTime(redis: Redis): Promise<number> {
  const [seconds, micros] = (await redis.time()) as Array<string | number>;
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

/**
 * Resolves true once the client is ready, or false after `timeoutMs`: services
 * start serving either way (each with its own degraded policy while Redis is
 * away) rather than refusing to start, so a Redis blip at deploy time is not
 * an outage of the gateway.
 */
export function waitUntilReady(redis: Redis, timeoutMs: number): Promise<boolean> {
  if (redis.status === 'ready') return Promise.resolve(true);
  return new Promise<boolean>((resolve) => {
    const onReady = () => {
      clearTimeout(timer);
      resolve(true);
    };
    const timer = setTimeout(() => {
      redis.off('ready', onReady);
      resolve(false);
    }, timeoutMs);
    timer.unref();
    redis.once('ready', onReady);
  });
}
