import { loadConfigFile, type SwitchyardConfig } from '@switchyard/config';
import { type Env, type EnvVar, commonServiceEnv, envInt, envOptional, internalAuthEnv, natsUrlEnv, parseEnv, redisUrlEnv } from '@switchyard/runtime';
import type { BreakerPolicy, DeploymentIdentity } from './domain/circuit';

/**
 * `dep=ms,dep=ms` → { dep: ms }. Breaker-owned because the gateway YAML has no
 * per-deployment slow-call key yet (libs/config would need `breaker.slowCallMs`).
 */
function envMsMap(name: string, description: string): EnvVar<Record<string, number>> {
  return {
    name,
    description,
    defaultText: '(unset)',
    parse(env) {
      const v = env[name]?.trim();
      const out: Record<string, number> = {};
      if (!v) return out;
      for (const part of v.split(',')) {
        const m = /^\s*([A-Za-z0-9_-]{1,64})\s*=\s*(\d{1,6})\s*$/.exec(part);
        if (!m) throw new Error(`${name}: entry ${JSON.stringify(part)} must be <deployment>=<milliseconds>`);
        out[m[1]!] = Number(m[2]);
      }
      return out;
    },
  };
}

/** Every variable the breaker reads, with its default (the README table is generated from this). */
export const envSpec = {
  ...commonServiceEnv(50053, 9466),
  ...internalAuthEnv({ operator: ['ForceState'], views: ['GetHealth', 'ListHealth'] }),
  natsUrl: natsUrlEnv('NATS server (JetStream enabled) for outcomes, health events and the sy_health KV bucket'),
  redisUrl: redisUrlEnv('Redis holding circuit state (keys sy:brk:*)'),
  configPath: envOptional('SWITCHYARD_CONFIG', 'gateway YAML; when set, its deployments are known before any outcome and defaults.breaker wins over BREAKER_CONSECUTIVE_FAILURES / BREAKER_OPEN_MS'),
  consecutiveFailures: envInt('BREAKER_CONSECUTIVE_FAILURES', 5, 'consecutive breaker failures (OVERLOADED, SERVER_ERROR, TIMEOUT, NETWORK) that open a circuit', { min: 1 }),
  openMs: envInt('BREAKER_OPEN_MS', 30_000, 'how long a circuit stays OPEN before it reads HALF_OPEN', { min: 1 }),
  failureRatePercent: envInt('BREAKER_FAILURE_RATE_PERCENT', 50, 'failure rate (%) over the sliding window that opens a circuit once it holds BREAKER_MINIMUM_CALLS calls', { min: 1, max: 100 }),
  windowMs: envInt('BREAKER_WINDOW_MS', 60_000, 'length of the sliding time window for failure and slow-call rates', { min: 1_000, max: 3_600_000 }),
  minimumCalls: envInt('BREAKER_MINIMUM_CALLS', 20, 'counted calls the window must hold before a rate can open a circuit', { min: 1 }),
  slowCallMs: envInt('BREAKER_SLOW_CALL_MS', 0, 'a counted call slower than this is slow (0 = slow calls not tracked); also the degraded threshold for p95', { max: 600_000 }),
  slowCallMsByDeployment: envMsMap('BREAKER_SLOW_CALL_MS_BY_DEPLOYMENT', 'per-deployment slow-call thresholds overriding BREAKER_SLOW_CALL_MS, e.g. gpt4o-east=8000,claude=12000'),
  slowCallRatePercent: envInt('BREAKER_SLOW_CALL_RATE_PERCENT', 100, 'slow-call rate (%) over the window that opens a circuit (with BREAKER_MINIMUM_CALLS calls)', { min: 1, max: 100 }),
  maxOpenMs: envInt('BREAKER_MAX_OPEN_MS', 300_000, 'cap of the open interval, which doubles on each consecutive re-open', { min: 1 }),
  healthyResetMs: envInt('BREAKER_HEALTHY_RESET_MS', 300_000, 'a circuit closed this long without re-opening starts again from the base open interval', { min: 1 }),
  halfOpenProbes: envInt('BREAKER_HALF_OPEN_PROBES', 1, 'probe permits granted cluster-wide in HALF_OPEN; this many successes close the circuit', { min: 1, max: 100 }),
  probeTtlMs: envInt('BREAKER_PROBE_TTL_MS', 30_000, 'default lifetime of the half-open probe permit (AcquireProbe ttl_ms = 0)', { min: 1, max: 600_000 }),
  outcomeAckWaitMs: envInt('BREAKER_OUTCOME_ACK_WAIT_MS', 5_000, 'an outcome a replica took but did not ack (it crashed) is redelivered to another replica after this long (set when the durable consumer is created)', { min: 100, max: 600_000 }),
  sweepIntervalMs: envInt('BREAKER_SWEEP_INTERVAL_MS', 1_000, 'how often each replica checks OPEN circuits whose open interval has elapsed (0 = never)'),
};

export interface BreakerConfig {
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
  policy: BreakerPolicy;
  probeTtlMs: number;
  outcomeAckWaitMs: number;
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
    metricsPort: e.metricsPort,
    natsUrl: e.natsUrl,
    redisUrl: e.redisUrl,
    logLevel: e.logLevel,
    shutdownGraceMs: e.shutdownGraceMs,
    internalToken: e.internalToken,
    operatorToken: e.operatorToken,
    grpcMaxReceiveBytes: e.grpcMaxReceiveBytes,
    policy: {
      consecutiveFailures: file?.defaults.breaker.consecutiveFailures ?? e.consecutiveFailures,
      openMs: file?.defaults.breaker.openMs ?? e.openMs,
      failureRateThreshold: e.failureRatePercent / 100,
      windowMs: e.windowMs,
      minimumCalls: e.minimumCalls,
      slowCallMs: e.slowCallMs,
      slowCallMsByDeployment: e.slowCallMsByDeployment,
      slowCallRateThreshold: e.slowCallRatePercent / 100,
      maxOpenMs: e.maxOpenMs,
      healthyResetMs: e.healthyResetMs,
      halfOpenProbes: e.halfOpenProbes,
    },
    probeTtlMs: e.probeTtlMs,
    outcomeAckWaitMs: e.outcomeAckWaitMs,
    sweepIntervalMs: e.sweepIntervalMs,
    deployments: file
      ? Object.entries(file.deployments).map(([deployment, d]) => ({ deployment, provider: d.provider, model: d.model }))
      : [],
  };
}
