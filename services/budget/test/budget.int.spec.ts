import { fromBinary } from '@bufbuild/protobuf';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { hashApiKey, parseConfig } from '@switchyard/config';
import { BudgetEventSchema, BudgetPeriod, BudgetService, CapScope, type BudgetEvent } from '@switchyard/contracts';
import { type Client, createClient, parseGrpcError, status } from '@switchyard/grpc';
import { startNats, startRedis, type ServerHandle } from '@switchyard/testing';
import type { BudgetConfig } from '../src/config';
import { start, type RunningBudgetService } from '../src/start';

const USD = 1_000_000n;
const silent = { info() {}, warn() {}, error() {} };

const gateway = parseConfig(`
deployments:
  d1:
    provider: openai
    baseUrl: http://127.0.0.1:9/v1
    model: gpt-4o
    apiKey: env:OPENAI_API_KEY
    price: { inputPerMillionUsd: 1, outputPerMillionUsd: 1 }
routes:
  chat: { candidates: [{ deployment: d1 }] }
tenants:
  acme:
    apiKeys: [{ id: acme-1, sha256: ${hashApiKey('k1')} }]
    budgets: [{ period: day, limitUsd: 10 }, { period: month, limitUsd: 1000, hard: false }]
  solo:
    apiKeys: [{ id: solo-1, sha256: ${hashApiKey('k2')} }]
    budgets: [{ period: hour, limitUsd: 2, hard: false }]
`);

function configFor(redisUrl: string, natsUrl: string, over: Partial<BudgetConfig> = {}): BudgetConfig {
  return {
    grpcHost: '127.0.0.1',
    grpcPort: 0,
    metricsPort: 0,
    natsUrl,
    redisUrl,
    logLevel: 'silent',
    shutdownGraceMs: 2_000,
    internalToken: undefined,
    operatorToken: undefined,
    grpcMaxReceiveBytes: 4 * 1024 * 1024,
    reservationTtlMs: 120_000,
    redisCommandTimeoutMs: 300,
    onStoreFailure: 'closed',
    switchyard: gateway,
    ...over,
  };
}

async function expectError(call: Promise<unknown>, code: status, field?: string) {
  const err = await call.then(
    () => undefined,
    (e: unknown) => parseGrpcError(e),
  );
  expect(err?.code).toBe(code);
  if (field) {
    expect(err!.message).toContain(field);
    expect(err!.details.badRequest?.[0]?.field).toBe(field);
  }
}

describe('budget service over gRPC with real Redis and NATS', () => {
  let redis: ServerHandle;
  let nats: ServerHandle;
  let service: RunningBudgetService;
  let client: Client<(typeof BudgetService)['method']>;
  let watcher: NatsConnection;
  const events: BudgetEvent[] = [];

  beforeAll(async () => {
    [redis, nats] = await Promise.all([startRedis(), startNats()]);
    service = await start(configFor(redis.url, nats.url), { logger: silent });
    client = createClient(BudgetService, `127.0.0.1:${service.port}`, { defaultDeadlineMs: 5_000 });
    watcher = await connect({ servers: nats.url });
    watcher.subscribe('switchyard.budget.>', {
      callback: (_e, msg) => {
        events.push(fromBinary(BudgetEventSchema, msg.data));
      },
    });
    await watcher.flush();
  }, 30_000);

  afterAll(async () => {
    client?.close();
    await watcher?.close();
    await service?.stop();
    await Promise.all([redis?.stop(), nats?.stop()]);
  });

  it('reserves, commits the actual cost and reports the spend per cap', async () => {
    const r = await client.reserve({ tenant: 'acme', amountMicros: 2n * USD });
    expect(r.granted).toBe(true);
    expect(r.reservationId).toMatch(/^acme\./);
    const held = await client.getBudget({ tenant: 'acme' });
    expect(held.caps.map((c) => [c.cap?.period, c.cap?.hard, c.reservedMicros])).toEqual([
      [BudgetPeriod.DAY, true, 2n * USD],
      [BudgetPeriod.MONTH, false, 2n * USD],
    ]);
    const c = await client.commit({ reservationId: r.reservationId, actualMicros: USD });
    expect(c).toMatchObject({ found: true, returnedMicros: USD });
    const again = await client.commit({ reservationId: r.reservationId, actualMicros: USD });
    expect(again).toMatchObject({ found: true, returnedMicros: USD });
    const [day] = (await client.getBudget({ tenant: 'acme' })).caps;
    expect(day).toMatchObject({ limitMicros: 10n * USD, spentMicros: USD, reservedMicros: 0n, remainingMicros: 9n * USD });
    expect(day!.cap).toMatchObject({ scope: CapScope.TENANT, subject: 'acme', tenant: 'acme' });
    expect(Number(day!.resetsAtUnixMs - day!.periodStartUnixMs)).toBe(86_400_000);
  });

  it('denies a reservation past the hard cap with the cap, its numbers and when it resets', async () => {
    const denied = await client.reserve({ tenant: 'acme', amountMicros: 10n * USD });
    expect(denied).toMatchObject({ granted: false, reservationId: '', limitMicros: 10n * USD, spentMicros: USD, failClosed: false });
    expect(denied.deniedCap).toMatchObject({ period: BudgetPeriod.DAY, hard: true, tenant: 'acme' });
    const tomorrow = new Date();
    tomorrow.setUTCHours(24, 0, 0, 0);
    expect(Number(denied.resetsAtUnixMs)).toBe(tomorrow.getTime());
  });

  it('releases a reservation once', async () => {
    const r = await client.reserve({ tenant: 'acme', amountMicros: USD });
    expect(await client.release({ reservationId: r.reservationId })).toMatchObject({ released: true });
    expect(await client.release({ reservationId: r.reservationId })).toMatchObject({ released: false });
  });

  it('publishes a BudgetEvent on switchyard.budget.<tenant> once per threshold crossed', async () => {
    const spend = async (micros: bigint) => {
      const r = await client.reserve({ tenant: 'solo', amountMicros: micros });
      await client.commit({ reservationId: r.reservationId, actualMicros: micros });
    };
    await spend(USD); // 50 %
    await spend(USD / 2n); // 75 %
    await spend(USD); // 125 %: a soft cap overspends and alerts 80 and 100
    const deadline = Date.now() + 5_000;
    while (events.filter((e) => e.tenant === 'solo').length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const solo = events.filter((e) => e.tenant === 'solo');
    expect(solo.map((e) => [e.thresholdPercent, e.epoch, e.spentMicros])).toEqual([
      [50, 1n, USD],
      [80, 2n, 25n * USD / 10n],
      [100, 3n, 25n * USD / 10n],
    ]);
    expect(solo[0]!.cap).toMatchObject({ period: BudgetPeriod.HOUR, hard: false });
    expect(solo[0]!.limitMicros).toBe(2n * USD);
  });

  it('rejects bad input with INVALID_ARGUMENT naming the field', async () => {
    await expectError(client.reserve({ tenant: 'nobody', amountMicros: 1n }), status.INVALID_ARGUMENT, 'tenant');
    await expectError(client.reserve({ tenant: '', amountMicros: 1n }), status.INVALID_ARGUMENT, 'tenant');
    await expectError(client.reserve({ tenant: 'acme', amountMicros: -1n }), status.INVALID_ARGUMENT, 'amount_micros');
    await expectError(client.reserve({ tenant: 'acme', amountMicros: 1n, ttlMs: 7_200_000 }), status.INVALID_ARGUMENT, 'ttl_ms');
    await expectError(client.commit({ reservationId: 'nonsense', actualMicros: 1n }), status.INVALID_ARGUMENT, 'reservation_id');
    await expectError(client.commit({ reservationId: 'acme.AAAAAAAAAAAA', actualMicros: -5n }), status.INVALID_ARGUMENT, 'actual_micros');
    await expectError(client.release({ reservationId: '' }), status.INVALID_ARGUMENT, 'reservation_id');
    await expectError(client.getBudget({ tenant: 'nobody' }), status.INVALID_ARGUMENT, 'tenant');
    await expectError(client.release({ reservationId: 'gone.AAAAAAAAAAAA' }), status.NOT_FOUND);
  });

  it('with an internal token set, refuses callers without it', async () => {
    const guarded = await start(configFor(redis.url, nats.url, { internalToken: 's3cret' }), { logger: silent });
    const c = createClient(BudgetService, `127.0.0.1:${guarded.port}`, { defaultDeadlineMs: 5_000 });
    try {
      await expectError(c.getBudget({ tenant: 'acme' }), status.UNAUTHENTICATED);
      const ok = await c.getBudget({ tenant: 'acme' }, { metadata: { 'x-switchyard-internal-token': 's3cret' } });
      expect(ok.caps).toHaveLength(2);
    } finally {
      c.close();
      await guarded.stop();
    }
  });

  // Last: it kills this suite's Redis.
  it('fails closed for hard caps (and open for soft-only tenants) quickly when Redis dies', async () => {
    await redis.kill();
    const t0 = Date.now();
    const acme = await client.reserve({ tenant: 'acme', amountMicros: 1n });
    expect(acme).toMatchObject({ granted: false, failClosed: true });
    const solo = await client.reserve({ tenant: 'solo', amountMicros: 1n });
    expect(solo).toMatchObject({ granted: true, failOpen: true });
    expect(Date.now() - t0).toBeLessThan(2_000);
    await expectError(client.getBudget({ tenant: 'acme' }), status.UNAVAILABLE);
    expect(service.stats.failClosed).toBeGreaterThanOrEqual(1);
  });
});
