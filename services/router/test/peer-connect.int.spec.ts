import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { hashApiKey } from '@switchyard/config';
import { CHEAP_PRICE, simDeploymentYaml } from '@switchyard/testing';
import { parseGrpcError, status } from '@switchyard/grpc';
import { createPeers } from '../src/adapters/peers';
import { startStack, type Stack } from './stack';

/**
 * A router connects to its peers while it starts, not on its first call: the
 * first calls after a deploy would otherwise pay name resolution and the TCP
 * and HTTP/2 handshakes inside PEER_DEADLINE_MS, and on a loaded machine a
 * hard-capped tenant's first call was refused when the budget hop ran out.
 */
const yaml = (sim: string) => `
deployments:
  only: ${simDeploymentYaml(sim, 'gpt-4o-mini', { price: CHEAP_PRICE })}
routes:
  chat: { cacheable: false, candidates: [{ deployment: only }] }
tenants:
  t:
    apiKeys: [{ id: t-main, sha256: ${hashApiKey('peer-connect-key')} }]
`;

/** A TCP relay in front of a peer that counts the connections made through it. */
async function countingRelay(target: string, listenPort = 0): Promise<{ address: string; connections: () => number; close: () => Promise<void> }> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const sockets = new Set<Socket>();
  let connections = 0;
  const server: Server = createServer((inbound) => {
    connections++;
    const outbound = createConnection({ host, port });
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(listenPort, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: () => connections,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('peer connections at start', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack(yaml, { seed: 3 });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('opens a connection to each peer before any call is made', async () => {
    const env = stack.routerEnv;
    const relays = {
      LIMITER_ADDR: await countingRelay(env.LIMITER_ADDR!),
      BUDGET_ADDR: await countingRelay(env.BUDGET_ADDR!),
      CACHE_ADDR: await countingRelay(env.CACHE_ADDR!),
      BREAKER_ADDR: await countingRelay(env.BREAKER_ADDR!),
    };
    try {
      await stack.startRouter(Object.fromEntries(Object.entries(relays).map(([k, r]) => [k, r.address])));
      // No call is made: only start-up can have connected. Polled, not slept: the connections are asynchronous.
      const deadline = Date.now() + 10_000;
      const counts = () => Object.fromEntries(Object.entries(relays).map(([k, r]) => [k, r.connections()]));
      while (Object.values(counts()).some((n) => n === 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(counts()).toEqual({ LIMITER_ADDR: 1, BUDGET_ADDR: 1, CACHE_ADDR: 1, BREAKER_ADDR: 1 });
    } finally {
      await Promise.all(Object.values(relays).map((r) => r.close()));
    }
  }, 30_000);

  it('finds every peer again within a second of its return after an outage its calls kept running into', async () => {
    const env = stack.routerEnv;
    const names = ['LIMITER_ADDR', 'BUDGET_ADDR', 'CACHE_ADDR', 'BREAKER_ADDR'] as const;
    const relays = Object.fromEntries(await Promise.all(names.map(async (k) => [k, await countingRelay(env[k]!)] as const))) as Record<(typeof names)[number], Awaited<ReturnType<typeof countingRelay>>>;
    const peers = createPeers({
      limiterAddr: relays.LIMITER_ADDR.address,
      budgetAddr: relays.BUDGET_ADDR.address,
      cacheAddr: relays.CACHE_ADDR.address,
      breakerAddr: relays.BREAKER_ADDR.address,
      peerDeadlineMs: 300,
    });
    // Any answer but UNAVAILABLE came from the peer (without the internal token it is a refusal).
    const reached = async (k: (typeof names)[number]) => {
      const call =
        k === 'LIMITER_ADDR' ? peers.limiter.settle({}) : k === 'BUDGET_ADDR' ? peers.budget.getBudget({}) : k === 'CACHE_ADDR' ? peers.cache.lookup({}) : peers.breaker.getHealth({});
      return call.then(
        () => true,
        (err: unknown) => parseGrpcError(err).code !== status.UNAVAILABLE,
      );
    };
    try {
      for (const k of names) expect(await reached(k)).toBe(true);
      // The outage: every peer gone for 6 s while calls keep trying it (grpc-js would back off to about 4 s).
      await Promise.all(names.map((k) => relays[k].close()));
      const outageEnds = Date.now() + 6_000;
      while (Date.now() < outageEnds) {
        for (const k of names) expect(await reached(k)).toBe(false);
        await new Promise((r) => setTimeout(r, 200));
      }
      const back = await Promise.all(names.map((k) => countingRelay(env[k]!, Number(relays[k].address.split(':')[1]))));
      const returned = Date.now();
      const foundAfter = await Promise.all(
        names.map(async (k) => {
          while (!(await reached(k))) await new Promise((r) => setTimeout(r, 25));
          return Date.now() - returned;
        }),
      );
      await Promise.all(back.map((r) => r.close()));
      for (const ms of foundAfter) expect(ms).toBeLessThan(1_000);
    } finally {
      peers.close();
      await Promise.all(Object.values(relays).map((r) => r.close().catch(() => undefined)));
    }
  }, 30_000);
});
