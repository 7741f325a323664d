import { CacheService, LookupStatus } from '@switchyard/contracts';
import { type Client, createClient, parseGrpcError, status } from '@switchyard/grpc';
import { startRedis, type ServerHandle } from '@switchyard/testing';
import type { CacheConfig } from '../src/config';
import { start, type RunningCacheService } from '../src/start';

const silent = { info() {}, warn() {}, error() {} };

function configFor(redisUrl: string, over: Partial<CacheConfig> = {}): CacheConfig {
  return {
    grpcHost: '127.0.0.1',
    grpcPort: 0,
    metricsPort: 0,
    redisUrl,
    logLevel: 'silent',
    shutdownGraceMs: 2_000,
    internalToken: undefined,
    operatorToken: undefined,
    grpcMaxReceiveBytes: 4 * 1024 * 1024,
    defaultTtlMs: 86_400_000,
    defaultStaleTtlMs: 86_400_000,
    maxEntryBytes: 1024,
    waitPollMs: 10,
    redisCommandTimeoutMs: 250,
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

describe('cache service over gRPC with real Redis', () => {
  let redis: ServerHandle;
  let service: RunningCacheService;
  let client: Client<(typeof CacheService)['method']>;

  beforeAll(async () => {
    redis = await startRedis();
    service = await start(configFor(redis.url), { logger: silent });
    client = createClient(CacheService, `127.0.0.1:${service.port}`, { defaultDeadlineMs: 5_000 });
  }, 30_000);

  afterAll(async () => {
    client?.close();
    await service?.stop();
    await redis?.stop();
  });

  it('misses, stores with the default 24 h ttl + 24 h stale window, then hits with the same bytes', async () => {
    expect((await client.lookup({ tenant: 'acme', key: 'chat:aa' })).status).toBe(LookupStatus.MISS);
    const before = Date.now();
    const saved = await client.store({ tenant: 'acme', key: 'chat:aa', response: new Uint8Array([0, 1, 254, 255]) });
    const ttl = Number(saved.expiresAtUnixMs) - before;
    expect(ttl).toBeGreaterThanOrEqual(86_400_000 - 1_000);
    expect(ttl).toBeLessThanOrEqual(86_400_000 + 1_000);
    expect(saved.staleUntilUnixMs - saved.expiresAtUnixMs).toBe(86_400_000n);
    const hit = await client.lookup({ tenant: 'acme', key: 'chat:aa' });
    expect(hit).toMatchObject({ status: LookupStatus.HIT, coalesced: false, expiresAtUnixMs: saved.expiresAtUnixMs });
    expect([...hit.response]).toEqual([0, 1, 254, 255]);
  });

  it('keeps tenants apart: the same key under another tenant misses', async () => {
    await client.store({ tenant: 'acme', key: 'chat:iso', response: new Uint8Array([1]) });
    expect((await client.lookup({ tenant: 'globex', key: 'chat:iso' })).status).toBe(LookupStatus.MISS);
    expect((await client.invalidate({ tenant: 'globex', target: { case: 'prefix', value: '' } })).removed).toBe(0);
    expect((await client.lookup({ tenant: 'acme', key: 'chat:iso' })).status).toBe(LookupStatus.HIT);
  });

  it('serves a stale entry only when allowed, after its ttl', async () => {
    await client.store({ tenant: 'acme', key: 'chat:st', response: new Uint8Array([5]), ttlMs: 50, staleTtlMs: 60_000 });
    const deadline = Date.now() + 3_000;
    let s = LookupStatus.HIT;
    while (s === LookupStatus.HIT && Date.now() < deadline) s = (await client.lookup({ tenant: 'acme', key: 'chat:st' })).status;
    expect(s).toBe(LookupStatus.MISS);
    const stale = await client.lookup({ tenant: 'acme', key: 'chat:st', allowStale: true });
    expect(stale.status).toBe(LookupStatus.STALE);
    expect([...stale.response]).toEqual([5]);
    expect(stale.ageMs).toBeGreaterThanOrEqual(50);
  });

  it('coalesces concurrent misses: one leader calls upstream, a waiter receives its stored result', async () => {
    const leader = await client.lookup({ tenant: 'acme', key: 'chat:sf', leaseTtlMs: 5_000 });
    expect(leader.status).toBe(LookupStatus.LEADER);
    expect(leader.leaseId).not.toBe('');
    expect((await client.lookup({ tenant: 'acme', key: 'chat:sf', leaseTtlMs: 5_000 })).status).toBe(LookupStatus.WAIT);
    const waiting = client.lookup({ tenant: 'acme', key: 'chat:sf', leaseTtlMs: 5_000, maxWaitMs: 3_000 });
    await new Promise((r) => setTimeout(r, 100));
    await client.store({ tenant: 'acme', key: 'chat:sf', response: new Uint8Array([42]), leaseId: leader.leaseId });
    const got = await waiting;
    expect(got).toMatchObject({ status: LookupStatus.HIT, coalesced: true });
    expect([...got.response]).toEqual([42]);
    expect(service.stats.coalesced).toBeGreaterThanOrEqual(1);
  });

  it('a waiter takes over the lease as soon as the leader releases it', async () => {
    const leader = await client.lookup({ tenant: 'acme', key: 'chat:rl', leaseTtlMs: 30_000 });
    const waiting = client.lookup({ tenant: 'acme', key: 'chat:rl', leaseTtlMs: 30_000, maxWaitMs: 3_000 });
    await new Promise((r) => setTimeout(r, 50));
    expect(await client.releaseLease({ tenant: 'acme', key: 'chat:rl', leaseId: leader.leaseId })).toMatchObject({ released: true });
    const t0 = Date.now();
    const next = await waiting;
    expect(next.status).toBe(LookupStatus.LEADER);
    expect(next.leaseId).not.toBe(leader.leaseId);
    expect(Date.now() - t0).toBeLessThan(1_000);
  });

  it('answers WAIT when the leader does not finish within max_wait_ms', async () => {
    await client.lookup({ tenant: 'acme', key: 'chat:slow', leaseTtlMs: 30_000 });
    const t0 = Date.now();
    const r = await client.lookup({ tenant: 'acme', key: 'chat:slow', leaseTtlMs: 30_000, maxWaitMs: 150 });
    expect(r.status).toBe(LookupStatus.WAIT);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(100);
  });

  it('invalidates by key and by route prefix', async () => {
    for (const key of ['r1:a', 'r1:b', 'r2:a']) await client.store({ tenant: 'inv', key, response: new Uint8Array([1]) });
    expect((await client.invalidate({ tenant: 'inv', target: { case: 'key', value: 'r2:a' } })).removed).toBe(1);
    expect((await client.invalidate({ tenant: 'inv', target: { case: 'prefix', value: 'r1:' } })).removed).toBe(2);
  });

  it('rejects bad input with INVALID_ARGUMENT naming the field', async () => {
    await expectError(client.lookup({ tenant: '', key: 'k' }), status.INVALID_ARGUMENT, 'tenant');
    await expectError(client.lookup({ tenant: 'a b', key: 'k' }), status.INVALID_ARGUMENT, 'tenant');
    await expectError(client.lookup({ tenant: 'acme', key: '' }), status.INVALID_ARGUMENT, 'key');
    await expectError(client.lookup({ tenant: 'acme', key: 'x'.repeat(513) }), status.INVALID_ARGUMENT, 'key');
    await expectError(client.lookup({ tenant: 'acme', key: 'k', leaseTtlMs: 400_000 }), status.INVALID_ARGUMENT, 'lease_ttl_ms');
    await expectError(client.lookup({ tenant: 'acme', key: 'k', maxWaitMs: 70_000 }), status.INVALID_ARGUMENT, 'max_wait_ms');
    await expectError(client.store({ tenant: 'acme', key: 'k', response: new Uint8Array(2_000) }), status.INVALID_ARGUMENT, 'response');
    await expectError(client.releaseLease({ tenant: 'acme', key: 'k', leaseId: '' }), status.INVALID_ARGUMENT, 'lease_id');
    await expectError(client.invalidate({ tenant: 'acme' }), status.INVALID_ARGUMENT, 'target');
  });

  // Last: it kills this suite's Redis.
  it('answers UNAVAILABLE at once (bypass, counted) when Redis dies, instead of hanging', async () => {
    await redis.kill();
    const t0 = Date.now();
    await expectError(client.lookup({ tenant: 'acme', key: 'chat:aa' }), status.UNAVAILABLE);
    await expectError(client.store({ tenant: 'acme', key: 'chat:aa', response: new Uint8Array([1]) }), status.UNAVAILABLE);
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(service.stats.bypassed).toBe(2);
  });
});
