import { loadConfigFile, type SwitchyardConfig } from '@switchyard/config';
import { commonServiceEnv, type Env, envInt, envString, natsUrlEnv, parseEnv } from '@switchyard/runtime';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** Every variable the jobs service reads, with its default (feeds the README table). */
export const envSpec = {
  ...commonServiceEnv(50056, 9469),
  natsUrl: natsUrlEnv('NATS server with JetStream: the work queue (stream SWITCHYARD_JOBS), job records (KV sy_jobs) and job events'),
  configPath: envString('SWITCHYARD_CONFIG', undefined, 'path of the gateway YAML config (tenants and their hashed API keys)'),
  routerAddr: envString('ROUTER_ADDR', '127.0.0.1:50051', 'router gRPC address the jobs are run through (RouterService.Complete)'),
  keySecret: {
    name: 'JOBS_KEY_SECRET',
    defaultText: undefined,
    description:
      "required, at least 32 characters: seals (AES-256-GCM) the caller's API key kept with a queued job, so a job can call the router as its tenant; the same on every replica",
    parse(env: Env): string {
      const v = env.JOBS_KEY_SECRET?.trim();
      if (!v) throw new Error('JOBS_KEY_SECRET: is required (generate one with `openssl rand -hex 32`; the same on every jobs replica)');
      if (v.length < 32) throw new Error(`JOBS_KEY_SECRET: must be at least 32 characters, got ${v.length}`);
      return v;
    },
  },
  concurrency: envInt('JOBS_CONCURRENCY', 64, "router calls in flight per replica; enough to keep the limiter's quota used while calls wait in its fair queue", {
    min: 1,
    max: 10_000,
  }),
  defaultExpiryMs: envInt('JOBS_DEFAULT_EXPIRY_MS', 15 * MINUTE, 'expiry of a job whose Submit says expires_in_ms 0', { min: 1000, max: 7 * 24 * HOUR }),
  maxExpiryMs: envInt('JOBS_MAX_EXPIRY_MS', 6 * HOUR, 'longest expiry a Submit may ask for (must be below JOBS_RESULT_TTL_MS)', { min: 1000, max: 7 * 24 * HOUR }),
  resultTtlMs: envInt('JOBS_RESULT_TTL_MS', 24 * HOUR, 'how long a job record (state, answer or error) is kept after its last change', {
    min: 10_000,
    max: 30 * 24 * HOUR,
  }),
  maxQueuedPerTenant: envInt('JOBS_MAX_QUEUED_PER_TENANT', 10_000, "a tenant's unfinished jobs beyond which Submit answers RESOURCE_EXHAUSTED", { min: 1, max: 10_000_000 }),
  maxQueueAgeMs: envInt('JOBS_MAX_QUEUE_AGE_MS', 10 * MINUTE, "when a tenant's oldest unfinished job has waited longer than this, Submit answers RESOURCE_EXHAUSTED", {
    min: 1000,
    max: 7 * 24 * HOUR,
  }),
  ackWaitMs: envInt('JOBS_ACK_WAIT_MS', 30_000, 'a job held by a worker that stops heartbeating (crashed) is redelivered after this long', { min: 1000, max: HOUR }),
  pollMs: envInt('JOBS_POLL_MS', 250, 'how often a replica reads the queue depth per lane (scheduling hint, gauges, position estimates, backpressure)', {
    min: 10,
    max: MINUTE,
  }),
  retryDelayMs: envInt('JOBS_RETRY_DELAY_MS', 1000, 'requeue delay after a transient router failure (UNAVAILABLE) or a RESOURCE_EXHAUSTED without RetryInfo', { min: 10, max: HOUR }),
  maxTransientFailures: envInt('JOBS_MAX_TRANSIENT_FAILURES', 3, 'router UNAVAILABLE answers after which a job FAILS (every candidate down, or the budget unreachable for a hard-capped tenant); an UNAVAILABLE no router answered (unreachable, restarting) and quota waits are not counted: they retry until expiry', {
    min: 1,
    max: 1000,
  }),
};

export type JobsEnv = ReturnType<typeof parseEnv<typeof envSpec>>;

export interface JobsConfig extends Omit<JobsEnv, 'configPath'> {
  /** The parsed gateway config (tenants and their API key hashes). */
  switchyard: SwitchyardConfig;
}

/** Reads and validates the environment and the config file; throws listing every problem. */
export function loadConfig(env: Env): JobsConfig {
  const { configPath, ...rest } = parseEnv(envSpec, env);
  if (rest.maxExpiryMs >= rest.resultTtlMs) {
    throw new Error(`JOBS_MAX_EXPIRY_MS (${rest.maxExpiryMs}) must be below JOBS_RESULT_TTL_MS (${rest.resultTtlMs}): a queued job's record must outlive its expiry`);
  }
  if (rest.defaultExpiryMs > rest.maxExpiryMs) {
    throw new Error(`JOBS_DEFAULT_EXPIRY_MS (${rest.defaultExpiryMs}) must not exceed JOBS_MAX_EXPIRY_MS (${rest.maxExpiryMs})`);
  }
  return { ...rest, switchyard: loadConfigFile(configPath, env) };
}
