import { fromBinary } from '@bufbuild/protobuf';
import { LimitKind, type QuotaEvent, QuotaEventKind, QuotaEventSchema } from '@switchyard/contracts';
import { parseGrpcError, status } from '@switchyard/grpc';
import { type EventBus, createNatsEventBus, subjects } from '@switchyard/nats';
import { dayBucketMs } from '../src/domain/day-window';
import { type Cluster, type LimiterClient, depKey, envSeconds, gatewayYaml, startCluster } from './cluster';
import { type Admission, offer, windowCounts } from './windows';

/**
 * Tokens per day end to end: 2 limiter replicas via the production start() on
 * one real Redis and NATS, the day time-scaled with LIMITER_DAY_WINDOW_MS
 * (TPD_DAY_MS, default 6 s, in 1440 buckets like a real day's minutes) for
 * TPD_DAYS days. Admission instants come from the limiter (granted_at, Redis TIME).
 */
const DAY_MS = envSeconds('TPD_DAY_MS', 6_000);
const DAYS = envSeconds('TPD_DAYS', 3);
const BUCKET_MS = dayBucketMs(DAY_MS);
const TPD = 10_000;
const SMALL_TPD = 1_000;

describe(`tokens per day (day ${DAY_MS} ms in ${BUCKET_MS} ms buckets, 2 replicas)`, () => {
  let cluster: Cluster;
  let clients: LimiterClient[];
  let bus: EventBus;
  const events: QuotaEvent[] = [];

  beforeAll(async () => {
    cluster = await startCluster(gatewayYaml({ daily: `{ tpd: ${TPD} }`, small: `{ tpd: ${SMALL_TPD}, rpm: 1000 }` }), 2, {
      LIMITER_DAY_WINDOW_MS: String(DAY_MS),
      // A slow reply on a loaded runner must not switch a replica to its local
      // share: this suite proves shared accounting (redis-outage.int.spec.ts the fallback).
      LIMITER_REDIS_TIMEOUT_MS: '5000',
    });
    clients = cluster.clients;
    bus = await createNatsEventBus({ url: cluster.nats.url, name: 'tpd-int-test' });
    await bus.subscribe(subjects.all('quota'), (msg) => {
      events.push(fromBinary(QuotaEventSchema, msg.data));
    });
    await Promise.all(clients.map((c) => c.getQuota({ key: depKey('daily') })));
  }, 30_000);

  afterAll(async () => {
    await bus?.close();
    await cluster?.stop();
  });

  async function eventFor(deployment: string, kind: QuotaEventKind, timeoutMs: number): Promise<QuotaEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = events.find((e) => e.deployment?.deployment === deployment && e.kind === kind);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no ${QuotaEventKind[kind]} event for ${deployment}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('rejects tokens above the whole tpd as INVALID_ARGUMENT naming tokens', async () => {
    const err = parseGrpcError(await clients[0]!.acquire({ keys: [depKey('small')], tokens: SMALL_TPD + 1 }).then(() => undefined, (e: unknown) => e));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.message).toMatch(/exceeds the whole tpd limit 1000/);
    expect(err.details.badRequest?.[0]?.field).toBe('tokens');
  });

  it('a spent day: TPD denial with its retry time, EXHAUSTED naming TPD, GetQuota usage, RECOVERED and admission a day later', async () => {
    const [a, b] = clients;
    const granted = await a!.acquire({ keys: [depKey('small')], tokens: SMALL_TPD });
    expect(granted.granted).toBe(true);
    const at = Number(granted.grantedAtUnixMs);
    const backAt = (Math.floor(at / BUCKET_MS) + 1) * BUCKET_MS + DAY_MS;
    const denied = await b!.acquire({ keys: [depKey('small')], tokens: 1 });
    expect(denied).toMatchObject({ granted: false, blockedLimit: LimitKind.TPD, blockedKey: { id: 'small' }, retryAtUnixMs: BigInt(backAt) });

    const exhausted = await eventFor('small', QuotaEventKind.EXHAUSTED, 5_000);
    expect(exhausted).toMatchObject({ limit: LimitKind.TPD, untilUnixMs: BigInt(backAt) });
    const quota = (await a!.getQuota({ key: depKey('small') })).quota!;
    expect(quota.limits.find((l) => l.kind === LimitKind.TPD)).toMatchObject({ limit: SMALL_TPD, used: SMALL_TPD, remaining: 0, resetsAtUnixMs: BigInt(backAt) });
    // The minute limits saw the same call: rpm 1 of 1000.
    expect(quota.limits.find((l) => l.kind === LimitKind.RPM)).toMatchObject({ used: 1 });

    const recovered = await eventFor('small', QuotaEventKind.RECOVERED, DAY_MS + 5_000);
    expect(Number(recovered.timeUnixMs)).toBeGreaterThanOrEqual(backAt);
    const again = await b!.acquire({ keys: [depKey('small')], tokens: SMALL_TPD });
    expect(again.granted).toBe(true);
    expect(Number(again.grantedAtUnixMs)).toBeGreaterThanOrEqual(backAt);
  }, DAY_MS + 30_000);

  it('offered 3× the limit with reserve → settle: the actual tokens of every sliding day are ≤ the limit, and ≥ 90 % of it (per day on real-length days, over the run when time-scaled)', async () => {
    const admissions: Admission[] = [];
    const estimate = 100;
    let n = 0;
    let denied = 0;
    /** Grant → settle answered, ms: the estimate stays charged that long. */
    const held: number[] = [];
    // Actual usage 50..100 tokens of a 100-token estimate, settled 20 ms after the
    // grant. The floor is set by what an estimate holds until its settle: in a
    // 6 s day a 20 ms call is a 5-minute call of a real day, and a loaded runner
    // stretches it (simulated: holds of 25 / 300 / 600 ms leave minima of 97.5 /
    // 94 / 91 % with 50..100, 96.5 / 91 / 86 % with 20..100).
    const { ended } = await offer(clients, (3 * TPD) / estimate, DAYS, DAY_MS, async (c) => {
      const actual = 50 + ((n++ * 37) % 51);
      const r = await c.acquire({ keys: [depKey('daily')], tokens: estimate });
      if (!r.granted) {
        expect(r.blockedLimit).toBe(LimitKind.TPD);
        denied++;
        return;
      }
      admissions.push({ at: Number(r.grantedAtUnixMs), units: actual });
      await new Promise((res) => setTimeout(res, 20));
      await c.settle({ reservationId: r.reservationId, actualTokens: actual });
      held.push(Date.now() - Number(r.grantedAtUnixMs));
    });
    const first = Math.min(...admissions.map((x) => x.at));
    const { max, min } = windowCounts(admissions, first, ended, DAY_MS);
    const total = admissions.reduce((s, x) => s + x.units, 0);
    held.sort((x, y) => x - y);
    console.log(`tpd exactness: ${JSON.stringify({ dayMs: DAY_MS, bucketMs: BUCKET_MS, days: DAYS, limit: TPD, admitted: admissions.length, denied, tokens: total, maxTokensInDay: max, minTokensInDay: min, heldP50: held[held.length >> 1], heldP90: held[Math.floor(held.length * 0.9)] })}`);
    expect(denied).toBeGreaterThan(0);
    expect(max).toBeLessThanOrEqual(TPD);
    // As in the exactness test: the every-day floor holds on real-length days; in
    // a time-scaled day a stall of the shared test process (a 20 ms hold is a
    // 5-minute call of a real day; a loaded CI runner measured one day at 84 %)
    // decides a day's minimum, so short runs hold the floor over the whole run.
    if (DAY_MS >= 30_000) expect(min).toBeGreaterThanOrEqual(0.9 * TPD);
    else expect(total).toBeGreaterThanOrEqual(0.9 * TPD * DAYS);
  }, DAY_MS * DAYS + 60_000);
});
