import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RouterService, type CompleteResponse } from '@switchyard/contracts';
import { createClient, INTERNAL_TOKEN_METADATA, type Client } from '@switchyard/grpc';
import { spawnSimulator, startNats, startRedis, type ServerHandle, type SimulatorHandle } from '@switchyard/testing';
// The peers run in-process through their production start(), so the router
// meets the real contracts, not fakes of them.
// eslint-disable-next-line @nx/enforce-module-boundaries
import { start as startBreaker, loadConfig as loadBreakerConfig } from '@switchyard/breaker';
// eslint-disable-next-line @nx/enforce-module-boundaries
import { start as startBudget, loadConfig as loadBudgetConfig } from '@switchyard/budget';
// eslint-disable-next-line @nx/enforce-module-boundaries
import { start as startLimiter, loadConfig as loadLimiterConfig } from '@switchyard/limiter';
// eslint-disable-next-line @nx/enforce-module-boundaries
import { start as startCache, loadConfig as loadCacheConfig } from '@switchyard/cache';
import { loadConfig, start, type RouterDeps, type RunningRouter } from '../src';

export const SIM_KEY = 'sim-provider-key';

/**
 * The peers authenticate callers as in production: the router holds the
 * internal token, a test acting as an operator (ForceState, GetHealth…) sends
 * the operator token.
 */
const INTERNAL_TOKEN = 'stack-internal-token';
const OPERATOR_TOKEN = 'stack-operator-token';
export const operatorMetadata: Record<string, string> = { [INTERNAL_TOKEN_METADATA]: OPERATOR_TOKEN };

export const silent = { info() {}, warn() {}, error() {}, debug() {}, fatal() {}, trace() {}, child() { return silent; }, level: 'silent' };

export interface Stack {
  sim: SimulatorHandle;
  router: RunningRouter;
  client: Client<typeof RouterService.method>;
  /** Router env used, so a test can start a second replica against the same peers. */
  routerEnv: Record<string, string>;
  /** The stack's own Redis and NATS, for fault drills (kill, restart). */
  redis: ServerHandle;
  nats: ServerHandle;
  startRouter(env?: Record<string, string>, deps?: Partial<RouterDeps>): Promise<{ router: RunningRouter; client: Client<typeof RouterService.method> }>;
  stop(): Promise<void>;
}

/**
 * Everything the router talks to, for real: Redis, NATS (JetStream), the four
 * peers through their production start(), the provider simulator; then the
 * router itself. `gatewayYaml(simUrl)` writes the gateway config.
 */
export async function startStack(
  gatewayYaml: (simUrl: string) => string,
  scenario: object,
  routerEnv: Record<string, string> = {},
  /** Extra env of the four peers (e.g. BREAKER_FALLBACK_RETRY_MS); each reads only its own. */
  peerExtra: Record<string, string> = {},
): Promise<Stack> {
  const [redis, nats, sim] = await Promise.all([startRedis(), startNats({ jetstream: true }), spawnSimulator({ scenario })]);
  const handles: ServerHandle[] = [redis, nats];
  const dir = mkdtempSync(join(tmpdir(), 'sy-router-'));
  const configPath = join(dir, 'gateway.yaml');
  writeFileSync(configPath, gatewayYaml(sim.url));
  const common = {
    GRPC_HOST: '127.0.0.1',
    GRPC_PORT: '0',
    REDIS_URL: redis.url,
    NATS_URL: nats.url,
    SWITCHYARD_CONFIG: configPath,
    LOG_LEVEL: 'silent',
    SWITCHYARD_INTERNAL_TOKEN: INTERNAL_TOKEN,
  };
  const peerEnv = { ...common, SWITCHYARD_OPERATOR_TOKEN: OPERATOR_TOKEN, ...peerExtra };
  const services = await Promise.all([
    startLimiter(loadLimiterConfig(peerEnv), { logger: silent as never }),
    startBreaker(loadBreakerConfig(peerEnv), { logger: silent as never }),
    startBudget(loadBudgetConfig(peerEnv), { logger: silent as never }),
    startCache(loadCacheConfig(peerEnv), { logger: silent as never }),
  ]);
  const [lim, brk, bud, cache] = services;
  const env = {
    ...common,
    SIM_PROVIDER_KEY: SIM_KEY,
    LIMITER_ADDR: `127.0.0.1:${lim.port}`,
    BREAKER_ADDR: `127.0.0.1:${brk.port}`,
    BUDGET_ADDR: `127.0.0.1:${bud.port}`,
    CACHE_ADDR: `127.0.0.1:${cache.port}`,
    ...routerEnv,
  };
  const routers: RunningRouter[] = [];
  const clients: Client<typeof RouterService.method>[] = [];
  const startRouter = async (extra: Record<string, string> = {}, deps: Partial<RouterDeps> = {}) => {
    const router = await start(loadConfig({ ...env, ...extra }), { logger: silent, ...deps });
    const client = createClient(RouterService, `127.0.0.1:${router.port}`, { defaultDeadlineMs: 15_000 });
    routers.push(router);
    clients.push(client);
    return { router, client };
  };
  const first = await startRouter();
  return {
    sim,
    ...first,
    routerEnv: env,
    redis,
    nats,
    startRouter,
    async stop() {
      for (const c of clients) c.close();
      await Promise.all(routers.map((r) => r.stop()));
      await Promise.all(services.map((s) => s.stop()));
      await sim.stop();
      await Promise.all(handles.map((h) => h.stop()));
    },
  };
}

/**
 * Calls while `primary` fails, until its circuit opens: every call must be
 * answered by `fallback`, and the drive stops at the first one with no
 * attempt on the primary (or throws after `maxCalls`). Returns how many
 * requests the primary received meanwhile, for the caller to hold against
 * the breaker's threshold, and the next call number.
 */
export async function driveUntilOpen(o: {
  call: (n: number) => Promise<CompleteResponse>;
  primary: string;
  fallback: string;
  primaryCalls: () => Promise<number>;
  from: number;
  maxCalls?: number;
}): Promise<{ failedOnPrimary: number; next: number }> {
  const before = await o.primaryCalls();
  for (let n = o.from; n < o.from + (o.maxCalls ?? 19); n++) {
    const res = await o.call(n);
    const served = res.servedBy?.deployment;
    if (served !== o.fallback) throw new Error(`call ${n} was served by ${served}, not ${o.fallback}`);
    if (res.attempts.every((a) => a.deployment?.deployment !== o.primary)) return { failedOnPrimary: (await o.primaryCalls()) - before, next: n + 1 };
  }
  throw new Error(`${o.primary} was still tried after ${o.maxCalls ?? 19} calls: its circuit never opened`);
}
