import { loadConfigFile, type SwitchyardConfig } from '@switchyard/config';
import { type Env, commonServiceEnv, envInt, envString, internalAuthEnv, natsUrlEnv, parseEnv, redisUrlEnv } from '@switchyard/runtime';
import type { LimiterSettings } from './domain/limiter';

/** Every variable the limiter reads, with its default (the README table is generated from this). */
export const envSpec = {
  ...commonServiceEnv(50052, 9465),
  ...internalAuthEnv({ operator: ['ClearUnavailable'], views: ['GetQuota'] }),
  natsUrl: natsUrlEnv('NATS server (JetStream enabled) for quota events, the sy_quota KV bucket and replica heartbeats'),
  redisUrl: redisUrlEnv('Redis holding the sliding-window logs, reservations, wait queues and cooldowns (keys sy:lim:*)'),
  configPath: envString('SWITCHYARD_CONFIG', undefined, 'gateway YAML: deployment limits (scaled by defaults.headroom) and tenant limits'),
  defaultReservationTtlMs: envInt('LIMITER_RESERVATION_TTL_MS', 60_000, 'lifetime of a reservation whose Acquire sets no reservation_ttl_ms; an unsettled one expires then (its tokens stay charged)', { min: 1, max: 3_600_000 }),
  maxWaitMs: envInt('LIMITER_MAX_WAIT_MS', 60_000, 'largest max_wait_ms an Acquire may ask for', { max: 600_000 }),
  redisTimeoutMs: envInt('LIMITER_REDIS_TIMEOUT_MS', 500, 'a Redis command slower than this counts as Redis unreachable (local fallback)', { min: 10, max: 60_000 }),
  fallbackRetryMs: envInt('LIMITER_FALLBACK_RETRY_MS', 500, 'while in local fallback, how often an Acquire tries Redis again', { min: 10, max: 60_000 }),
  heartbeatMs: envInt('LIMITER_HEARTBEAT_MS', 1_000, 'replica heartbeat period on NATS (live replicas divide the limits during a Redis outage)', { min: 50, max: 60_000 }),
  windowMs: envInt('LIMITER_WINDOW_MS', 60_000, 'length of the sliding window of RPM/TPM limits; change it only to run time-scaled load tests', { min: 100, max: 60_000 }),
  dayWindowMs: envInt('LIMITER_DAY_WINDOW_MS', 86_400_000, 'length of the sliding window of TPD limits, kept in 1440 buckets (a minute each for a real day); change it only to run time-scaled load tests', { min: 1_440, max: 86_400_000 }),
  defaultCooldownMs: envInt('LIMITER_DEFAULT_COOLDOWN_MS', 1_000, 'cooldown after an upstream 429 that carried no usable retry-after / retry-after-ms', { min: 1, max: 3_600_000 }),
  concurrencyWakeup: envInt('LIMITER_CONCURRENCY_WAKEUP', 1, '1: a Settle that frees a concurrency slot wakes the waiters of that key on every replica at once (NATS `switchyard.limiter.slots`); 0: they only poll every 50 ms', { min: 0, max: 1 }),
};

export interface LimiterConfig {
  grpcHost: string;
  grpcPort: number;
  /** Prometheus /metrics port (0 = any free port). */
  metricsPort: number;
  natsUrl: string;
  redisUrl: string;
  logLevel: string;
  shutdownGraceMs: number;
  internalToken?: string;
  operatorToken?: string;
  /** GRPC_MAX_RECEIVE_BYTES: larger requests are refused before they are parsed. */
  grpcMaxReceiveBytes: number;
  redisTimeoutMs: number;
  fallbackRetryMs: number;
  heartbeatMs: number;
  windowMs: number;
  dayWindowMs: number;
  /** The parsed SWITCHYARD_CONFIG: deployments, tenants, defaults.headroom. */
  gateway: SwitchyardConfig;
  settings: Partial<LimiterSettings>;
}

/** Parses the environment and SWITCHYARD_CONFIG; throws listing every problem. */
export function loadConfig(env: Env): LimiterConfig {
  const e = parseEnv(envSpec, env);
  return {
    grpcHost: e.grpcHost,
    grpcPort: e.grpcPort,
    metricsPort: e.metricsPort,
    natsUrl: e.natsUrl,
    redisUrl: e.redisUrl,
    logLevel: e.logLevel,
    shutdownGraceMs: e.shutdownGraceMs,
    internalToken: e.internalToken,
    operatorToken: e.operatorToken,
    grpcMaxReceiveBytes: e.grpcMaxReceiveBytes,
    redisTimeoutMs: e.redisTimeoutMs,
    fallbackRetryMs: e.fallbackRetryMs,
    heartbeatMs: e.heartbeatMs,
    windowMs: e.windowMs,
    dayWindowMs: e.dayWindowMs,
    gateway: loadConfigFile(e.configPath, env),
    settings: {
      defaultReservationTtlMs: e.defaultReservationTtlMs,
      maxWaitMs: e.maxWaitMs,
      defaultCooldownMs: e.defaultCooldownMs,
      concurrencyWakeup: e.concurrencyWakeup === 1,
    },
  };
}
