import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import {
  ErrorClass,
  KeyKind,
  LimiterService,
  LimitKind,
  type QuotaEvent,
  QuotaEventKind,
  QuotaEventSchema,
  QuotaStateSchema,
} from '@switchyard/contracts';
import { createClient, parseGrpcError, status } from '@switchyard/grpc';
import { type EventBus, KV_BUCKETS, createNatsEventBus, deploymentKey, subjects } from '@switchyard/nats';
import { type ServerHandle, startNats, startRedis } from '@switchyard/testing';
import { type LimiterService as RunningLimiter, loadConfig, start } from '../src';

const CONFIG = `
deployments:
  burst:
    provider: openai
    baseUrl: http://127.0.0.1:9/v1
    model: gpt-4o
    apiKey: env:OPENAI_API_KEY
    limits: { rpm: 100 }
    price: { inputPerMillionUsd: 1, outputPerMillionUsd: 1 }
  tokens:
    provider: openai
    baseUrl: http://127.0.0.1:9/v1
    model: gpt-4o
    apiKey: env:OPENAI_API_KEY
    limits: { tpm: 10000 }
    price: { inputPerMillionUsd: 1, outputPerMillionUsd: 1 }
  cooled:
    provider: anthropic
    baseUrl: http://127.0.0.1:9
    model: claude-sonnet-4-5
    apiKey: env:ANTHROPIC_API_KEY
    limits: { rpm: 1000 }
    price: { inputPerMillionUsd: 1, outputPerMillionUsd: 1 }
  exhausted:
    provider: openai
    baseUrl: http://127.0.0.1:9/v1
    model: gpt-4o
    apiKey: env:OPENAI_API_KEY
    price: { inputPerMillionUsd: 1, outputPerMillionUsd: 1 }
  single:
    provider: openai
    baseUrl: http://127.0.0.1:9/v1
    model: gpt-4o
    apiKey: env:OPENAI_API_KEY
    limits: { concurrency: 1 }
    price: { inputPerMillionUsd: 1, outputPerMillionUsd: 1 }
routes: {}
tenants:
  acme:
    apiKeys: [{ id: acme-1, sha256: "${'a'.repeat(64)}" }]
  small:
    apiKeys: [{ id: small-1, sha256: "${'b'.repeat(64)}" }]
    limits: { rpm: 2 }
defaults:
  headroom: 1.0
`;

const dep = (id: string) => ({ kind: KeyKind.DEPLOYMENT, id });
const tenant = (id: string) => ({ kind: KeyKind.TENANT, id });

async function eventually<T>(probe: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('limiter service: 3 replicas on one Redis, real NATS, real gRPC', () => {
  let nats: ServerHandle;
  let redis: ServerHandle;
  let dir: string;
  let bus: EventBus;
  const replicas: RunningLimiter[] = [];
  const clients: Array<ReturnType<typeof createClient<typeof LimiterService.method>>> = [];
  const events: Array<{ subject: string; event: QuotaEvent }> = [];

  beforeAll(async () => {
    [nats, redis] = await Promise.all([startNats({ jetstream: true }), startRedis()]);
    dir = mkdtempSync(join(tmpdir(), 'limiter-int-'));
    writeFileSync(join(dir, 'switchyard.yaml'), CONFIG);
    const config = loadConfig({
      SWITCHYARD_CONFIG: join(dir, 'switchyard.yaml'),
      NATS_URL: nats.url,
      REDIS_URL: redis.url,
      GRPC_HOST: '127.0.0.1',
      GRPC_PORT: '0',
      LOG_LEVEL: 'silent',
      // 300 Acquires at once through three replicas in this one process: on a
      // loaded runner (another limiter suite in the other jest worker) a reply
      // can take longer than the 500 ms default, which switches a replica to
      // its local share. This suite tests shared accounting; the fallback is
      // redis-outage.int.spec.ts's.
      LIMITER_REDIS_TIMEOUT_MS: '5000',
    });
    for (let i = 0; i < 3; i++) replicas.push(await start(config));
    for (const r of replicas) clients.push(createClient(LimiterService, `127.0.0.1:${r.port}`, { defaultDeadlineMs: 5_000 }));
    // Warm every channel and the script cache.
    await Promise.all(clients.map((c) => c.acquire({ keys: [tenant('acme')] })));
    bus = await createNatsEventBus({ url: nats.url, name: 'limiter-int-test' });
    await bus.subscribe(subjects.all('quota'), (msg) => {
      events.push({ subject: msg.subject, event: fromBinary(QuotaEventSchema, msg.data) });
    });
  }, 30_000);

  afterAll(async () => {
    for (const c of clients) c.close();
    await Promise.all(replicas.map((r) => r.stop()));
    await bus?.close();
    await Promise.all([nats?.stop(), redis?.stop()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('grants exactly 100 of 300 concurrent Acquires against RPM 100 across three replicas', async () => {
    const startedAt = Date.now();
    const results = await Promise.all(
      Array.from({ length: 300 }, (_, i) => clients[i % 3]!.acquire({ keys: [dep('burst'), tenant('acme')], tokens: 10 })),
    );
    const granted = results.filter((r) => r.granted);
    // A sliding 60 s window: exactly the limit, however long the burst takes.
    expect(granted).toHaveLength(100);
    expect(new Set(granted.map((r) => r.reservationId)).size).toBe(100);
    for (const r of results.filter((x) => !x.granted)) {
      expect(r.blockedKey).toMatchObject({ kind: KeyKind.DEPLOYMENT, id: 'burst' });
      expect(r.blockedLimit).toBe(LimitKind.RPM);
      // The first slot frees when the burst's first admission leaves the window.
      expect(r.retryAfterMs).toBeGreaterThan(60_000 - 5_000);
      expect(r.retryAfterMs).toBeLessThanOrEqual(60_000);
      expect(Number(r.retryAtUnixMs)).toBeGreaterThan(startedAt + 55_000);
    }
    const quota = await clients[1]!.getQuota({ key: dep('burst') });
    expect(quota.quota?.limits[0]).toMatchObject({ kind: LimitKind.RPM, limit: 100 });
    // Every grant, on whichever replica, was counted once on the shared key; the
    // denied acquires were not.
    expect(quota.quota?.admittedRequests).toBe(BigInt(granted.length));
    // The tenant key of the same grants, plus the three warm-up acquires.
    expect((await clients[2]!.getQuota({ key: tenant('acme') })).quota?.admittedRequests).toBe(BigInt(granted.length + 3));
    expect(quota.quota!.limits[0]!.remaining).toBe(0);
  });

  it('settles actual tokens on any replica, giving the unused estimate back', async () => {
    const first = await clients[0]!.acquire({ keys: [dep('tokens')], tokens: 8_000 });
    expect(first.granted).toBe(true);
    const denied = await clients[1]!.acquire({ keys: [dep('tokens')], tokens: 5_000 });
    expect(denied).toMatchObject({ granted: false, blockedLimit: LimitKind.TPM });
    const settled = await clients[2]!.settle({ reservationId: first.reservationId, actualTokens: 1_000 });
    expect(settled).toMatchObject({ found: true, tokensReturned: 7_000, tokensOverrun: 0 });
    expect((await clients[1]!.acquire({ keys: [dep('tokens')], tokens: 5_000 })).granted).toBe(true);
    expect(await clients[0]!.settle({ reservationId: first.reservationId, actualTokens: 1_000 })).toMatchObject({ found: false });
  });

  it('waits inside Acquire up to max_wait_ms when capacity returns in time', async () => {
    const holder = await clients[0]!.acquire({ keys: [dep('single')], reservationTtlMs: 300 });
    expect(holder.granted).toBe(true);
    const immediate = await clients[1]!.acquire({ keys: [dep('single')] });
    expect(immediate).toMatchObject({ granted: false, blockedLimit: LimitKind.CONCURRENCY });
    const waited = await clients[1]!.acquire({ keys: [dep('single')], maxWaitMs: 2_000 });
    expect(waited.granted).toBe(true);
    expect(waited.waitedMs).toBeGreaterThanOrEqual(150);
    expect(waited.waitedMs).toBeLessThan(2_000);
  });

  it('turns an upstream 429 with retry-after into a cluster-wide cooldown, a quota event and a KV entry', async () => {
    const before = Date.now();
    const observed = await clients[0]!.observe({
      deployment: { provider: 'anthropic', deployment: 'cooled', model: 'claude-sonnet-4-5' },
      httpStatus: 429,
      headers: { 'retry-after': '2' },
      errorClass: ErrorClass.RATE_LIMITED,
    });
    const until = Number(observed.cooldownUntilUnixMs);
    expect(until).toBeGreaterThanOrEqual(before + 2_000 - 50);
    expect(until).toBeLessThanOrEqual(Date.now() + 2_000 + 50);

    const event = await eventually(() => events.find((e) => e.subject === subjects.quota('anthropic', 'cooled')), 'quota event');
    expect(event.event).toMatchObject({
      kind: QuotaEventKind.COOLDOWN_STARTED,
      limit: LimitKind.COOLDOWN,
      untilUnixMs: BigInt(until),
      epoch: 1n,
      key: { kind: KeyKind.DEPLOYMENT, id: 'cooled' },
      deployment: { provider: 'anthropic', deployment: 'cooled' },
    });

    const kv = await bus.kv(KV_BUCKETS.quota);
    const entry = await kv.get(deploymentKey('anthropic', 'cooled'));
    expect(entry).not.toBeNull();
    const state = fromBinary(QuotaStateSchema, entry!.value);
    expect(state).toMatchObject({ cooldownUntilUnixMs: BigInt(until), epoch: 1n, unavailable: false });

    // Every replica now refuses the deployment until the cooldown ends.
    const blocked = await clients[2]!.acquire({ keys: [tenant('acme'), dep('cooled')] });
    expect(blocked).toMatchObject({ granted: false, blockedLimit: LimitKind.COOLDOWN, blockedKey: { id: 'cooled' } });
    expect(blocked.retryAfterMs).toBeGreaterThan(1_000);
    expect(blocked.retryAfterMs).toBeLessThanOrEqual(2_000);
    expect((await clients[1]!.getQuota({ key: dep('cooled') })).quota?.cooldownUntilUnixMs).toBe(BigInt(until));
  });

  it('marks a deployment unavailable on QUOTA_EXHAUSTED', async () => {
    const observed = await clients[1]!.observe({
      deployment: { provider: 'openai', deployment: 'exhausted' },
      httpStatus: 429,
      errorClass: ErrorClass.QUOTA_EXHAUSTED,
    });
    expect(observed.unavailable).toBe(true);
    const event = await eventually(() => events.find((e) => e.subject === subjects.quota('openai', 'exhausted')), 'quota event');
    expect(event.event).toMatchObject({ kind: QuotaEventKind.UNAVAILABLE, limit: LimitKind.UNAVAILABLE, epoch: 1n });
    const entry = await (await bus.kv(KV_BUCKETS.quota)).get(deploymentKey('openai', 'exhausted'));
    expect(fromBinary(QuotaStateSchema, entry!.value)).toMatchObject({ unavailable: true, epoch: 1n });
    expect(await clients[0]!.acquire({ keys: [dep('exhausted')], maxWaitMs: 1_000 })).toMatchObject({
      granted: false,
      blockedLimit: LimitKind.UNAVAILABLE,
      retryAfterMs: 0,
      waitedMs: 0,
    });
  });

  it.each([
    ['unknown deployment', { keys: [dep('nope')] }, 'keys[0].id', /unknown deployment "nope"/],
    ['unknown tenant', { keys: [dep('burst'), tenant('ghost')] }, 'keys[1].id', /unknown tenant "ghost"/],
    ['missing key kind', { keys: [{ id: 'burst' }] }, 'keys[0].kind', /KEY_KIND_DEPLOYMENT/],
    ['no keys', { keys: [] }, 'keys', /at least one/],
    ['absurd token count', { keys: [dep('burst')], tokens: 20_000_000 }, 'tokens', /between 0 and 10000000/],
    ['tokens above the whole TPM', { keys: [dep('tokens')], tokens: 10_001 }, 'tokens', /exceeds the whole tpm limit 10000/],
    ['duplicate keys', { keys: [dep('burst'), dep('burst')] }, 'keys[1]', /duplicate/],
  ])('rejects Acquire with %s as INVALID_ARGUMENT naming the field', async (_name, request, field, message) => {
    const err = parseGrpcError(await clients[0]!.acquire(request).then(() => undefined, (e: unknown) => e));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.message).toMatch(message);
    expect(err.details.badRequest?.[0]?.field).toBe(field);
  });

  it('requires the internal token when SWITCHYARD_INTERNAL_TOKEN is set', async () => {
    const guarded = await start(
      loadConfig({
        SWITCHYARD_CONFIG: join(dir, 'switchyard.yaml'),
        NATS_URL: nats.url,
        REDIS_URL: redis.url,
        GRPC_HOST: '127.0.0.1',
        GRPC_PORT: '0',
        LOG_LEVEL: 'silent',
        SWITCHYARD_INTERNAL_TOKEN: 's3cret',
      }),
    );
    const anonymous = createClient(LimiterService, `127.0.0.1:${guarded.port}`, { defaultDeadlineMs: 5_000 });
    const trusted = createClient(LimiterService, `127.0.0.1:${guarded.port}`, {
      defaultDeadlineMs: 5_000,
      defaultMetadata: { 'x-switchyard-internal-token': 's3cret' },
    });
    try {
      const err = parseGrpcError(await anonymous.getQuota({ key: dep('burst') }).then(() => undefined, (e: unknown) => e));
      expect(err.code).toBe(status.UNAUTHENTICATED);
      expect((await trusted.getQuota({ key: dep('burst') })).quota?.key).toMatchObject({ id: 'burst' });
    } finally {
      anonymous.close();
      trusted.close();
      await guarded.stop();
    }
  });

  it('rejects Observe, Settle and GetQuota bad input naming the field', async () => {
    const cases: Array<[Promise<unknown>, string]> = [
      [clients[0]!.observe({ deployment: { provider: 'openai', deployment: 'nope' }, httpStatus: 429 }), 'deployment.deployment'],
      [clients[0]!.observe({ deployment: { provider: 'azure', deployment: 'burst' }, httpStatus: 429 }), 'deployment.provider'],
      [clients[0]!.observe({ httpStatus: 429 }), 'deployment'],
      [clients[0]!.settle({ reservationId: '' }), 'reservation_id'],
      [clients[0]!.getQuota({}), 'key'],
    ];
    for (const [call, field] of cases) {
      const err = parseGrpcError(await call.then(() => undefined, (e: unknown) => e));
      expect({ field, code: err.code }).toEqual({ field, code: status.INVALID_ARGUMENT });
      expect(err.details.badRequest?.[0]?.field).toBe(field);
    }
  });
});
