import { hashApiKey } from '@switchyard/config';
import { Role } from '@switchyard/contracts';
import { parseGrpcError, status } from '@switchyard/grpc';
import { metricsRegistry } from '@switchyard/telemetry';
import { startStack, type Stack } from './stack';

/**
 * ROUTER_MAX_IN_FLIGHT over real gRPC, peers, NATS, Redis and the simulator:
 * with the bound's places taken by calls waiting on a slow upstream, further
 * calls are refused at once (RESOURCE_EXHAUSTED, RetryInfo, ROUTER_OVERLOADED)
 * without reaching the provider, the admitted calls still succeed, and their
 * places are given back.
 */
const KEY = 'shed-key';
const MAX = 3;
const UPSTREAM_MS = 1_500;

const yaml = (sim: string) => `
deployments:
  slow:
    provider: openai
    baseUrl: ${sim}/v1
    model: slow-model
    apiKey: env:SIM_PROVIDER_KEY
    limits: { rpm: 100000, tpm: 1000000000 }
    price: { inputPerMillionUsd: 0.15, outputPerMillionUsd: 0.6 }
routes:
  chat: { cacheable: false, candidates: [{ deployment: slow }] }
tenants:
  t:
    apiKeys: [{ id: t-main, sha256: ${hashApiKey(KEY)} }]
`;

describe('router load shedding (ROUTER_MAX_IN_FLIGHT)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack(
      yaml,
      { seed: 5, defaults: { limits: { rpm: 1_000_000, tpm: 1_000_000_000 } }, deployments: { 'slow-model': { latency: { firstToken: UPSTREAM_MS } } } },
      { ROUTER_MAX_IN_FLIGHT: String(MAX) },
    );
  }, 60_000);
  afterAll(() => stack?.stop());

  const complete = (i: number) =>
    stack.client.complete({ route: 'chat', messages: [{ role: Role.USER, content: `call ${i}` }], params: { maxTokens: 8 } }, { metadata: { 'x-api-key': KEY } });

  async function upstreamReceived(): Promise<number> {
    return (await stack.sim.counters())['slow-model']?.received ?? 0;
  }

  /** A series of the router's metrics (this process's registry: startStack runs the router in process). */
  async function series(name: string): Promise<number> {
    const line = (await metricsRegistry().metrics()).split('\n').find((l) => l.startsWith(`${name} `));
    return Number(line?.split(' ')[1]);
  }

  it('refuses the excess at once with RESOURCE_EXHAUSTED and a retry-after; admitted calls succeed', async () => {
    const shedBefore = await series('switchyard_router_shed_total');
    const turnsBefore = await series('switchyard_router_turn_wait_seconds_count');
    const admitted = Array.from({ length: MAX }, (_, i) => complete(i));
    // Wait until all three hold their place (they are at the provider).
    const until = Date.now() + 10_000;
    while ((await upstreamReceived()) < MAX) {
      if (Date.now() > until) throw new Error(`admitted calls never reached the upstream (${await upstreamReceived()} of ${MAX})`);
      await new Promise((r) => setTimeout(r, 20));
    }

    // Operators see the gate full.
    expect(await series('switchyard_router_in_flight_calls')).toBe(MAX);
    expect(await series('switchyard_router_in_flight_limit')).toBe(MAX);
    const excess = await Promise.all(
      Array.from({ length: 5 }, async (_, i) => {
        const start = performance.now();
        const outcome = await complete(100 + i).then(
          () => undefined,
          (err: unknown) => parseGrpcError(err),
        );
        return { outcome, ms: performance.now() - start };
      }),
    );
    const admittedResults = await Promise.allSettled(admitted);

    for (const { outcome, ms } of excess) {
      expect(outcome?.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(outcome?.details.retryDelayMs).toBe(100);
      expect(outcome?.details.errorInfo?.reason).toBe('ROUTER_OVERLOADED');
      // Refused while the admitted calls were still waiting on the upstream: no queueing.
      expect(ms).toBeLessThan(UPSTREAM_MS / 2);
    }
    expect(admittedResults.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
    // The refused calls never reached the provider, and each is counted as shed.
    expect(await upstreamReceived()).toBe(MAX);
    expect((await series('switchyard_router_shed_total')) - shedBefore).toBe(5);
    // Each admitted call took a turn of the CPU when its answer came; a refused one none.
    expect((await series('switchyard_router_turn_wait_seconds_count')) - turnsBefore).toBe(MAX);

    // The places were given back.
    await expect(complete(200)).resolves.toMatchObject({ content: expect.any(String) });
  }, 30_000);
});
