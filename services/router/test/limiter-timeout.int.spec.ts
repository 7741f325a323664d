import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashApiKey } from '@switchyard/config';
import { Role, RouterService } from '@switchyard/contracts';
import { createClient, parseGrpcError, status, type Client } from '@switchyard/grpc';
import type { RunningService } from '@switchyard/runtime';
import { freePort, spawnSimulator, startNats, type ServerHandle, type SimulatorHandle } from '@switchyard/testing';
import { loadConfig, start } from '../src';

/**
 * Issue 10 part 4, the overload case: a limiter hop that times out (here a
 * limiter that accepts connections and never answers, as one the router is
 * too busy to hear would look) used to send every call upstream unmetered.
 * Now the first call pays the one hop timeout, the router switches to its
 * share of the limits, and the calls after it neither pay the hop nor go
 * past the share.
 */

const KEY = 'timeout-tenant-key';
const SIM_KEY = 'sim-provider-key';
/** The tenant's own RPM: with one router alive, its whole share. */
const TENANT_RPM = 3;
const HOP_MS = 2_000;

const silent = { info() {}, warn() {}, error() {} };

describe('limiter hop timing out (a limiter that never answers)', () => {
  let nats: ServerHandle;
  let sim: SimulatorHandle;
  let hung: Server;
  const sockets: Socket[] = [];
  let router: RunningService;
  let client: Client<typeof RouterService.method>;

  beforeAll(async () => {
    [nats, sim] = await Promise.all([startNats({ jetstream: true }), spawnSimulator({ scenario: { seed: 10 } })]);
    hung = createServer((socket) => void sockets.push(socket));
    await new Promise<void>((done) => hung.listen(0, '127.0.0.1', done));
    const hungPort = (hung.address() as { port: number }).port;
    const configPath = join(mkdtempSync(join(tmpdir(), 'sy-limiter-timeout-')), 'gateway.yaml');
    writeFileSync(
      configPath,
      `
deployments:
  oai:
    provider: openai
    baseUrl: ${sim.url}/v1
    model: gpt-4o-mini
    apiKey: env:SIM_PROVIDER_KEY
    limits: { rpm: 10000 }
    price: { inputPerMillionUsd: 0.15, outputPerMillionUsd: 0.6 }
routes:
  chat: { cacheable: false, candidates: [{ deployment: oai }] }
tenants:
  small:
    apiKeys: [{ id: small-main, sha256: ${hashApiKey(KEY)} }]
    limits: { rpm: ${TENANT_RPM} }
`,
    );
    const [deadBudget, deadCache, deadBreaker] = await Promise.all([freePort(), freePort(), freePort()]);
    router = await start(
      loadConfig({
        GRPC_HOST: '127.0.0.1',
        GRPC_PORT: '0',
        NATS_URL: nats.url,
        SWITCHYARD_CONFIG: configPath,
        SIM_PROVIDER_KEY: SIM_KEY,
        PEER_DEADLINE_MS: String(HOP_MS),
        // No probe during the test: every hop after the first would be a call's.
        LIMITER_SHARE_RETRY_MS: '60000',
        LIMITER_ADDR: `127.0.0.1:${hungPort}`,
        BUDGET_ADDR: `127.0.0.1:${deadBudget}`,
        CACHE_ADDR: `127.0.0.1:${deadCache}`,
        BREAKER_ADDR: `127.0.0.1:${deadBreaker}`,
      }),
      { logger: silent },
    );
    client = createClient(RouterService, `127.0.0.1:${router.port}`, { defaultDeadlineMs: 15_000 });
  }, 60_000);

  afterAll(async () => {
    client?.close();
    await router?.stop();
    for (const s of sockets) s.destroy();
    await new Promise((done) => hung?.close(done));
    await sim?.stop();
    await nats?.stop();
  });

  const call = (i: number) =>
    client.complete({ route: 'chat', messages: [{ role: Role.USER, content: `timeout ${i}` }], params: { maxTokens: 8 } }, { metadata: { 'x-api-key': KEY } });

  // Runs first: the next test's first call paying the whole hop shows that this one left the router on the shared limiter.
  it('a hop cut short by the caller’s own deadline does not switch the router to its share (nor send the call upstream)', async () => {
    const err = await client
      .complete({ route: 'chat', messages: [{ role: Role.USER, content: 'short' }], params: { maxTokens: 8 } }, { metadata: { 'x-api-key': KEY }, deadlineMs: 500 })
      .then(
        () => {
          throw new Error('expected the call to run out of time');
        },
        (e: unknown) => parseGrpcError(e),
      );
    expect([status.DEADLINE_EXCEEDED, status.RESOURCE_EXHAUSTED]).toContain(err.code);
    expect((await sim.counters())['gpt-4o-mini']?.received ?? 0).toBe(0);
  });

  it('pays the hop timeout once, then admits the tenant’s share without a hop and refuses beyond it', async () => {
    const timed = async (i: number) => {
      const started = Date.now();
      const res = await call(i);
      return { res, ms: Date.now() - started };
    };
    const first = await timed(0);
    expect(first.ms).toBeGreaterThanOrEqual(HOP_MS - 50);
    const rest = [await timed(1), await timed(2)];
    for (const { res } of [first, ...rest]) {
      expect(res.degraded).toBe(true);
      expect(res.degradedReason).toMatch(/limiter unavailable: local share/);
      expect(res.attempts[0]!.note).toBe('limiter unavailable: local share');
    }
    // Neither paid the limiter's hop timeout.
    for (const { ms } of rest) expect(ms).toBeLessThan(HOP_MS);

    const err = await call(3).then(
      () => {
        throw new Error('expected RESOURCE_EXHAUSTED: the tenant’s share is spent');
      },
      (e: unknown) => parseGrpcError(e),
    );
    expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(err.message).toMatch(/tenant small RPM exhausted \(this router's share, 3: limiter unavailable\)/);
    expect(err.details.retryDelayMs).toBeGreaterThan(0);
    expect((await sim.counters())['gpt-4o-mini']?.received).toBe(TENANT_RPM);
  }, 30_000);
});
