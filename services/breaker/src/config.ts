import { loadConfigFile, type SwitchyardConfig } from '@switchyard/config';
import { type Env, type EnvVar, commonServiceEnv, envInt, envOptional, internalAuthEnv, natsUrlEnv, parseEnv, redisUrlEnv } from '@switchyard/runtime';
import type { BreakerPolicy, DeploymentIdentity, DeploymentPolicy } from './domain/circuit';

/**
 * `dep=ms,dep=ms` → { dep: ms }. Legacy: the config file's
 * `deployments.<id>.breaker.slowCallMs` says the same and wins.
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
  configPath: envOptional('SWITCHYARD_CONFIG', 'gateway YAML: its deployments are known before any outcome, and its defaults.breaker and deployments.<id>.breaker set the breaker policy (README "Config file"); the BREAKER_* policy variables below apply only where it is silent'),
  consecutiveFailures: envInt('BREAKER_CONSECUTIVE_FAILURES', 5, 'legacy, without SWITCHYARD_CONFIG only (the file always sets defaults.breaker.consecutiveFailures): consecutive breaker failures (OVERLOADED, SERVER_ERROR, TIMEOUT, NETWORK) that open a circuit', { min: 1 }),
  openMs: envInt('BREAKER_OPEN_MS', 30_000, 'legacy, without SWITCHYARD_CONFIG only (the file always sets defaults.breaker.openMs): how long a circuit stays OPEN before it reads HALF_OPEN', { min: 1 }),
  failureRatePercent: envInt('BREAKER_FAILURE_RATE_PERCENT', 50, 'legacy for defaults.breaker.failureRatePercent: failure rate (%) over the sliding window that opens a circuit once it holds minimumCalls calls', { min: 1, max: 100 }),
  windowMs: envInt('BREAKER_WINDOW_MS', 60_000, 'legacy for defaults.breaker.windowMs: length of the sliding time window for failure and slow-call rates', { min: 1_000, max: 3_600_000 }),
  minimumCalls: envInt('BREAKER_MINIMUM_CALLS', 20, 'legacy for defaults.breaker.minimumCalls: counted calls the window must hold before a rate can open a circuit', { min: 1 }),
  slowCallMs: envInt('BREAKER_SLOW_CALL_MS', 0, 'legacy for defaults.breaker.slowCallMs: a counted call slower than this is slow (0 = slow calls not tracked); also the degraded threshold for p95', { max: 600_000 }),
  slowCallMsByDeployment: envMsMap('BREAKER_SLOW_CALL_MS_BY_DEPLOYMENT', 'legacy for deployments.<id>.breaker.slowCallMs: per-deployment slow-call thresholds, e.g. gpt4o-east=8000,claude=12000'),
  slowCallRatePercent: envInt('BREAKER_SLOW_CALL_RATE_PERCENT', 100, 'legacy for defaults.breaker.slowCallRatePercent: slow-call rate (%) over the window that opens a circuit (with minimumCalls calls)', { min: 1, max: 100 }),
  maxOpenMs: envInt('BREAKER_MAX_OPEN_MS', 300_000, 'legacy for defaults.breaker.maxOpenMs: cap of the open interval, which doubles on each consecutive re-open', { min: 1 }),
  healthyResetMs: envInt('BREAKER_HEALTHY_RESET_MS', 300_000, 'legacy for defaults.breaker.healthyResetMs: a circuit closed this long without re-opening starts again from the base open interval', { min: 1 }),
  halfOpenProbes: envInt('BREAKER_HALF_OPEN_PROBES', 1, 'legacy for defaults.breaker.halfOpenProbes: probe permits granted cluster-wide in HALF_OPEN; this many successes close the circuit', { min: 1, max: 100 }),
  probeTtlMs: envInt('BREAKER_PROBE_TTL_MS', 30_000, 'legacy for defaults.breaker.probeTtlMs: default lifetime of the half-open probe permit (AcquireProbe ttl_ms = 0)', { min: 1, max: 600_000 }),
  outcomeAckWaitMs: envInt('BREAKER_OUTCOME_ACK_WAIT_MS', 5_000, 'an outcome a replica took but did not ack (it crashed) is redelivered to another replica after this long (set when the durable consumer is created)', { min: 100, max: 600_000 }),
  sweepIntervalMs: envInt('BREAKER_SWEEP_INTERVAL_MS', 1_000, 'how often each replica checks OPEN circuits whose open interval has elapsed (0 = never)'),
  fallbackRetryMs: envInt('BREAKER_FALLBACK_RETRY_MS', 500, 'while Redis is unreachable circuits are counted in this replica\'s memory (README "When our own dependencies fail"); how often a store call tries Redis again', { min: 10, max: 60_000 }),
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
  /** The circuit policy, with each deployment's own settings in `byDeployment`. */
  policy: BreakerPolicy;
  /** Lifetime of a probe permit whose AcquireProbe says ttl_ms = 0. */
  probeTtlMs: number;
  probeTtlMsByDeployment: Record<string, number>;
  outcomeAckWaitMs: number;
  sweepIntervalMs: number;
  /** While in the local (memory) fallback, how often a store call tries Redis again. */
  fallbackRetryMs: number;
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
    ...breakerPolicy(e, file),
    outcomeAckWaitMs: e.outcomeAckWaitMs,
    sweepIntervalMs: e.sweepIntervalMs,
    fallbackRetryMs: e.fallbackRetryMs,
    deployments: file
      ? Object.entries(file.deployments).map(([deployment, d]) => ({ deployment, provider: d.provider, model: d.model }))
      : [],
  };
}

type BreakerSettings = NonNullable<SwitchyardConfig['deployments'][string]['breaker']>;

/**
 * The breaker policy from one place, key by key: the deployment's own
 * `breaker` block, else the file's `defaults.breaker`, else the legacy
 * BREAKER_* variable (or its default).
 */
function breakerPolicy(e: ReturnType<typeof parseEnv<typeof envSpec>>, file: SwitchyardConfig | undefined): Pick<BreakerConfig, 'policy' | 'probeTtlMs' | 'probeTtlMsByDeployment'> {
  const shared: BreakerSettings = { ...file?.defaults.breaker };
  const settings = (s: BreakerSettings): DeploymentPolicy => {
    const rate = (percent: number | undefined) => (percent === undefined ? undefined : percent / 100);
    const picked: DeploymentPolicy = {
      consecutiveFailures: s.consecutiveFailures,
      openMs: s.openMs,
      failureRateThreshold: rate(s.failureRatePercent),
      windowMs: s.windowMs,
      minimumCalls: s.minimumCalls,
      slowCallMs: s.slowCallMs,
      slowCallRateThreshold: rate(s.slowCallRatePercent),
      maxOpenMs: s.maxOpenMs,
      healthyResetMs: s.healthyResetMs,
      halfOpenProbes: s.halfOpenProbes,
    };
    // Only what the file says: an absent key must not hide the one beneath.
    return Object.fromEntries(Object.entries(picked).filter(([, v]) => v !== undefined));
  };
  const legacy: BreakerPolicy = {
    consecutiveFailures: e.consecutiveFailures,
    openMs: e.openMs,
    failureRateThreshold: e.failureRatePercent / 100,
    windowMs: e.windowMs,
    minimumCalls: e.minimumCalls,
    slowCallMs: e.slowCallMs,
    slowCallRateThreshold: e.slowCallRatePercent / 100,
    maxOpenMs: e.maxOpenMs,
    healthyResetMs: e.healthyResetMs,
    halfOpenProbes: e.halfOpenProbes,
  };
  const policy = { ...legacy, ...settings(shared) } as BreakerPolicy;
  const byDeployment: Record<string, DeploymentPolicy> = {};
  const probeTtlMsByDeployment: Record<string, number> = {};
  for (const [deployment, ms] of Object.entries(e.slowCallMsByDeployment)) byDeployment[deployment] = { slowCallMs: ms };
  for (const [deployment, d] of Object.entries(file?.deployments ?? {})) {
    if (!d.breaker) continue;
    const own = { ...byDeployment[deployment], ...settings(d.breaker) };
    if (Object.keys(own).length > 0) byDeployment[deployment] = own;
    if (d.breaker.probeTtlMs !== undefined) probeTtlMsByDeployment[deployment] = d.breaker.probeTtlMs;
  }
  return {
    policy: Object.keys(byDeployment).length > 0 ? { ...policy, byDeployment } : policy,
    probeTtlMs: shared.probeTtlMs ?? e.probeTtlMs,
    probeTtlMsByDeployment,
  };
}
