import { commonServiceEnv, type Env, envInt, internalAuthEnv, parseEnv, redisUrlEnv } from '@switchyard/runtime';

const DAY_MS = 86_400_000;
const UINT32_MAX = 4_294_967_295;

/** Every variable the cache service reads, with its default (feeds the README table). */
export const envSpec = {
  ...commonServiceEnv(50055, 9468),
  ...internalAuthEnv({ operator: ['Invalidate'], views: [] }),
  redisUrl: redisUrlEnv('Redis holding cached responses and single-flight leases (keys sy:cache:*)'),
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
