import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import { hashApiKey } from '@switchyard/config';
import { CircuitState, DeploymentHealthSchema, Role, RouterService } from '@switchyard/contracts';
import { createClient, type Client } from '@switchyard/grpc';
import { createNatsEventBus, KV_BUCKETS } from '@switchyard/nats';
import type { RunningService } from '@switchyard/runtime';
import { CHEAP_PRICE, simDeploymentYaml, spawnSimulator, startNats, startRedis, type ServerHandle, type SimulatorHandle } from '@switchyard/testing';
// Real peers through their production start(), as in router.int.spec.ts.
// eslint-disable-next-line @nx/enforce-module-boundaries
import { start as startBreaker, loadConfig as loadBreakerConfig } from '@switchyard/breaker';
// eslint-disable-next-line @nx/enforce-module-boundaries
import { start as startBudget, loadConfig as loadBudgetConfig } from '@switchyard/budget';
// eslint-disable-next-line @nx/enforce-module-boundaries
import { start as startLimiter, loadConfig as loadLimiterConfig } from '@switchyard/limiter';
// eslint-disable-next-line @nx/enforce-module-boundaries
import { start as startCache, loadConfig as loadCacheConfig } from '@switchyard/cache';
import { loadConfig, start } from '../src';
import { driveUntilOpen, silent } from './stack';

/**
 * DESIGN "When our own dependencies fail": NATS down while the primary fails.
 * Outcomes then reach the breaker over its Report RPC, whose answer (the
 * deployment's health from Redis) keeps this router's replica current; when
 * NATS is back the breaker rewrites KV from Redis and every replica converges.
 */
const KEY = 'outage-secret-key';

const yaml = (sim: string) => `
deployments:
  primary: ${simDeploymentYaml(sim, 'gpt-4o-mini', { price: CHEAP_PRICE })}
  primary-b: ${simDeploymentYaml(sim, 'gpt-4.1-mini', { price: CHEAP_PRICE })}
  fallback: ${simDeploymentYaml(sim, 'claude-haiku-4-5', { provider: 'anthropic', price: '{ inputPerMillionUsd: 1, outputPerMillionUsd: 5 }' })}
routes:
  chat:
    candidates:
      - { deployment: primary, priority: 0 }
      - { deployment: fallback, priority: 1 }
    cacheable: false
  chat-b:
    candidates:
      - { deployment: primary-b, priority: 0 }
      - { deployment: fallback, priority: 1 }
    cacheable: false
tenants:
  acme:
    apiKeys: [{ id: acme, sha256: ${hashApiKey(KEY)} }]
defaults:
  retry: { maxAttempts: 1, baseMs: 10, capMs: 20 }
  breaker: { consecutiveFailures: 3, openMs: 120000 }
`;

describe('router with NATS down while the primary fails', () => {
  let redis: ServerHandle;
  let nats: ServerHandle;
  let sim: SimulatorHandle;
  const services: RunningService[] = [];
  let router: RunningService;
  let client: Client<typeof RouterService.method>;

  beforeAll(async () => {
    [redis, nats, sim] = await Promise.all([
      startRedis(),
      startNats({ jetstream: true }),
      spawnSimulator({ scenario: { seed: 3, deployments: { 'gpt-4o-mini': {}, 'gpt-4.1-mini': {}, 'claude-haiku-4-5': {} } } }),
    ]);
    const configPath = join(mkdtempSync(join(tmpdir(), 'sy-outage-')), 'gateway.yaml');
    writeFileSync(configPath, yaml(sim.url));
    const common = { GRPC_HOST: '127.0.0.1', GRPC_PORT: '0', REDIS_URL: redis.url, NATS_URL: nats.url, SWITCHYARD_CONFIG: configPath, LOG_LEVEL: 'silent' };
    const [lim, brk, bud, cache] = await Promise.all([
      startLimiter(loadLimiterConfig(common), { logger: silent as never }),
      startBreaker(loadBreakerConfig(common), { logger: silent as never }),
      startBudget(loadBudgetConfig(common), { logger: silent as never }),
      startCache(loadCacheConfig(common), { logger: silent as never }),
    ]);
    services.push(lim, brk, bud, cache);
    router = await start(
      loadConfig({
        ...common,
        SIM_PROVIDER_KEY: 'sim-key',
        LIMITER_ADDR: `127.0.0.1:${lim.port}`,
        BREAKER_ADDR: `127.0.0.1:${brk.port}`,
        BUDGET_ADDR: `127.0.0.1:${bud.port}`,
        CACHE_ADDR: `127.0.0.1:${cache.port}`,
      }),
      { logger: silent },
    );
    client = createClient(RouterService, `127.0.0.1:${router.port}`, { defaultDeadlineMs: 15_000 });
  }, 60_000);

  afterAll(async () => {
    client?.close();
    await router?.stop();
    await Promise.all(services.map((s) => s.stop()));
    await Promise.all([sim?.stop(), nats?.stop(), redis?.stop()]);
  }, 60_000);

  const call = (n: number, route = 'chat') =>
    client.complete({ route, messages: [{ role: Role.USER, content: `outage call ${n}` }], params: { maxTokens: 16 } }, { metadata: { 'x-api-key': KEY } });
  const primaryCalls = async () => (await sim.counters())['gpt-4o-mini']?.received ?? 0;

  it('stops sending to the failing primary while NATS is down, and converges from KV when NATS is back', async () => {
    expect((await call(0)).servedBy?.deployment).toBe('primary');

    await nats.kill();
    await sim.setScenario({ seed: 3, deployments: { 'gpt-4o-mini': { faults: { unavailable: 1 } }, 'claude-haiku-4-5': {} } });

    // Each failing call reaches the primary once, falls back, and reports the
    // outcome over gRPC; three consecutive failures open the circuit in Redis.
    const { failedOnPrimary } = await driveUntilOpen({ call, primary: 'primary', fallback: 'fallback', primaryCalls, from: 1 });
    expect(failedOnPrimary).toBeGreaterThanOrEqual(3);
    // Outcomes are reported after the answer, so a call or two may race the open circuit; no more.
    expect(failedOnPrimary).toBeLessThanOrEqual(5);
    // Once open, the primary gets nothing more — with NATS still down.
    const atOpen = await primaryCalls();
    for (let i = 0; i < 5; i++) expect((await call(100 + i)).servedBy?.deployment).toBe('fallback');
    expect(await primaryCalls()).toBe(atOpen);

    // NATS back (same store): the breaker rewrites KV from Redis; a fresh watcher sees OPEN.
    await nats.restart();
    const watcher = await createNatsEventBus({ url: nats.url, name: 'outage-test-watcher' });
    try {
      const kv = await watcher.kv(KV_BUCKETS.health);
      const until = Date.now() + 15_000;
      let state: CircuitState | undefined;
      while (Date.now() < until) {
        const entry = await kv.get('primary');
        state = entry ? fromBinary(DeploymentHealthSchema, entry.value).state : undefined;
        if (state === CircuitState.OPEN) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(state).toBe(CircuitState.OPEN);
    } finally {
      await watcher.close();
    }
    expect((await call(200)).servedBy?.deployment).toBe('fallback');
    expect(await primaryCalls()).toBe(atOpen);
  }, 90_000);

  it('with NATS and the breaker service both down, stops sending to a failing deployment on its own local breaker', async () => {
    const primaryB = async () => (await sim.counters())['gpt-4.1-mini']?.received ?? 0;
    expect((await call(300, 'chat-b')).servedBy?.deployment).toBe('primary-b');
    await nats.kill();
    await services[1]!.stop(); // the breaker service
    await sim.setScenario({ seed: 3, deployments: { 'gpt-4o-mini': { faults: { unavailable: 1 } }, 'gpt-4.1-mini': { faults: { unavailable: 1 } }, 'claude-haiku-4-5': {} } });
    // consecutiveFailures 3, plus at most a call or two racing the (off-path) outcome.
    const { failedOnPrimary: failed } = await driveUntilOpen({ call: (n) => call(n, 'chat-b'), primary: 'primary-b', fallback: 'fallback', primaryCalls: primaryB, from: 301 });
    expect(failed).toBeGreaterThanOrEqual(3);
    expect(failed).toBeLessThanOrEqual(5);
    const atOpen = await primaryB();
    for (let i = 0; i < 5; i++) expect((await call(400 + i, 'chat-b')).servedBy?.deployment).toBe('fallback');
    expect(await primaryB()).toBe(atOpen);
  }, 90_000);
});
