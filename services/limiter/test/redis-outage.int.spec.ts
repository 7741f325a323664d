import { type Cluster, depKey, envSeconds, gatewayYaml, startCluster } from './cluster';

/**
 * Redis killed mid-load and restarted. Each replica then limits from its share
 * (RPM 60 ÷ 3 live replicas = 20) and says so (local_fallback); nothing
 * crashes, the cluster admits no more than the shares, and shared accounting
 * resumes once Redis is back. OUTAGE_SECONDS sets the outage length.
 */
const OUTAGE_S = envSeconds('OUTAGE_SECONDS', 2);
const RPM = 60;

describe('Redis outage: local shares, then shared accounting again', () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await startCluster(gatewayYaml({ d: `{ rpm: ${RPM} }` }), 3, {
      LIMITER_HEARTBEAT_MS: '100',
      LIMITER_REDIS_TIMEOUT_MS: '200',
      LIMITER_FALLBACK_RETRY_MS: '100',
    });
    // Let every replica hear the other two.
    await new Promise((r) => setTimeout(r, 400));
  }, 30_000);
  afterAll(() => cluster?.stop());

  it(`falls back to limit ÷ replicas during a ${OUTAGE_S} s outage, without crashing, and resumes shared accounting`, async () => {
    type Sample = { phase: 'before' | 'outage' | 'after'; granted: boolean; local: boolean; error?: string };
    const samples: Sample[] = [];
    let phase: Sample['phase'] = 'before';
    let running = true;
    // 3 replicas × one Acquire every 20 ms: far above RPM 60.
    const loops = cluster.clients.map(async (client) => {
      while (running) {
        const p = phase;
        try {
          const r = await client.acquire({ keys: [depKey('d')] }, { deadlineMs: 2_000 });
          samples.push({ phase: p, granted: r.granted, local: r.localFallback });
        } catch (err) {
          samples.push({ phase: p, granted: false, local: false, error: (err as Error).message });
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    });
    await new Promise((r) => setTimeout(r, 500));
    phase = 'outage';
    await cluster.redis.kill();
    await new Promise((r) => setTimeout(r, OUTAGE_S * 1_000));
    await cluster.redis.restart();
    phase = 'after';
    // Until every replica has seen Redis again (retry every 100 ms, reconnect backoff ≤ 2 s).
    const backBy = Date.now() + 5_000;
    while (Date.now() < backBy) {
      await new Promise((r) => setTimeout(r, 200));
      const recent = samples.filter((s) => s.phase === 'after').slice(-9);
      if (recent.length === 9 && recent.every((s) => !s.local)) break;
    }
    running = false;
    await Promise.all(loops);

    const errors = samples.filter((s) => s.error);
    const outage = samples.filter((s) => s.phase === 'outage');
    const outageGranted = outage.filter((s) => s.granted).length;
    const after = samples.filter((s) => s.phase === 'after');
    const share = Math.floor(RPM / 3);
    const bound = 3 * (share + Math.ceil((OUTAGE_S * share) / 60));
    console.log(
      `redis outage: ${JSON.stringify({
        outageSeconds: OUTAGE_S,
        offeredDuringOutage: outage.length,
        admittedDuringOutage: outageGranted,
        bound,
        localAnswers: outage.filter((s) => s.local).length,
        errors: errors.length,
        sharedAgainAfter: after.findIndex((s) => !s.local),
      })}`,
    );
    expect(errors).toEqual([]);
    // Decided locally (after at most the first in-flight call per replica) and bounded by the shares.
    expect(outage.filter((s) => !s.local).length).toBeLessThanOrEqual(3);
    expect(outageGranted).toBeLessThanOrEqual(bound);
    expect(outageGranted).toBeGreaterThanOrEqual(3 * share - 3);
    // Shared accounting again: the last answers came from Redis, and it counts them.
    expect(after.slice(-3).every((s) => !s.local)).toBe(true);
    const quota = await cluster.clients[0]!.getQuota({ key: depKey('d') });
    expect(quota.quota?.localFallback).toBe(false);
    expect(Number(quota.quota?.admittedRequests)).toBeGreaterThan(0);
  }, 60_000);
});
