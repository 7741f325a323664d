import { fromBinary } from '@bufbuild/protobuf';
import { hashApiKey } from '@switchyard/config';
import { CircuitState, DeploymentHealthSchema, Role } from '@switchyard/contracts';
import { createNatsEventBus, KV_BUCKETS, type EventBus } from '@switchyard/nats';
import { CHEAP_PRICE, simDeploymentYaml } from '@switchyard/testing';
import { driveUntilOpen, startStack, type Stack } from './stack';

/**
 * DESIGN "When our own dependencies fail": Redis down while the primary fails.
 * The breaker cannot record in Redis, so it counts circuits in its own memory
 * (README "When our own dependencies fail"): the circuit still opens and the
 * router stops sending to the failing primary. Redis back empty: the breaker's
 * store is the truth again; a router whose published view is still OPEN gets
 * to the primary once its open interval ends (the breaker says CLOSED, and
 * republishes it), instead of waiting forever for a probe no store will grant.
 */
const KEY = 'redis-outage-secret-key';
const OPEN_MS = 4_000;

const yaml = (sim: string) => `
deployments:
  primary: ${simDeploymentYaml(sim, 'gpt-4o-mini', { price: CHEAP_PRICE })}
  fallback: ${simDeploymentYaml(sim, 'claude-haiku-4-5', { provider: 'anthropic', price: '{ inputPerMillionUsd: 1, outputPerMillionUsd: 5 }' })}
routes:
  chat:
    candidates:
      - { deployment: primary, priority: 0 }
      - { deployment: fallback, priority: 1 }
    cacheable: false
tenants:
  acme:
    apiKeys: [{ id: acme, sha256: ${hashApiKey(KEY)} }]
defaults:
  retry: { maxAttempts: 1, baseMs: 10, capMs: 20 }
  breaker: { consecutiveFailures: 3, openMs: ${OPEN_MS}, maxOpenMs: ${OPEN_MS} }
`;

describe('router with Redis down while the primary fails', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack(yaml, { seed: 3, deployments: { 'gpt-4o-mini': {}, 'claude-haiku-4-5': {} } }, {}, { BREAKER_FALLBACK_RETRY_MS: '200', BREAKER_SWEEP_INTERVAL_MS: '200' });
  }, 60_000);

  afterAll(() => stack?.stop(), 60_000);

  const call = (n: number) => stack.client.complete({ route: 'chat', messages: [{ role: Role.USER, content: `redis outage call ${n}` }], params: { maxTokens: 16 } }, { metadata: { 'x-api-key': KEY } });
  const primaryCalls = async () => (await stack.sim.counters())['gpt-4o-mini']?.received ?? 0;
  const published = async (watcher: EventBus) => {
    const entry = await (await watcher.kv(KV_BUCKETS.health)).get('primary');
    return entry ? fromBinary(DeploymentHealthSchema, entry.value) : undefined;
  };

  it('opens the circuit from the breaker\'s memory while Redis is down; back from an empty Redis, the primary is used again', async () => {
    expect((await call(0)).servedBy?.deployment).toBe('primary');
    await stack.redis.kill();
    await stack.sim.setScenario({ seed: 3, deployments: { 'gpt-4o-mini': { faults: { unavailable: 1 } }, 'claude-haiku-4-5': {} } });

    const opened = await driveUntilOpen({ call, primary: 'primary', fallback: 'fallback', primaryCalls, from: 1 });
    let n = opened.next;
    const { failedOnPrimary } = opened;
    expect(failedOnPrimary).toBeGreaterThanOrEqual(3);
    // Outcomes are recorded after the answer, so a call or two may race the open circuit; no more.
    expect(failedOnPrimary).toBeLessThanOrEqual(5);
    const watcher = await createNatsEventBus({ url: stack.nats.url, name: 'redis-outage-watcher' });
    try {
      expect((await published(watcher))?.state).toBe(CircuitState.OPEN);
      const atOpen = await primaryCalls();
      for (let i = 0; i < 3; i++) expect((await call(100 + i)).servedBy?.deployment).toBe('fallback');
      expect(await primaryCalls()).toBe(atOpen);

      // The primary recovers and Redis comes back empty (no persistence).
      await stack.sim.setScenario({ seed: 3, deployments: { 'gpt-4o-mini': {}, 'claude-haiku-4-5': {} } });
      await stack.redis.restart();
      const until = Date.now() + OPEN_MS * 4;
      let served: string | undefined;
      while (Date.now() < until) {
        served = (await call(n++)).servedBy?.deployment;
        if (served === 'primary') break;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(served).toBe('primary');
      // And the published health converges on the store's CLOSED.
      let state: CircuitState | undefined;
      while (Date.now() < until + 10_000) {
        await call(n++);
        state = (await published(watcher))?.state;
        if (state === CircuitState.CLOSED) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(state).toBe(CircuitState.CLOSED);
    } finally {
      await watcher.close();
    }
  }, 90_000);
});
