import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { hashApiKey } from '@switchyard/config';
import { Role, RouterService } from '@switchyard/contracts';
import { createClient, parseGrpcError, status, type Client } from '@switchyard/grpc';
import { spawnProcess, spawnSimulator, startNats, startRedis, type ServerHandle, type SimulatorHandle, type SpawnedProcess } from '@switchyard/testing';
import { sleep } from '@switchyard/util';

/**
 * Issue 10 part 4's proof: a dead limiter service must not mean unmetered
 * traffic. Two routers take 3× the provider's limit (the simulator enforces it
 * with true token buckets); we SIGKILL the limiter service mid-load, restart it
 * later on the same address, and look at what reached the provider:
 * - while it is down, each router admits at most its share — headroom × limit
 *   ÷ 2 routers — in any window, and the provider answers (next to) no 429;
 * - once it is back (its readiness line), calls are normal again within a
 *   second: served by the shared limiter, not degraded, not refused for want
 *   of it.
 *
 * Time-scaled like rate-limit.int.spec.ts: the "minute" of the simulator's
 * buckets, the limiter's window and the routers' local windows is
 * LIMITER_OUTAGE_WINDOW_MS (3 s). Every service is its own process.
 */

const ROOT = resolve(__dirname, '../..');
/** The degraded reason of an answer admitted from a router's share (services/router/src/adapters/limiter-fallback.ts). */
const LOCAL_SHARE_NOTE = 'limiter unavailable: local share';

const KEY = 'limiter-outage-key';
const WINDOW_MS = Number(process.env.LIMITER_OUTAGE_WINDOW_MS ?? 3000);
/** The provider's published RPM (per window), as the simulator enforces it and our config declares it. */
const RPM = 30;
const HEADROOM = 0.8;
const ROUTERS = 2;
/** Each router's share while the limiter is down. */
const SHARE = Math.floor((HEADROOM * RPM) / ROUTERS);
const OFFERED_PER_WINDOW = 3 * RPM;
const DEADLINE_MS = 5000;
const MAX_TOKENS = 16;
const gatewayYaml = (sim: string) => `
deployments:
  lo-rpm:
    provider: openai
    baseUrl: ${sim}/v1
    model: lo-rpm-m
    apiKey: env:SIM_PROVIDER_KEY
    limits: { rpm: ${RPM}, tpm: ${RPM * 1000} }
    price: { inputPerMillionUsd: 1, outputPerMillionUsd: 2 }
routes:
  chat: { cacheable: false, candidates: [{ deployment: lo-rpm }] }
tenants:
  acme:
    apiKeys: [{ id: acme-main, sha256: ${hashApiKey(KEY)} }]
defaults:
  headroom: ${HEADROOM}
  # Calls a starved test box times out must not open the circuit: the breaker is not this test's subject.
  breaker: { consecutiveFailures: 1000000, openMs: 1000 }
`;

const scenario = { seed: 10, deployments: { 'lo-rpm-m': { limits: { rpm: RPM, tpm: RPM * 1000, windowMs: WINDOW_MS } } } };

interface Call {
  router: number;
  sentAt: number;
  doneAt: number;
  ok: boolean;
  degradedReason?: string;
  code?: number;
  retryDelayMs?: number | undefined;
  message?: string;
}

/**
 * A free port below the kernel's ephemeral range (32768–60999 on Linux), so
 * that while the limiter is dead no outgoing connection or port-0 listener on
 * this busy machine is handed its port before the restart binds it again.
 */
async function fixedPort(): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await new Promise<boolean>((done) => {
      const probe = createServer();
      probe.once('error', () => done(false));
      probe.listen(port, '127.0.0.1', () => probe.close(() => done(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port in 20000-31999');
}

/** Open-loop load, alternating between the routers, until stop(). */
function startLoad(clients: Client<typeof RouterService.method>[]) {
  const calls: Call[] = [];
  const pending: Promise<void>[] = [];
  const intervalMs = WINDOW_MS / OFFERED_PER_WINDOW;
  let stopped = false;
  const loop = (async () => {
    const started = Date.now();
    for (let i = 0; !stopped; i++) {
      const lag = started + i * intervalMs - Date.now();
      if (lag > 0) await sleep(lag);
      const router = i % clients.length;
      const sentAt = Date.now();
      pending.push(
        clients[router]!
          .complete({ route: 'chat', messages: [{ role: Role.USER, content: `outage ${i}` }], params: { maxTokens: MAX_TOKENS } }, { metadata: { 'x-api-key': KEY }, deadlineMs: DEADLINE_MS })
          .then(
            (res) => void calls.push({ router, sentAt, doneAt: Date.now(), ok: true, ...(res.degraded ? { degradedReason: res.degradedReason } : {}) }),
            (err: unknown) => {
              const e = parseGrpcError(err);
              calls.push({ router, sentAt, doneAt: Date.now(), ok: false, code: e.code, retryDelayMs: e.details.retryDelayMs, message: e.message });
            },
          ),
      );
    }
  })();
  return {
    async stop(): Promise<Call[]> {
      stopped = true;
      await loop;
      await Promise.all(pending);
      return calls;
    },
  };
}

/**
 * Most calls the router certainly admitted within one window [s, s + WINDOW_MS)
 * starting in [from, to]: a call is admitted somewhere between its start and
 * its answer, so one that started and ended inside the window was admitted in
 * it. A lower bound of the true count that stalls of a busy test box cannot
 * inflate (with the zero-latency simulator it is the count itself).
 */
function maxAdmittedInWindow(calls: Call[], from: number, to: number): number {
  let max = 0;
  for (const { sentAt: s } of calls) {
    if (s < from || s > to) continue;
    max = Math.max(max, calls.filter((c) => c.sentAt >= s && c.doneAt < s + WINDOW_MS).length);
  }
  return max;
}

describe('limiter service killed under 3× the provider limit (2 routers, simulator enforcing the limit)', () => {
  let servers: ServerHandle[] = [];
  let sim: SimulatorHandle | undefined;
  let peers: SpawnedProcess[] = [];
  let limiter: SpawnedProcess | undefined;
  let routers: SpawnedProcess[] = [];
  let clients: Client<typeof RouterService.method>[] = [];
  let env: Record<string, string> = {};
  let limiterPort = 0;

  beforeAll(async () => {
    const [redis, nats, simulator] = await Promise.all([startRedis(), startNats({ jetstream: true }), spawnSimulator({ scenario })]);
    servers = [redis, nats];
    sim = simulator;
    const configPath = join(mkdtempSync(join(tmpdir(), 'sy-limiter-outage-')), 'gateway.yaml');
    writeFileSync(configPath, gatewayYaml(simulator.url));
    env = {
      GRPC_HOST: '127.0.0.1', GRPC_PORT: '0', REDIS_URL: redis.url, NATS_URL: nats.url, SWITCHYARD_CONFIG: configPath,
      LOG_LEVEL: 'warn', OTEL_SDK_DISABLED: 'true', SIM_PROVIDER_KEY: 'sim-key',
      // One window length for the limiter and the routers' local shares.
      LIMITER_WINDOW_MS: String(WINDOW_MS),
      // As in rate-limit.int.spec.ts: a starved CI box must not push Redis or a peer hop into their (correct) fallbacks.
      LIMITER_REDIS_TIMEOUT_MS: '5000',
      PEER_DEADLINE_MS: '2000',
      BREAKER_MINIMUM_CALLS: '1000000',
    };
    limiterPort = await fixedPort();
    const names = ['breaker', 'budget', 'cache'] as const;
    [limiter, ...peers] = await Promise.all([
      spawnProcess({ entry: join(ROOT, 'services/limiter/src/main.ts'), env: { ...env, GRPC_PORT: String(limiterPort) }, readyTimeoutMs: 90_000 }),
      ...names.map((name) => spawnProcess({ entry: join(ROOT, `services/${name}/src/main.ts`), env, readyTimeoutMs: 90_000 })),
    ]);
    const addr = (p: SpawnedProcess) => `127.0.0.1:${p.port}`;
    const routerEnv = { ...env, LIMITER_ADDR: `127.0.0.1:${limiterPort}`, BREAKER_ADDR: addr(peers[0]!), BUDGET_ADDR: addr(peers[1]!), CACHE_ADDR: addr(peers[2]!) };
    routers = await Promise.all(
      Array.from({ length: ROUTERS }, () => spawnProcess({ entry: join(ROOT, 'services/router/src/main.ts'), env: routerEnv, readyTimeoutMs: 90_000 })),
    );
    clients = routers.map((r) => createClient(RouterService, `127.0.0.1:${r.port}`, { defaultDeadlineMs: 15_000 }));
  }, 180_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    await Promise.all(routers.map((r) => r.stop()));
    await Promise.all([limiter?.stop(), ...peers.map((p) => p.stop())]);
    await sim?.stop();
    await Promise.all(servers.map((s) => s.stop()));
  }, 60_000);

  it('admits at most each router’s share while it is down, earns no upstream 429s, and is back to normal within a second of its return', async () => {
    // Two windows of shared limiting first; meanwhile the routers hear each other's heartbeats (every second).
    const load = startLoad(clients);
    await sleep(2 * WINDOW_MS);

    await limiter!.kill();
    const killedAt = Date.now();
    await sleep(2 * WINDOW_MS);
    limiter = await spawnProcess({ entry: join(ROOT, 'services/limiter/src/main.ts'), env: { ...env, GRPC_PORT: String(limiterPort) }, readyTimeoutMs: 90_000 });
    const backAt = Date.now();
    await sleep(2 * WINDOW_MS);
    const calls = await load.stop();

    const counters = (await sim!.counters())['lo-rpm-m'];
    const served = calls.filter((c) => c.ok);
    const local = served.filter((c) => c.degradedReason?.includes(LOCAL_SHARE_NOTE));
    const perRouter = Array.from({ length: ROUTERS }, (_, r) => {
      const mine = served.filter((c) => c.router === r);
      const lastLocal = Math.max(backAt, ...local.filter((c) => c.router === r).map((c) => c.doneAt));
      return {
        localServed: local.filter((c) => c.router === r).length,
        // Windows that start while the limiter is down, or hold admissions made from the share (the hand-over after it).
        maxPerWindow: maxAdmittedInWindow(mine, killedAt, lastLocal),
      };
    });
    // Admitted from the share, or refused because the share was spent.
    const onShare = (c: Call) => (c.ok ? !!c.degradedReason?.includes(LOCAL_SHARE_NOTE) : (c.message ?? '').includes('limiter unavailable'));
    const recovery = Array.from({ length: ROUTERS }, (_, r) => {
      const after = calls.filter((c) => c.router === r && c.sentAt >= backAt);
      return {
        /** The last call still decided by the share, after the limiter's return. */
        lastOnShareMs: Math.max(0, ...after.filter(onShare).map((c) => c.sentAt - backAt)),
        servedByLimiter: after.filter((c) => c.ok && !c.degradedReason).length,
      };
    });
    const outageS = ((backAt - killedAt) / 1000).toFixed(1);
    console.log(
      `offered ${calls.length} calls (${OFFERED_PER_WINDOW}/window, window ${WINDOW_MS} ms), served ${served.length}, from the routers' shares ${local.length}; ` +
        `limiter down ${outageS} s; per router most admissions in a window while it was down (share ${SHARE}): ${perRouter.map((p) => p.maxPerWindow).join(', ')}; ` +
        `upstream 429s ${counters?.byStatus['429'] ?? 0}; after the limiter's return the last call decided by the share was sent at ` +
        `${recovery.map((r) => `+${r.lastOnShareMs} ms`).join(', ')}, then served by the limiter ${recovery.map((r) => r.servedByLimiter).join(', ')}`,
    );

    // Every caller got a definite answer: served, or RESOURCE_EXHAUSTED with a retry-after.
    const wrong = calls.filter((c) => !c.ok && (c.code !== status.RESOURCE_EXHAUSTED || c.retryDelayMs === undefined));
    expect(wrong.slice(0, 3)).toEqual([]);
    // The provider was protected: (next to) no 429 — it answered everything the routers sent.
    expect(counters?.byStatus['429'] ?? 0).toBeLessThanOrEqual(1);
    expect(counters?.received).toBe(served.length);
    // While the limiter was down each router kept to its share...
    for (const p of perRouter) expect(p.maxPerWindow).toBeLessThanOrEqual(SHARE);
    // ...and used it: not by refusing everything (two full windows of outage at least).
    for (const p of perRouter) expect(p.localServed).toBeGreaterThanOrEqual(SHARE);
    // Back within a second of the limiter's return: nothing admitted from the share, nothing refused for want of the limiter.
    for (const r of recovery) {
      expect(r.lastOnShareMs).toBeLessThan(1_000);
      expect(r.servedByLimiter).toBeGreaterThan(0);
    }
  }, 120_000);
});
