import { CacheService } from '@switchyard/contracts';
import { createGrpcServer, serviceRegistration } from '@switchyard/grpc';
import { createRedisClient, waitUntilReady, type Redis } from '@switchyard/redis';
import type { RunningService } from '@switchyard/runtime';
import { createLogger } from '@switchyard/telemetry';
import { CACHE_ACCESS, type CacheHandlerLogger, type CacheStats, createCacheHandlers } from './adapters/grpc-cache-handlers';
import { createRedisCacheStore } from './adapters/redis-cache-store';
import type { CacheConfig } from './config';
import type { CacheStore } from './domain/cache-store';

export interface CacheLogger extends CacheHandlerLogger {
  error(obj: object, msg?: string): void;
}

/** What start() needs from the outside; the embedded demo passes the memory store. */
export interface CacheDeps {
  store: CacheStore;
  logger: CacheLogger;
}

export interface RunningCacheService extends RunningService {
  stats: CacheStats;
}

/** How long start-up waits for Redis before serving anyway (bypassing until it connects). */
const REDIS_STARTUP_WAIT_MS = 5_000;

async function connectRedis(config: CacheConfig, logger: CacheLogger): Promise<Redis> {
  const redis = createRedisClient({ url: config.redisUrl, name: 'switchyard-cache', logger, commandTimeoutMs: config.redisCommandTimeoutMs });
  if (!(await waitUntilReady(redis, REDIS_STARTUP_WAIT_MS))) {
    logger.warn({ event: 'redis_unreachable_at_start', url: config.redisUrl }, 'serving without Redis for now (cache bypassed)');
  }
  return redis;
}

/** Wires config → store → handlers → gRPC server; tests and main share it. */
export async function start(config: CacheConfig, deps: Partial<CacheDeps> = {}): Promise<RunningCacheService> {
  const logger: CacheLogger = deps.logger ?? createLogger('switchyard-cache', { level: config.logLevel });
  let redis: Redis | undefined;
  try {
    let store = deps.store;
    if (!store) {
      redis = await connectRedis(config, logger);
      store = createRedisCacheStore(redis);
    }
    const { implementation, stats } = createCacheHandlers({
      store,
      logger,
      defaultTtlMs: config.defaultTtlMs,
      defaultStaleTtlMs: config.defaultStaleTtlMs,
      maxEntryBytes: config.maxEntryBytes,
      waitPollMs: config.waitPollMs,
    });
    const server = await createGrpcServer({
      host: config.grpcHost,
      port: config.grpcPort,
      services: [serviceRegistration(CacheService, implementation, CACHE_ACCESS)],
      logger,
      auth: { internalToken: config.internalToken, operatorToken: config.operatorToken },
      // A Store carries a whole cached response: never below the entry limit plus room for the envelope.
      channelOptions: { 'grpc.max_receive_message_length': Math.max(config.grpcMaxReceiveBytes, config.maxEntryBytes + 64 * 1024) },
    });
    let stopped: Promise<void> | undefined;
    return {
      port: server.port,
      stats,
      stop() {
        stopped ??= (async () => {
          await server.shutdown(config.shutdownGraceMs);
          await store.close();
          // QUIT needs a live connection; a dead one is just torn down.
          if (redis?.status === 'ready') await redis.quit().catch(() => undefined);
          redis?.disconnect();
        })();
        return stopped;
      },
    };
  } catch (err) {
    redis?.disconnect();
    throw err;
  }
}
