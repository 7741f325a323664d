import { fromBinary } from '@bufbuild/protobuf';
import { ErrorClass, KeyKind, LimitKind, type QuotaEvent, QuotaEventKind, QuotaEventSchema, QuotaStateSchema } from '@switchyard/contracts';
import { type EventBus, KV_BUCKETS, createNatsEventBus, deploymentKey, subjects } from '@switchyard/nats';
import { createRedisClient, redisTime } from '@switchyard/redis';
import { type Cluster, depKey, envSeconds, gatewayYaml, startCluster } from './cluster';

/** LEARN_RETRY_AFTER_S: the upstream retry-after (the figure is 7 s; default 2 s keeps the suite fast). */
const RETRY_AFTER_S = envSeconds('LEARN_RETRY_AFTER_S', 2);

async function eventually<T>(probe: () => T | undefined | Promise<T | undefined>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('learning from the provider across 3 replicas', () => {
  let cluster: Cluster;
  let bus: EventBus;
  const events: QuotaEvent[] = [];
  beforeAll(async () => {
    cluster = await startCluster(gatewayYaml({ cooled: '{ rpm: 1000 }', tight: '{ rpm: 100, tpm: 100000 }', broke: '{ rpm: 100 }', small: '{ rpm: 5 }' }), 3);
    bus = await createNatsEventBus({ url: cluster.nats.url, name: 'limiter-learning-test' });
    await bus.subscribe(subjects.all('quota'), (msg) => void events.push(fromBinary(QuotaEventSchema, msg.data)));
  }, 30_000);
  afterAll(async () => {
    await bus?.close();
    await cluster?.stop();
  });

  it(`blocks a deployment on every replica for retry-after ${RETRY_AFTER_S} s (±100 ms), then RECOVERED and traffic resumes`, async () => {
    const [a, b, c] = cluster.clients as [typeof cluster.clients[0], typeof cluster.clients[0], typeof cluster.clients[0]];
    const redis = createRedisClient({ url: cluster.redis.url, name: 'learning-test' });
    try {
      const observed = await a.observe({
        deployment: { provider: 'openai', deployment: 'cooled' },
        httpStatus: 429,
        headers: { 'retry-after': String(RETRY_AFTER_S) },
        errorClass: ErrorClass.RATE_LIMITED,
      });
      const until = Number(observed.cooldownUntilUnixMs);
      // Poll the other two replicas every 10 ms until each admits; measure against Redis time.
      const firstGrant = async (client: typeof a) => {
        for (;;) {
          const r = await client.acquire({ keys: [depKey('cooled')] });
          const now = await redisTime(redis);
          if (r.granted) return now;
          expect(r.blockedLimit).toBe(LimitKind.COOLDOWN);
          await new Promise((res) => setTimeout(res, 10));
        }
      };
      const [tb, tc] = await Promise.all([firstGrant(b), firstGrant(c)]);
      console.log(`learning: retry-after ${RETRY_AFTER_S} s; replicas admitted again ${tb - until} ms and ${tc - until} ms after the cooldown's end`);
      for (const t of [tb, tc]) {
        expect(t - until).toBeGreaterThanOrEqual(0);
        expect(t - until).toBeLessThanOrEqual(100);
      }
      const started = await eventually(() => events.find((e) => e.key?.id === 'cooled' && e.kind === QuotaEventKind.COOLDOWN_STARTED), 'COOLDOWN_STARTED');
      expect(started).toMatchObject({ epoch: 1n, untilUnixMs: BigInt(until) });
      const recovered = await eventually(() => events.find((e) => e.key?.id === 'cooled' && e.kind === QuotaEventKind.RECOVERED), 'RECOVERED');
      // Exactly one replica won the recovery; it came on time.
      expect(recovered.epoch).toBe(2n);
      expect(Number(recovered.timeUnixMs) - until).toBeLessThanOrEqual(100);
      await new Promise((r) => setTimeout(r, 100));
      expect(events.filter((e) => e.key?.id === 'cooled' && e.kind === QuotaEventKind.RECOVERED)).toHaveLength(1);
      const kv = await bus.kv(KV_BUCKETS.quota);
      const state = fromBinary(QuotaStateSchema, (await kv.get(deploymentKey('openai', 'cooled')))!.value);
      expect(state).toMatchObject({ epoch: 2n, cooldownUntilUnixMs: 0n });
    } finally {
      await redis.quit();
    }
  }, 30_000);

  it('tightens remaining quota cluster-wide from x-ratelimit-remaining headers', async () => {
    const [a, b] = cluster.clients;
    await a!.observe({
      deployment: { provider: 'openai', deployment: 'tight' },
      httpStatus: 200,
      headers: { 'x-ratelimit-remaining-requests': '3', 'x-ratelimit-limit-requests': '125', 'x-ratelimit-reset-requests': '2s' },
    });
    const results = await Promise.all(Array.from({ length: 10 }, () => b!.acquire({ keys: [depKey('tight')] })));
    expect(results.filter((r) => r.granted)).toHaveLength(3);
    expect((await a!.getQuota({ key: depKey('tight') })).quota?.limits[0]).toMatchObject({ limit: 100, remaining: 0 });
  });

  it('publishes EXHAUSTED when a deployment limit blocks, with the epoch, and keeps sy_quota current', async () => {
    const [a, b] = cluster.clients;
    await Promise.all(Array.from({ length: 8 }, (_, i) => [a, b][i % 2]!.acquire({ keys: [depKey('small')] })));
    const ev = await eventually(() => events.find((e) => e.key?.id === 'small' && e.kind === QuotaEventKind.EXHAUSTED), 'EXHAUSTED');
    expect(ev).toMatchObject({ limit: LimitKind.RPM, epoch: 1n, deployment: { provider: 'openai', deployment: 'small' } });
    expect(Number(ev.untilUnixMs)).toBeGreaterThan(Number(ev.timeUnixMs));
    const kv = await bus.kv(KV_BUCKETS.quota);
    const state = fromBinary(QuotaStateSchema, (await kv.get(deploymentKey('openai', 'small')))!.value);
    expect(state.epoch).toBe(1n);
    expect(state.limits[0]).toMatchObject({ kind: LimitKind.RPM, remaining: 0 });
    await new Promise((r) => setTimeout(r, 100));
    expect(events.filter((e) => e.key?.id === 'small' && e.kind === QuotaEventKind.EXHAUSTED)).toHaveLength(1);
  });

  it('keeps a deployment unavailable after insufficient_quota until ClearUnavailable', async () => {
    const [a, b, c] = cluster.clients;
    await a!.observe({ deployment: { provider: 'openai', deployment: 'broke' }, httpStatus: 429, errorClass: ErrorClass.QUOTA_EXHAUSTED });
    expect(await b!.acquire({ keys: [depKey('broke')] })).toMatchObject({ granted: false, blockedLimit: LimitKind.UNAVAILABLE });
    expect(await c!.clearUnavailable({ deployment: { provider: 'openai', deployment: 'broke' } })).toMatchObject({ cleared: true, epoch: 2n });
    expect((await b!.acquire({ keys: [depKey('broke')] })).granted).toBe(true);
    const kinds = await eventually(() => {
      const k = events.filter((e) => e.key?.id === 'broke').map((e) => e.kind);
      return k.length >= 2 ? k : undefined;
    }, 'UNAVAILABLE then RECOVERED');
    expect(kinds).toEqual([QuotaEventKind.UNAVAILABLE, QuotaEventKind.RECOVERED]);
    expect((await a!.getQuota({ key: { kind: KeyKind.DEPLOYMENT, id: 'broke' } })).quota).toMatchObject({ unavailable: false, epoch: 2n });
  });
});
