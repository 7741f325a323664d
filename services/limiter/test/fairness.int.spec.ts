import { type Cluster, depKey, envSeconds, gatewayYaml, percentile, startCluster, tenantKey } from './cluster';

/**
 * Two tenants share one deployment (RPM 600 = one request per 100 ms once its
 * burst is spent). Tenant "big" offers 30 requests/s, tenant "small" 3/s: 10×
 * the load, together 3.3× the capacity. Every Acquire may wait 3 s. The wait
 * queue is start-time fair, so small's requests start at the current virtual
 * time (the front of the line) instead of behind big's backlog: its waits stay
 * at about one or two refill intervals. FAIRNESS_SECONDS sets the duration.
 */
const SECONDS = envSeconds('FAIRNESS_SECONDS', 4);
const RPM = 600;
const MAX_WAIT_MS = 3_000;

describe('fair waiting: one tenant’s burst cannot starve another', () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await startCluster(gatewayYaml({ shared: `{ rpm: ${RPM} }` }, { big: '{}', small: '{}' }), 3);
  }, 30_000);
  afterAll(() => cluster?.stop());

  it(`keeps the small tenant's waits bounded while the big one offers 10× its load (${SECONDS} s)`, async () => {
    const { clients } = cluster;
    // Spend the burst so the deployment admits exactly its steady rate from here.
    expect((await clients[0]!.acquire({ keys: [depKey('shared')], requests: RPM })).granted).toBe(true);
    const results: Record<'big' | 'small', Array<{ granted: boolean; waitedMs: number }>> = { big: [], small: [] };
    const calls: Promise<void>[] = [];
    const fire = (tenant: 'big' | 'small', i: number) => {
      calls.push(
        clients[i % 3]!
          .acquire({ keys: [depKey('shared'), tenantKey(tenant)], maxWaitMs: MAX_WAIT_MS })
          .then((r) => void results[tenant].push({ granted: r.granted, waitedMs: r.waitedMs })),
      );
    };
    const started = Date.now();
    let n = 0;
    // Open loop: arrivals every 1/30 s; every 10th is small's.
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (Date.now() - started >= SECONDS * 1_000) {
          clearInterval(timer);
          resolve();
          return;
        }
        fire('big', n);
        if (n % 10 === 0) fire('small', n);
        n++;
      }, 1_000 / 30);
    });
    await Promise.all(calls);
    const elapsedS = (Date.now() - started) / 1_000;

    const small = results.small;
    const smallWaits = small.filter((r) => r.granted).map((r) => r.waitedMs);
    const bigGranted = results.big.filter((r) => r.granted).length;
    const figure = {
      seconds: SECONDS,
      offered: { big: results.big.length, small: small.length },
      granted: { big: bigGranted, small: smallWaits.length },
      smallWaitMs: { p50: percentile(smallWaits, 50), p99: percentile(smallWaits, 99), max: Math.max(...smallWaits) },
    };
    console.log(`fairness: ${JSON.stringify(figure)}`);
    // Every small request is served, each within a few refill intervals (100 ms each).
    expect(smallWaits).toHaveLength(small.length);
    expect(figure.smallWaitMs.max).toBeLessThanOrEqual(500);
    // The big tenant gets the rest of the capacity, and nobody gets more than the limit.
    expect(bigGranted).toBeGreaterThan(SECONDS * 10 * 0.5);
    expect(bigGranted + smallWaits.length).toBeLessThanOrEqual(Math.ceil(elapsedS * 10) + 1);
  }, 60_000);
});
