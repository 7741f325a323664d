import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashApiKey } from '@switchyard/config';
import { Role, RouterService } from '@switchyard/contracts';
import { createClient, parseGrpcError, status, type Client } from '@switchyard/grpc';
import { createRedisClient, type Redis } from '@switchyard/redis';
import { simDeploymentYaml, spawnSimulator, startNats, startRedis, type ServerHandle, type SimulatorHandle } from '@switchyard/testing';
import { sleep } from '@switchyard/util';
// The peers run in-process through their production start(), as in stack.ts; the
// limiter's store is wrapped to count the Acquires and Settles that reach it.
// eslint-disable-next-line @nx/enforce-module-boundaries
import { start as startBreaker, loadConfig as loadBreakerConfig } from '@switchyard/breaker';
// eslint-disable-next-line @nx/enforce-module-boundaries
import { start as startBudget, loadConfig as loadBudgetConfig } from '@switchyard/budget';
// eslint-disable-next-line @nx/enforce-module-boundaries
import { start as startCache, loadConfig as loadCacheConfig } from '@switchyard/cache';
// eslint-disable-next-line @nx/enforce-module-boundaries
import { createRedisQuotaStore, loadConfig as loadLimiterConfig, start as startLimiter, type QuotaStore } from '@switchyard/limiter';
import { loadConfig, start, type RunningRouter } from '../src';
import { silent } from './stack';

/**
 * Quota leases (ROUTER_QUOTA_LEASES=1, the default) seen from the limiter:
 * (a) calls well under the limit cost far fewer Acquire and Settle hops than
 * calls; (b) 3× the provider's limit offered across two routers still earns
 * no upstream 429, admits no more than headroom × limit per window, and uses
 * at least 95 % of it. Time-scaled like test/router/rate-limit: the "minute"
 * of the simulator's buckets and of the limiter's window is WINDOW_MS.
 */

const KEY = 'lease-key';
const auth = { metadata: { 'x-api-key': KEY } };
const WINDOW_MS = 12_000;
const WINDOWS = 2;
/** Provider limits per window for the overload case (the simulator enforces them). */
const RPM = 120;
const HEADROOM = 0.8;
const DEADLINE_MS = 2_000;

function gatewayYaml(sim: string): string {
  const dep = (model: string, limits: string) => simDeploymentYaml(sim, model, { limits });
  return `
deployments:
  roomy: ${dep('roomy-m', '{ rpm: 100000, tpm: 100000000 }')}
  tight: ${dep('tight-m', `{ rpm: ${RPM}, tpm: 1000000 }`)}
routes:
  roomy: { cacheable: false, candidates: [{ deployment: roomy }] }
  tight: { cacheable: false, candidates: [{ deployment: tight }] }
tenants:
  acme:
    apiKeys: [{ id: acme-main, sha256: ${hashApiKey(KEY)} }]
defaults:
  headroom: ${HEADROOM}
`;
}

const scenario = {
  seed: 15,
  deployments: {
    'roomy-m': { limits: { rpm: 100_000, tpm: 100_000_000, windowMs: WINDOW_MS } },
    'tight-m': { limits: { rpm: RPM, tpm: 1_000_000, windowMs: WINDOW_MS } },
  },
};

/** The limiter's store, counting what reaches it: leases (lease_ms > 0) apart from per-call Acquires. */
function counting(store: QuotaStore) {
  const hops = { acquires: 0, leases: 0, settles: 0 };
  const spied: QuotaStore = {
    ...store,
    acquire(input) {
      if (input.leaseMs) hops.leases++;
      else hops.acquires++;
      return store.acquire(input);
    },
    settle(input) {
      hops.settles++;
      return store.settle(input);
    },
  };
  return { hops, store: spied };
}

describe('quota leases (router ↔ limiter, simulator enforcing the limit)', () => {
  let handles: ServerHandle[] = [];
  let sim: SimulatorHandle;
  let redis: Redis;
  let services: Array<{ stop(): Promise<void> }> = [];
  const routers: RunningRouter[] = [];
  const clients: Client<typeof RouterService.method>[] = [];
  let hops: { acquires: number; leases: number; settles: number };

  beforeAll(async () => {
    const [r, nats, simulator] = await Promise.all([startRedis(), startNats({ jetstream: true }), spawnSimulator({ scenario })]);
    handles = [r, nats];
    sim = simulator;
    const configPath = join(mkdtempSync(join(tmpdir(), 'sy-leases-')), 'gateway.yaml');
    writeFileSync(configPath, gatewayYaml(sim.url));
    const env = {
      GRPC_HOST: '127.0.0.1', GRPC_PORT: '0', REDIS_URL: r.url, NATS_URL: nats.url, SWITCHYARD_CONFIG: configPath, LOG_LEVEL: 'silent',
      LIMITER_WINDOW_MS: String(WINDOW_MS),
      SWITCHYARD_INTERNAL_TOKEN: 'lease-internal-token',
      SWITCHYARD_OPERATOR_TOKEN: 'lease-operator-token',
      // A loaded box must not turn a slow hop into a (correct) degraded bypass: not this test's subject.
      PEER_DEADLINE_MS: '2000',
    };
    redis = createRedisClient({ url: r.url, name: 'lease-test-limiter', commandTimeoutMs: 5_000 });
    const spy = counting(createRedisQuotaStore({ redis, windowMs: WINDOW_MS }));
    hops = spy.hops;
    const limiter = await startLimiter(loadLimiterConfig(env), { logger: silent as never, store: spy.store });
    const others = await Promise.all([
      startBreaker(loadBreakerConfig(env), { logger: silent as never }),
      startBudget(loadBudgetConfig(env), { logger: silent as never }),
      startCache(loadCacheConfig(env), { logger: silent as never }),
    ]);
    services = [limiter, ...others];
    const [brk, bud, cache] = others;
    const routerEnv = {
      ...env,
      SIM_PROVIDER_KEY: 'sim-key',
      LIMITER_ADDR: `127.0.0.1:${limiter.port}`,
      BREAKER_ADDR: `127.0.0.1:${brk!.port}`,
      BUDGET_ADDR: `127.0.0.1:${bud!.port}`,
      CACHE_ADDR: `127.0.0.1:${cache!.port}`,
      // Leases on (the default, pinned here); ROUTER_QUOTA_LEASES=0 in the environment shows what these assertions catch.
      ROUTER_QUOTA_LEASES: process.env.ROUTER_QUOTA_LEASES ?? '1',
    };
    for (let i = 0; i < 2; i++) {
      const router = await start(loadConfig(routerEnv), { logger: silent });
      routers.push(router);
      clients.push(createClient(RouterService, `127.0.0.1:${router.port}`, { defaultDeadlineMs: 15_000 }));
    }
  }, 120_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    await Promise.all(routers.map((r) => r.stop()));
    await Promise.all(services.map((s) => s.stop()));
    await redis?.quit();
    await sim?.stop();
    await Promise.all(handles.map((h) => h.stop()));
  }, 60_000);

  const call = (client: Client<typeof RouterService.method>, route: string, i: number) =>
    client.complete({ route, messages: [{ role: Role.USER, content: `${route} ${i}` }], params: { maxTokens: 20 } }, { ...auth, deadlineMs: DEADLINE_MS });

  it('admits calls under the limit with far fewer Acquire and Settle hops than calls', async () => {
    const before = { ...hops };
    const CALLS = 200;
    for (let i = 0; i < CALLS; i += 10) await Promise.all(Array.from({ length: 10 }, (_, j) => call(clients[0]!, 'roomy', i + j)));
    // The last lease settles once its window (WINDOW_MS / 12) is over.
    await sleep(1_500);
    const acquires = hops.acquires - before.acquires + hops.leases - before.leases;
    const settles = hops.settles - before.settles;
    console.log(`leases: ${CALLS} calls, ${hops.leases - before.leases} lease Acquires, ${hops.acquires - before.acquires} per-call Acquires, ${settles} Settles`);
    expect((await sim.counters())['roomy-m']?.received).toBe(CALLS);
    expect(acquires).toBeLessThanOrEqual(CALLS / 4);
    expect(settles).toBeLessThanOrEqual(CALLS / 4);
  }, 60_000);

  it('3× the limit across two routers: no upstream 429, at most headroom × limit per window, at least 95 % of it used', async () => {
    const before = { ...hops };
    const offeredPerWindow = 3 * RPM;
    const intervalMs = WINDOW_MS / offeredPerWindow;
    const total = Math.floor((WINDOWS * WINDOW_MS) / intervalMs);
    const started = Date.now();
    let ok = 0;
    const failures: Array<{ code: number; retryDelayMs: number | undefined; message: string }> = [];
    const calls: Promise<void>[] = [];
    for (let i = 0; i < total; i++) {
      const lag = started + i * intervalMs - Date.now();
      if (lag > 0) await sleep(lag);
      calls.push(
        call(clients[i % 2]!, 'tight', i).then(
          () => void (ok += 1),
          (err: unknown) => {
            const e = parseGrpcError(err);
            failures.push({ code: e.code, retryDelayMs: e.details.retryDelayMs, message: e.message });
          },
        ),
      );
    }
    await Promise.all(calls);
    const counters = (await sim.counters())['tight-m'];
    const perWindow = Math.floor(HEADROOM * RPM);
    const spanWindows = Math.ceil((WINDOWS * WINDOW_MS + DEADLINE_MS) / WINDOW_MS);
    console.log(
      `leases at 3× the limit: offered ${total}, served ${ok} (${perWindow} per window allowed over ${WINDOWS} windows of offering), ` +
        `refused ${failures.length} (${JSON.stringify(failures.reduce<Record<number, number>>((m, f) => ({ ...m, [f.code]: (m[f.code] ?? 0) + 1 }), {}))}), upstream 429s ${counters?.byStatus['429'] ?? 0}; hops: ${hops.leases - before.leases} lease Acquires, ${hops.acquires - before.acquires} per-call`,
    );
    expect(counters?.byStatus['429'] ?? 0).toBe(0);
    expect(counters?.received).toBe(ok);
    expect(failures.filter((f) => f.code !== status.RESOURCE_EXHAUSTED || f.retryDelayMs === undefined).slice(0, 3)).toEqual([]);
    expect(ok).toBeLessThanOrEqual(perWindow * spanWindows);
    expect(ok).toBeGreaterThanOrEqual(Math.floor(0.95 * perWindow * WINDOWS));
    // Leases were in play, not only the per-call path.
    expect(hops.leases - before.leases).toBeGreaterThan(0);
  }, 120_000);
});
