import { loadConfigFile, type SwitchyardConfig } from '@switchyard/config';
import { type Env, commonServiceEnv, envInt, envString, natsUrlEnv, parseEnv, redisUrlEnv } from '@switchyard/runtime';
import type { LimiterSettings } from './domain/limiter';

/** Every variable the limiter reads, with its default (the README table is generated from this). */
export const envSpec = {
  ...commonServiceEnv(50052),
  natsUrl: natsUrlEnv('NATS server (JetStream enabled) for quota events, the sy_quota KV bucket and replica heartbeats'),
  redisUrl: redisUrlEnv('Redis holding GCRA state, reservations, wait queues and cooldowns (keys sy:lim:*)'),
  configPath: envString('SWITCHYARD_CONFIG', undefined, 'gateway YAML: deployment limits (scaled by defaults.headroom) and tenant limits'),
  defaultReservationTtlMs: envInt('LIMITER_RESERVATION_TTL_MS', 60_000, 'lifetime of a reservation whose Acquire sets no reservation_ttl_ms; an unsettled one expires then (its tokens stay charged)', { min: 1, max: 3_600_000 }),
  maxWaitMs: envInt('LIMITER_MAX_WAIT_MS', 60_000, 'largest max_wait_ms an Acquire may ask for', { max: 600_000 }),
  defaultCooldownMs: envInt('LIMITER_DEFAULT_COOLDOWN_MS', 1_000, 'cooldown after an upstream 429 that carried no usable retry-after / retry-after-ms', { min: 1, max: 3_600_000 }),
};

export interface LimiterConfig {
  grpcHost: string;
  grpcPort: number;
  natsUrl: string;
  redisUrl: string;
  logLevel: string;
  shutdownGraceMs: number;
  internalToken?: string;
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
    natsUrl: e.natsUrl,
    redisUrl: e.redisUrl,
    logLevel: e.logLevel,
    shutdownGraceMs: e.shutdownGraceMs,
    internalToken: e.internalToken,
    gateway: loadConfigFile(e.configPath, env),
    settings: {
      defaultReservationTtlMs: e.defaultReservationTtlMs,
      maxWaitMs: e.maxWaitMs,
      defaultCooldownMs: e.defaultCooldownMs,
    },
  };
}
