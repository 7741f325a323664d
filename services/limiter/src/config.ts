import { loadConfigFile, type SwitchyardConfig } from '@switchyard/config';
import { type Env, envInt, envOptional, envString, parseEnv } from '@switchyard/runtime';
import type { LimiterSettings } from './domain/limiter';

/** Every variable the limiter reads, with its default (the README table is generated from this). */
export const envSpec = {
  grpcHost: envString('GRPC_HOST', '0.0.0.0', 'interface the gRPC server binds'),
  grpcPort: envInt('GRPC_PORT', 50052, 'gRPC port (0 = any free port)', { max: 65535 }),
  natsUrl: envString('NATS_URL', 'nats://127.0.0.1:4222', 'NATS server (JetStream enabled) for quota events and the sy_quota KV bucket'),
  redisUrl: envString('REDIS_URL', 'redis://127.0.0.1:6379', 'Redis holding GCRA state, reservations and cooldowns (keys sy:lim:*)'),
  logLevel: envString('LOG_LEVEL', 'info', 'pino log level'),
  shutdownGraceMs: envInt('SHUTDOWN_GRACE_MS', 10_000, 'in-flight calls get this long on SIGTERM before they are cancelled'),
  configPath: envString('SWITCHYARD_CONFIG', undefined, 'gateway YAML: deployment limits (scaled by defaults.headroom) and tenant limits'),
  internalToken: envOptional('SWITCHYARD_INTERNAL_TOKEN', 'shared secret; when set, calls without metadata x-switchyard-internal-token equal to it are UNAUTHENTICATED'),
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
