import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { hashApiKey } from '@switchyard/config';
import { JobsService } from '@switchyard/contracts';
import { createClient, type Client } from '@switchyard/grpc';
import type { RunningService } from '@switchyard/runtime';
import { spawnProcess, spawnSimulator, startNats, startRedis, type ServerHandle, type SimulatorHandle, type SpawnedProcess } from '@switchyard/testing';
// The router and its peers run in-process through their production start();
// the jobs service runs as its own process, so a test can SIGKILL it.
// eslint-disable-next-line @nx/enforce-module-boundaries
import { start as startBreaker, loadConfig as loadBreakerConfig } from '@switchyard/breaker';
// eslint-disable-next-line @nx/enforce-module-boundaries
import { start as startBudget, loadConfig as loadBudgetConfig } from '@switchyard/budget';
// eslint-disable-next-line @nx/enforce-module-boundaries
import { start as startLimiter, loadConfig as loadLimiterConfig } from '@switchyard/limiter';
// eslint-disable-next-line @nx/enforce-module-boundaries
import { start as startCache, loadConfig as loadCacheConfig } from '@switchyard/cache';
// eslint-disable-next-line @nx/enforce-module-boundaries
import { start as startRouter, loadConfig as loadRouterConfig } from '@switchyard/router';

const ROOT = resolve(__dirname, '../../..');
const INTERNAL_TOKEN = 'jobs-stack-internal-token';
export const KEYS = { acme: 'sk-jobs-acme', flood: 'sk-jobs-flood', small: 'sk-jobs-small', broke: 'sk-jobs-broke' } as const;
/** Tenant `broke` has a hard budget smaller than any call's worst case. */
const TENANT_EXTRA: Partial<Record<keyof typeof KEYS, string>> = { broke: '\n    budgets: [{ period: day, limitUsd: 0.000001 }]' };
export type Tenant = keyof typeof KEYS;
export const auth = (tenant: Tenant) => ({ metadata: { 'x-api-key': KEYS[tenant] } });

const silent = { info() {}, warn() {}, error() {}, debug() {}, fatal() {}, trace() {}, child() { return silent; }, level: 'silent' };

export interface JobsStackOptions {
  /** The provider's limit per window, as the simulator enforces it and the config declares it. */
  rpm: number;
  windowMs: number;
  headroom: number;
  /** Simulator first-token latency, ms. */
  latencyMs: number;
  jobsEnv?: Record<string, string>;
}

export interface JobsStack {
  sim: SimulatorHandle;
  nats: ServerHandle;
  /** The simulator's model behind route `jobs`. */
  model: string;
  /** Starts one more jobs replica (its own process). */
  spawnJobs(): Promise<{ process: SpawnedProcess; client: Client<typeof JobsService.method> }>;
  /** Stops the router (gracefully), leaves it down `downMs`, and starts it again on the same port: a restart or a deploy. */
  restartRouter(downMs: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startJobsStack(options: JobsStackOptions): Promise<JobsStack> {
  const model = 'jobs-m';
  const [redis, nats, sim] = await Promise.all([
    startRedis(),
    startNats({ jetstream: true }),
    spawnSimulator({
      scenario: { seed: 16, deployments: { [model]: { limits: { rpm: options.rpm, tpm: options.rpm * 1000, windowMs: options.windowMs }, latency: { firstToken: options.latencyMs } } } },
    }),
  ]);
  const servers: ServerHandle[] = [redis, nats];
  const configPath = join(mkdtempSync(join(tmpdir(), 'sy-jobs-')), 'gateway.yaml');
  const tenants = Object.entries(KEYS)
    .map(([tenant, key]) => `  ${tenant}:\n    apiKeys: [{ id: ${tenant}-main, sha256: ${hashApiKey(key)} }]${TENANT_EXTRA[tenant as keyof typeof KEYS] ?? ''}`)
    .join('\n');
  writeFileSync(
    configPath,
    `
deployments:
  sim-d:
    provider: openai
    baseUrl: ${sim.url}/v1
    model: ${model}
    apiKey: env:SIM_PROVIDER_KEY
    limits: { rpm: ${options.rpm}, tpm: ${options.rpm * 1000} }
    price: { inputPerMillionUsd: 1, outputPerMillionUsd: 2 }
routes:
  jobs: { cacheable: false, candidates: [{ deployment: sim-d }] }
tenants:
${tenants}
defaults:
  headroom: ${options.headroom}
`,
  );
  const common = {
    GRPC_HOST: '127.0.0.1',
    GRPC_PORT: '0',
    REDIS_URL: redis.url,
    NATS_URL: nats.url,
    SWITCHYARD_CONFIG: configPath,
    LOG_LEVEL: 'silent',
    SWITCHYARD_INTERNAL_TOKEN: INTERNAL_TOKEN,
    LIMITER_WINDOW_MS: String(options.windowMs),
    // A loaded box can stall a Redis or peer reply past the defaults, which would
    // (correctly) switch to local fallbacks: not these tests' subject.
    LIMITER_REDIS_TIMEOUT_MS: '5000',
    PEER_DEADLINE_MS: '2000',
  };
  const peers: RunningService[] = await Promise.all([
    startLimiter(loadLimiterConfig(common), { logger: silent as never }),
    startBreaker(loadBreakerConfig(common), { logger: silent as never }),
    startBudget(loadBudgetConfig(common), { logger: silent as never }),
    startCache(loadCacheConfig(common), { logger: silent as never }),
  ]);
  const [lim, brk, bud, cache] = peers;
  const routerEnv = {
    ...common,
    SIM_PROVIDER_KEY: 'sim-key',
    LIMITER_ADDR: `127.0.0.1:${lim!.port}`,
    BREAKER_ADDR: `127.0.0.1:${brk!.port}`,
    BUDGET_ADDR: `127.0.0.1:${bud!.port}`,
    CACHE_ADDR: `127.0.0.1:${cache!.port}`,
  };
  let router = await startRouter(loadRouterConfig(routerEnv), { logger: silent as never });
  const spawned: SpawnedProcess[] = [];
  const clients: Client<typeof JobsService.method>[] = [];
  return {
    sim,
    nats,
    model,
    async spawnJobs() {
      const process = await spawnProcess({
        entry: join(ROOT, 'services/jobs/src/main.ts'),
        env: {
          GRPC_HOST: '127.0.0.1',
          GRPC_PORT: '0',
          NATS_URL: nats.url,
          SWITCHYARD_CONFIG: configPath,
          ROUTER_ADDR: `127.0.0.1:${router.port}`,
          JOBS_KEY_SECRET: 'jobs-stack-key-secret-0123456789abcdef',
          LOG_LEVEL: 'warn',
          OTEL_SDK_DISABLED: 'true',
          ...options.jobsEnv,
        },
        readyTimeoutMs: 90_000,
      });
      spawned.push(process);
      const client = createClient(JobsService, `127.0.0.1:${process.port}`, { defaultDeadlineMs: 15_000 });
      clients.push(client);
      return { process, client };
    },
    async restartRouter(downMs) {
      const port = router.port;
      await router.stop();
      await new Promise((resolve) => setTimeout(resolve, downMs));
      router = await startRouter(loadRouterConfig({ ...routerEnv, GRPC_PORT: String(port), HTTP_PORT: '0' }), { logger: silent as never });
    },
    async stop() {
      for (const c of clients) c.close();
      await Promise.all(spawned.map((p) => p.stop().catch(() => undefined)));
      await router.stop();
      await Promise.all(peers.map((p) => p.stop()));
      await sim.stop();
      await Promise.all(servers.map((s) => s.stop()));
    },
  };
}

/**
 * How close a drain came to the limit: a sliding window of `perWindow` per
 * `windowMs` admits the k-th call at the earliest `windowMs` after the
 * (k − perWindow)-th, so with demand never lacking every such gap is exactly
 * one window. Utilisation is one window over the mean gap: 1 = the quota
 * never idled. Insensitive to how the first window's burst was spread.
 */
export function drainUtilisation(finishedUnixMs: number[], perWindow: number, windowMs: number): number {
  const f = [...finishedUnixMs].sort((a, b) => a - b);
  let sum = 0;
  let n = 0;
  for (let k = perWindow; k < f.length; k++) {
    sum += f[k]! - f[k - perWindow]!;
    n += 1;
  }
  return n === 0 ? NaN : windowMs / (sum / n);
}
