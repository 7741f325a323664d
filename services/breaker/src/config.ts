import { loadConfigFile, type SwitchyardConfig } from '@switchyard/config';
import { type Env, envInt, envOptional, envString, parseEnv } from '@switchyard/runtime';
import type { BreakerPolicy, DeploymentIdentity } from './domain/circuit';

/** Every variable the breaker reads, with its default (the README table is generated from this). */
export const envSpec = {
  grpcHost: envString('GRPC_HOST', '0.0.0.0', 'interface the gRPC server binds'),
  grpcPort: envInt('GRPC_PORT', 50053, 'gRPC port (0 = any free port)', { max: 65535 }),
  natsUrl: envString('NATS_URL', 'nats://127.0.0.1:4222', 'NATS server (JetStream enabled) for outcomes, health events and the sy_health KV bucket'),
  redisUrl: envString('REDIS_URL', 'redis://127.0.0.1:6379', 'Redis holding circuit state (keys sy:brk:*)'),
  logLevel: envString('LOG_LEVEL', 'info', 'pino log level'),
  shutdownGraceMs: envInt('SHUTDOWN_GRACE_MS', 10_000, 'in-flight calls get this long on SIGTERM before they are cancelled'),
  configPath: envOptional('SWITCHYARD_CONFIG', 'gateway YAML; when set, its deployments are known before any outcome and defaults.breaker wins over BREAKER_CONSECUTIVE_FAILURES / BREAKER_OPEN_MS'),
  internalToken: envOptional('SWITCHYARD_INTERNAL_TOKEN', 'shared secret; when set, calls without metadata x-switchyard-internal-token equal to it are UNAUTHENTICATED'),
  consecutiveFailures: envInt('BREAKER_CONSECUTIVE_FAILURES', 5, 'consecutive breaker failures (OVERLOADED, SERVER_ERROR, TIMEOUT, NETWORK) that open a circuit', { min: 1 }),
  openMs: envInt('BREAKER_OPEN_MS', 30_000, 'how long a circuit stays OPEN before it reads HALF_OPEN', { min: 1 }),
  windowSize: envInt('BREAKER_WINDOW_SIZE', 20, 'failure_rate is computed over this many most recent counted outcomes', { min: 1, max: 1000 }),
  probeTtlMs: envInt('BREAKER_PROBE_TTL_MS', 30_000, 'default lifetime of the half-open probe permit (AcquireProbe ttl_ms = 0)', { min: 1, max: 600_000 }),
  sweepIntervalMs: envInt('BREAKER_SWEEP_INTERVAL_MS', 1_000, 'how often each replica checks OPEN circuits whose open interval has elapsed (0 = never)'),
};

export interface BreakerConfig {
  grpcHost: string;
  grpcPort: number;
  natsUrl: string;
  redisUrl: string;
  logLevel: string;
  shutdownGraceMs: number;
  internalToken?: string;
  policy: BreakerPolicy;
  probeTtlMs: number;
  sweepIntervalMs: number;
  /** Deployments from SWITCHYARD_CONFIG (empty without it). */
  deployments: DeploymentIdentity[];
}

/** Parses the environment (and SWITCHYARD_CONFIG when set); throws listing every problem. */
export function loadConfig(env: Env): BreakerConfig {
  const e = parseEnv(envSpec, env);
  const file: SwitchyardConfig | undefined = e.configPath ? loadConfigFile(e.configPath, env) : undefined;
  return {
    grpcHost: e.grpcHost,
    grpcPort: e.grpcPort,
    natsUrl: e.natsUrl,
    redisUrl: e.redisUrl,
    logLevel: e.logLevel,
    shutdownGraceMs: e.shutdownGraceMs,
    internalToken: e.internalToken,
    policy: {
      consecutiveFailures: file?.defaults.breaker.consecutiveFailures ?? e.consecutiveFailures,
      openMs: file?.defaults.breaker.openMs ?? e.openMs,
      windowSize: e.windowSize,
    },
    probeTtlMs: e.probeTtlMs,
    sweepIntervalMs: e.sweepIntervalMs,
    deployments: file
      ? Object.entries(file.deployments).map(([deployment, d]) => ({ deployment, provider: d.provider, model: d.model }))
      : [],
  };
}
