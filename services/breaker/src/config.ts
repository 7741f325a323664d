import { loadConfigFile, type SwitchyardConfig } from '@switchyard/config';
import { type Env, commonServiceEnv, envInt, envOptional, natsUrlEnv, parseEnv, redisUrlEnv } from '@switchyard/runtime';
import type { BreakerPolicy, DeploymentIdentity } from './domain/circuit';

/** Every variable the breaker reads, with its default (the README table is generated from this). */
export const envSpec = {
  ...commonServiceEnv(50053),
  natsUrl: natsUrlEnv('NATS server (JetStream enabled) for outcomes, health events and the sy_health KV bucket'),
  redisUrl: redisUrlEnv('Redis holding circuit state (keys sy:brk:*)'),
  configPath: envOptional('SWITCHYARD_CONFIG', 'gateway YAML; when set, its deployments are known before any outcome and defaults.breaker wins over BREAKER_CONSECUTIVE_FAILURES / BREAKER_OPEN_MS'),
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
