import { CacheService } from '@switchyard/contracts';
import { createGrpcServer, serviceRegistration } from '@switchyard/grpc';
import { closeRedis, connectRedis } from '@switchyard/redis';
import { type RunningService, createLifecycle } from '@switchyard/runtime';
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

/** Wires config → store → handlers → gRPC server; tests and main share it. */
export async function start(config: CacheConfig, deps: Partial<CacheDeps> = {}): Promise<RunningCacheService> {
  const logger: CacheLogger = deps.logger ?? createLogger('switchyard-cache', { level: config.logLevel });
  const life = createLifecycle(logger);
  return life.starting(async () => {
    let store = deps.store;
    if (!store) {
      const client = { url: config.redisUrl, name: 'switchyard-cache', logger, commandTimeoutMs: config.redisCommandTimeoutMs };
      const redis = await connectRedis({ ...client, graceMs: REDIS_STARTUP_WAIT_MS, whileUnreachable: 'serving without Redis for now (cache bypassed)' });
      life.onStop('redis', () => closeRedis(redis));
      store = createRedisCacheStore(redis);
    }
    const ownedStore = store;
    life.onStop('cache store', () => ownedStore.close());
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
    life.onStop('grpc server', () => server.shutdown(config.shutdownGraceMs));
    return { port: server.port, stats, stop: life.stop };
  });
}
