import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { trace } from '@opentelemetry/api';
import {
  AttemptOutcomeSchema,
  BreakerService,
  CircuitState,
  DeploymentHealthSchema,
  ErrorClass,
  type HealthTransition,
  HealthTransitionSchema,
} from '@switchyard/contracts';
import { createClient, parseGrpcError, status } from '@switchyard/grpc';
import { type EventBus, KV_BUCKETS, createNatsEventBus, subjects } from '@switchyard/nats';
import { type InMemoryTracing, type ServerHandle, startInMemoryTracing, startNats, startRedis } from '@switchyard/testing';
import { Redis } from 'ioredis';
import { type BreakerService as RunningBreaker, breakerKeys, loadConfig, start } from '../src';

const PROVIDER = 'openai';
const OPEN_MS = 2_000;
let seq = 0;
const uniqueDeployment = (label: string) => `${label}-${process.pid}-${seq++}`;

async function eventually<T>(probe: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const breakerClient = (port: number, metadata?: Record<string, string>) =>
  createClient(BreakerService, `127.0.0.1:${port}`, { defaultDeadlineMs: 5_000, defaultMetadata: metadata });

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('breaker service (real gRPC, Redis, NATS JetStream)', () => {
  let nats: ServerHandle;
  let redis: ServerHandle;
  let tracing: InMemoryTracing;
  let bus: EventBus;
  let breaker: RunningBreaker;
  let client: ReturnType<typeof breakerClient>;
  const events: { transition: HealthTransition; subject: string; traceparent?: string }[] = [];

  const configFor = (overrides: Record<string, string> = {}) =>
    loadConfig({
      NATS_URL: nats.url,
      REDIS_URL: redis.url,
      GRPC_HOST: '127.0.0.1',
      GRPC_PORT: '0',
      BREAKER_OPEN_MS: String(OPEN_MS),
      BREAKER_SWEEP_INTERVAL_MS: '100',
      LOG_LEVEL: 'silent',
      ...overrides,
    });

  const outcome = (deployment: string, errorClass: ErrorClass, extra: Partial<{ eventId: string; latencyMs: number }> = {}) =>
    create(AttemptOutcomeSchema, {
      eventId: extra.eventId ?? `${deployment}-${seq++}`,
      requestId: 'req-1',
      route: 'chat',
      tenant: 'acme',
      deployment: { provider: PROVIDER, deployment, model: 'gpt-4o' },
      errorClass,
      httpStatus: errorClass === ErrorClass.OVERLOADED ? 503 : errorClass === ErrorClass.UNSPECIFIED ? 200 : 400,
      latencyMs: extra.latencyMs ?? 120,
      attempt: 1,
    });

  const publishOutcome = (deployment: string, errorClass: ErrorClass) =>
    bus.publishDurable(subjects.outcome(PROVIDER, deployment), toBinary(AttemptOutcomeSchema, outcome(deployment, errorClass)));

  const eventsFor = (deployment: string) => events.filter((e) => e.transition.ref?.deployment === deployment);

  beforeAll(async () => {
    tracing = startInMemoryTracing();
    [nats, redis] = await Promise.all([startNats({ jetstream: true }), startRedis()]);
    breaker = await start(configFor());
    client = breakerClient(breaker.port);
    bus = await createNatsEventBus({ url: nats.url, name: 'breaker-int-test' });
    await bus.subscribe(subjects.all('health'), (msg) => {
      events.push({ transition: fromBinary(HealthTransitionSchema, msg.data), subject: msg.subject, traceparent: msg.headers.traceparent });
    });
  }, 60_000);

  afterAll(async () => {
    client?.close();
    await breaker?.stop();
    await bus?.close();
    await Promise.all([nats?.stop(), redis?.stop()]);
    await tracing?.shutdown();
  }, 30_000);

  it('opens once after 5 OVERLOADED outcomes from NATS: one event, KV state, GetHealth, same trace', async () => {
    const dep = uniqueDeployment('overloaded');
    const tracer = trace.getTracer('breaker-int-test');
    const traceId = await tracer.startActiveSpan('router attempt', async (span) => {
      for (let i = 0; i < 5; i++) await publishOutcome(dep, ErrorClass.OVERLOADED);
      span.end();
      return span.spanContext().traceId;
    });

    const [event] = await eventually(() => (eventsFor(dep).length > 0 ? eventsFor(dep) : undefined), 'a health transition');
    await settle(400);
    expect(eventsFor(dep)).toHaveLength(1);
    expect(event.subject).toBe(`switchyard.health.${PROVIDER}.${dep}`);
    expect(event.transition).toMatchObject({
      from: CircuitState.CLOSED,
      to: CircuitState.OPEN,
      reason: '5 consecutive failures',
      failureRate: 1,
      epoch: 1n,
      forced: false,
      ref: { provider: PROVIDER, deployment: dep, model: 'gpt-4o' },
    });
    expect(event.transition.openUntilUnixMs - event.transition.timeUnixMs).toBe(BigInt(OPEN_MS));
    // The router's publish span → breaker consume span → health publish: one trace.
    expect(event.traceparent).toContain(traceId);

    const kv = await bus.kv(KV_BUCKETS.health);
    const entry = await kv.get(dep);
    expect(entry).not.toBeNull();
    expect(fromBinary(DeploymentHealthSchema, entry!.value)).toMatchObject({ state: CircuitState.OPEN, epoch: 1n, consecutiveFailures: 5 });

    const { health } = await client.getHealth({ deployment: dep });
    expect(health).toMatchObject({
      state: CircuitState.OPEN,
      consecutiveFailures: 5,
      lastErrorClass: ErrorClass.OVERLOADED,
      p50LatencyMs: 120,
      epoch: 1n,
      windowCalls: 5,
      failureRate: 1,
    });
    expect(health!.openUntilUnixMs).toBe(event.transition.openUntilUnixMs);
    const { deployments } = await client.listHealth({});
    expect(deployments.map((d) => d.ref?.deployment)).toContain(dep);
  });

  it('two replicas consuming the same durable consumer still publish exactly one transition', async () => {
    const second = await start(configFor());
    try {
      const dep = uniqueDeployment('replicas');
      await Promise.all(Array.from({ length: 12 }, () => publishOutcome(dep, ErrorClass.SERVER_ERROR)));
      await eventually(() => (eventsFor(dep).length > 0 ? true : undefined), 'a health transition');
      await settle(500);
      expect(eventsFor(dep).map((e) => [e.transition.from, e.transition.to])).toEqual([[CircuitState.CLOSED, CircuitState.OPEN]]);
      // Every outcome was handled exactly once across both replicas (12 failures counted, none twice).
      const { health } = await client.getHealth({ deployment: dep });
      expect(health?.consecutiveFailures).toBe(12);
    } finally {
      await second.stop();
    }
  });

  it('400-class outcomes never open the circuit, over NATS or Report', async () => {
    const dep = uniqueDeployment('client-errors');
    for (let i = 0; i < 10; i++) await publishOutcome(dep, ErrorClass.INVALID_REQUEST);
    for (let i = 0; i < 10; i++) await client.report({ outcome: outcome(dep, ErrorClass.CONTEXT_LENGTH) });
    await publishOutcome(dep, ErrorClass.AUTH);
    const health = await eventually(async () => {
      const { health } = await client.getHealth({ deployment: dep });
      return health?.lastErrorClass === ErrorClass.AUTH ? health : undefined;
    }, 'the last outcome to be consumed');
    expect(health).toMatchObject({ state: CircuitState.CLOSED, consecutiveFailures: 0, failureRate: 0, epoch: 0n });
    expect(eventsFor(dep)).toHaveLength(0);
  });

  it('Report RPC opens the same way, ignores duplicate event ids, and sweeps to HALF_OPEN; the probe decides', async () => {
    const dep = uniqueDeployment('report');
    for (let i = 0; i < 4; i++) {
      const res = await client.report({ outcome: outcome(dep, ErrorClass.TIMEOUT, { eventId: `${dep}-e${i}` }) });
      expect(res).toMatchObject({ transitioned: false, health: { state: CircuitState.CLOSED, consecutiveFailures: i + 1 } });
    }
    const dup = await client.report({ outcome: outcome(dep, ErrorClass.TIMEOUT, { eventId: `${dep}-e3` }) });
    expect(dup).toMatchObject({ transitioned: false, health: { consecutiveFailures: 4 } });
    const fifth = await client.report({ outcome: outcome(dep, ErrorClass.NETWORK) });
    expect(fifth).toMatchObject({ transitioned: true, health: { state: CircuitState.OPEN, epoch: 1n, lastErrorClass: ErrorClass.NETWORK } });

    expect(await client.acquireProbe({ deployment: dep, holderId: 'router-a' })).toMatchObject({ granted: false, state: CircuitState.OPEN });
    // No traffic: the sweep notices open_until and publishes OPEN→HALF_OPEN once.
    await eventually(() => (eventsFor(dep).length >= 2 ? true : undefined), 'the sweep to publish HALF_OPEN', OPEN_MS + 5_000);
    const granted = await client.acquireProbe({ deployment: dep, holderId: 'router-a' });
    expect(granted).toMatchObject({ granted: true, holderId: 'router-a', state: CircuitState.HALF_OPEN });
    expect(await client.acquireProbe({ deployment: dep, holderId: 'router-b' })).toMatchObject({ granted: false, holderId: 'router-a' });
    const closed = await client.report({ outcome: outcome(dep, ErrorClass.UNSPECIFIED) });
    expect(closed).toMatchObject({ transitioned: true, health: { state: CircuitState.CLOSED, epoch: 3n } });
    await settle(300);
    expect(eventsFor(dep).map((e) => [e.transition.from, e.transition.to, e.transition.epoch])).toEqual([
      [CircuitState.CLOSED, CircuitState.OPEN, 1n],
      [CircuitState.OPEN, CircuitState.HALF_OPEN, 2n],
      [CircuitState.HALF_OPEN, CircuitState.CLOSED, 3n],
    ]);
    const kv = await bus.kv(KV_BUCKETS.health);
    expect(fromBinary(DeploymentHealthSchema, (await kv.get(dep))!.value)).toMatchObject({ state: CircuitState.CLOSED, epoch: 3n });
  }, 20_000);

  it('after Redis lost the circuit, its next transition is still heard: the epoch is lifted above the one published', async () => {
    const dep = uniqueDeployment('lost');
    const kv = await bus.kv(KV_BUCKETS.health);
    for (let i = 0; i < 5; i++) await client.report({ outcome: outcome(dep, ErrorClass.OVERLOADED) });
    await client.forceState({ deployment: dep, state: CircuitState.CLOSED, release: false, reason: 'test' });
    await eventually(async () => (fromBinary(DeploymentHealthSchema, (await kv.get(dep))!.value).epoch === 2n ? true : undefined), 'KV to hold epoch 2');
    // Redis restarted empty: the circuit starts again at epoch 0 while the KV holds 2.
    const raw = new Redis(redis.url);
    await raw.del(breakerKeys.circuit(dep));
    raw.disconnect();
    let fifth;
    for (let i = 0; i < 5; i++) fifth = await client.report({ outcome: outcome(dep, ErrorClass.OVERLOADED) });
    expect(fifth).toMatchObject({ transitioned: true, health: { state: CircuitState.OPEN } });
    const published = await eventually(async () => {
      const health = fromBinary(DeploymentHealthSchema, (await kv.get(dep))!.value);
      return health.state === CircuitState.OPEN ? health : undefined;
    }, 'KV to hold the new OPEN');
    expect(published.epoch).toBe(3n);
    expect((await client.getHealth({ deployment: dep })).health).toMatchObject({ state: CircuitState.OPEN, epoch: 3n });
  }, 20_000);

  it('a probe asked of a circuit the store holds CLOSED while the published health is OPEN republishes CLOSED', async () => {
    const dep = uniqueDeployment('stale-open');
    const kv = await bus.kv(KV_BUCKETS.health);
    for (let i = 0; i < 5; i++) await client.report({ outcome: outcome(dep, ErrorClass.OVERLOADED) });
    // Report answers before the transition is published (background): the key may not exist yet.
    const published = async () => {
      const entry = await kv.get(dep);
      return entry ? fromBinary(DeploymentHealthSchema, entry.value) : undefined;
    };
    await eventually(async () => ((await published())?.state === CircuitState.OPEN ? true : undefined), 'KV to hold OPEN');
    // Redis came back without the circuit; a success recreates it CLOSED at epoch 0.
    const raw = new Redis(redis.url);
    await raw.del(breakerKeys.circuit(dep));
    raw.disconnect();
    await client.report({ outcome: outcome(dep, ErrorClass.UNSPECIFIED) });
    expect((await published())?.state).toBe(CircuitState.OPEN);
    // A router following the KV asks for a probe: refused (nothing to probe), and the store's CLOSED is published.
    expect(await client.acquireProbe({ deployment: dep, holderId: 'router-x', ttlMs: 1_000 })).toMatchObject({ granted: false, state: CircuitState.CLOSED, holderId: '' });
    const now = await eventually(async () => {
      const h = await published();
      return h?.state === CircuitState.CLOSED ? h : undefined;
    }, 'KV to hold CLOSED');
    expect(now.epoch).toBe(2n);
  }, 20_000);

  it('ForceState publishes a forced transition and holds it', async () => {
    const dep = uniqueDeployment('forced');
    await client.report({ outcome: outcome(dep, ErrorClass.UNSPECIFIED) });
    const { health } = await client.forceState({ deployment: dep, state: CircuitState.OPEN, reason: 'maintenance' });
    expect(health).toMatchObject({ state: CircuitState.OPEN, forced: true, openUntilUnixMs: 0n });
    const [event] = await eventually(() => (eventsFor(dep).length > 0 ? eventsFor(dep) : undefined), 'the forced transition');
    expect(event.transition).toMatchObject({ from: CircuitState.CLOSED, to: CircuitState.OPEN, forced: true, reason: 'maintenance' });
    await client.report({ outcome: outcome(dep, ErrorClass.UNSPECIFIED) });
    expect((await client.getHealth({ deployment: dep })).health).toMatchObject({ state: CircuitState.OPEN, forced: true });
    const released = await client.forceState({ deployment: dep, state: CircuitState.CLOSED, release: true });
    expect(released.health).toMatchObject({ state: CircuitState.CLOSED, forced: false });
  });

  it('rejects bad input with INVALID_ARGUMENT naming the field, and unknown deployments with NOT_FOUND', async () => {
    const expectError = async (call: Promise<unknown>, code: status, message: RegExp) => {
      const err = await call.then(
        () => undefined,
        (e: unknown) => parseGrpcError(e),
      );
      expect(err).toBeDefined();
      expect({ code: err!.code, message: err!.message }).toEqual({ code, message: expect.stringMatching(message) });
    };
    await expectError(client.report({}), status.INVALID_ARGUMENT, /^outcome: is required/);
    const noProvider = outcome('x', ErrorClass.OVERLOADED);
    noProvider.deployment!.provider = '';
    await expectError(client.report({ outcome: noProvider }), status.INVALID_ARGUMENT, /outcome\.deployment\.provider: is required/);
    const badDep = outcome('x', ErrorClass.OVERLOADED);
    badDep.deployment!.deployment = 'has.dot';
    await expectError(client.report({ outcome: badDep }), status.INVALID_ARGUMENT, /outcome\.deployment\.deployment: must be/);
    await expectError(client.report({ outcome: outcome('x', 99 as ErrorClass) }), status.INVALID_ARGUMENT, /outcome\.error_class: unknown/);
    await expectError(client.getHealth({ deployment: '' }), status.INVALID_ARGUMENT, /^deployment: is required/);
    await expectError(client.getHealth({ deployment: 'never-seen' }), status.NOT_FOUND, /never-seen/);
    await expectError(client.acquireProbe({ deployment: 'x' }), status.INVALID_ARGUMENT, /holder_id: is required/);
    await expectError(client.acquireProbe({ deployment: 'x', holderId: 'a', ttlMs: 10_000_000 }), status.INVALID_ARGUMENT, /ttl_ms: must be at most/);
    await expectError(client.forceState({ deployment: 'x' }), status.INVALID_ARGUMENT, /^state: must be CLOSED, OPEN or HALF_OPEN/);
    await expectError(client.forceState({ deployment: 'never-seen', state: CircuitState.OPEN }), status.NOT_FOUND, /never-seen/);
  });

  it('requires the internal token when one is configured', async () => {
    const guarded = await start(configFor({ SWITCHYARD_INTERNAL_TOKEN: 'sekret' }));
    const anonymous = breakerClient(guarded.port);
    const trusted = breakerClient(guarded.port, { 'x-switchyard-internal-token': 'sekret' });
    try {
      const err = await anonymous.listHealth({}).then(
        () => undefined,
        (e: unknown) => parseGrpcError(e),
      );
      expect(err?.code).toBe(status.UNAUTHENTICATED);
      await expect(trusted.listHealth({})).resolves.toBeDefined();
    } finally {
      anonymous.close();
      trusted.close();
      await guarded.stop();
    }
  });
});
