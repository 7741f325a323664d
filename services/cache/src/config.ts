import { type Env, envInt, envOptional, envString, parseEnv } from '@switchyard/runtime';

const DAY_MS = 86_400_000;
const UINT32_MAX = 4_294_967_295;

/** Every variable the cache service reads, with its default (feeds the README table). */
export const envSpec = {
  grpcHost: envString('GRPC_HOST', '0.0.0.0', 'interface the gRPC server binds'),
  grpcPort: envInt('GRPC_PORT', 50055, 'gRPC port (0 = any free port)', { min: 0, max: 65535 }),
  redisUrl: envString('REDIS_URL', 'redis://127.0.0.1:6379', 'Redis holding cached responses and single-flight leases'),
  logLevel: envString('LOG_LEVEL', 'info', 'pino log level'),
  shutdownGraceMs: envInt('SHUTDOWN_GRACE_MS', 10_000, 'how long in-flight calls may finish on SIGTERM'),
  internalToken: envOptional('SWITCHYARD_INTERNAL_TOKEN', 'shared secret callers must send as x-switchyard-internal-token'),
  defaultTtlMs: envInt('CACHE_DEFAULT_TTL_MS', DAY_MS, 'freshness of an entry whose Store says ttl_ms 0', { min: 1, max: UINT32_MAX }),
  defaultStaleTtlMs: envInt('CACHE_DEFAULT_STALE_TTL_MS', DAY_MS, 'stale-if-error window beyond the ttl when Store says 0', {
    min: 0,
    max: UINT32_MAX,
  }),
  maxEntryBytes: envInt('CACHE_MAX_ENTRY_BYTES', 4 * 1024 * 1024, 'largest response a Store may save', { min: 1, max: 64 * 1024 * 1024 }),
  waitPollMs: envInt('CACHE_WAIT_POLL_MS', 25, 'how often a single-flight waiter re-checks for the leader result', { min: 1, max: 5_000 }),
  redisCommandTimeoutMs: envInt('CACHE_REDIS_TIMEOUT_MS', 250, 'a Redis call slower than this bypasses the cache (UNAVAILABLE)', {
    min: 10,
    max: 60_000,
  }),
};

export type CacheConfig = ReturnType<typeof parseEnv<typeof envSpec>>;

/** Reads and validates the environment; throws listing every problem. */
export function loadConfig(env: Env): CacheConfig {
  return parseEnv(envSpec, env);
}
