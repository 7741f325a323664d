import { join } from 'node:path';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { jetstreamManager } from '@nats-io/jetstream';
import { type NatsConnection, connect } from '@nats-io/transport-node';
import { AttemptOutcomeSchema, BreakerService, CircuitState, ErrorClass, type HealthTransition, HealthTransitionSchema } from '@switchyard/contracts';
import { createClient } from '@switchyard/grpc';
import { type EventBus, OUTCOMES_STREAM, createNatsEventBus, subjects } from '@switchyard/nats';
import { type ServerHandle, type SpawnedProcess, spawnProcess, startNats, startRedis } from '@switchyard/testing';
import { type BreakerService as RunningBreaker, OUTCOME_CONSUMER, loadConfig, start } from '../src';

/**
 * Issue 5 proofs against real Redis and NATS JetStream: the rate rules hold
 * with several replicas consuming the same durable consumer, client errors
 * never open a circuit, and killing a replica mid-run loses no outcome.
 */
const PROVIDER = 'openai';
let seq = 0;
const uniqueDeployment = (label: string) => `${label}-${process.pid}-${seq++}`;

async function eventually<T>(probe: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const breakerClient = (port: number) => createClient(BreakerService, `127.0.0.1:${port}`, { defaultDeadlineMs: 5_000 });

describe('breaker resilience (real Redis, NATS JetStream, several replicas)', () => {
  let nats: ServerHandle;
  let redis: ServerHandle;
  let bus: EventBus;
  let nc: NatsConnection;
  const events: HealthTransition[] = [];

  const env = (overrides: Record<string, string> = {}) => ({
    NATS_URL: nats.url,
    REDIS_URL: redis.url,
    GRPC_HOST: '127.0.0.1',
    GRPC_PORT: '0',
    LOG_LEVEL: 'silent',
    BREAKER_OPEN_MS: '600000',
    BREAKER_SWEEP_INTERVAL_MS: '100',
    BREAKER_OUTCOME_ACK_WAIT_MS: '1000',
    ...overrides,
  });

  const outcome = (deployment: string, errorClass: ErrorClass, eventId = `${deployment}-${seq++}`) =>
    create(AttemptOutcomeSchema, {
      eventId,
      requestId: eventId,
      route: 'chat',
      tenant: 'acme',
      deployment: { provider: PROVIDER, deployment, model: 'gpt-4o' },
      errorClass,
      latencyMs: 50,
      attempt: 1,
    });

  const publish = (deployment: string, errorClass: ErrorClass) =>
    bus.publishDurable(subjects.outcome(PROVIDER, deployment), toBinary(AttemptOutcomeSchema, outcome(deployment, errorClass)));

  /** Every published outcome has been handled and acked by some replica. */
  const drained = () =>
    eventually(async () => {
      const info = await (await jetstreamManager(nc)).consumers.info(OUTCOMES_STREAM, OUTCOME_CONSUMER);
      return info.num_pending === 0 && info.num_ack_pending === 0 ? true : undefined;
    }, 'the outcome consumer to drain');

  const eventsFor = (dep: string) => events.filter((e) => e.ref?.deployment === dep);

  beforeAll(async () => {
    [nats, redis] = await Promise.all([startNats({ jetstream: true }), startRedis()]);
    bus = await createNatsEventBus({ url: nats.url, name: 'breaker-resilience-test' });
    nc = await connect({ servers: nats.url });
    await bus.subscribe(subjects.all('health'), (msg) => {
      events.push(fromBinary(HealthTransitionSchema, msg.data));
    });
  }, 60_000);

  afterAll(async () => {
    await bus?.close();
    await nc?.close();
    await Promise.all([nats?.stop(), redis?.stop()]);
  }, 30_000);

  async function withReplicas<T>(n: number, overrides: Record<string, string>, fn: (replicas: RunningBreaker[]) => Promise<T>): Promise<T> {
    const replicas: RunningBreaker[] = [];
    try {
      for (let i = 0; i < n; i++) replicas.push(await start(loadConfig(env(overrides))));
      return await fn(replicas);
    } finally {
      for (const r of replicas) await r.stop();
    }
  }

  it('failure rate ≥ 50 % over the window opens once, with the same result on one replica or two', async () => {
    // 20 failures and 10 successes, never 3 failures in a row: whatever order the
    // replicas handle them in, any 20 of them are ≥ 50 % failures, so the rate
    // rule (not the consecutive rule) opens the circuit exactly once.
    const pattern = Array.from({ length: 30 }, (_, i) => (i % 3 === 2 ? ErrorClass.UNSPECIFIED : ErrorClass.SERVER_ERROR));
    const run = (n: number) =>
      withReplicas(n, {}, async (replicas) => {
        const dep = uniqueDeployment(`rate${n}`);
        await Promise.all(pattern.map((cls) => publish(dep, cls)));
        await drained();
        const client = breakerClient(replicas[0]!.port);
        try {
          const { health } = await client.getHealth({ deployment: dep });
          await eventually(() => (eventsFor(dep).length > 0 ? true : undefined), 'the health event');
          await new Promise((r) => setTimeout(r, 300));
          return {
            state: health!.state,
            windowCalls: health!.windowCalls,
            failureRate: health!.failureRate,
            epoch: health!.epoch,
            transitions: eventsFor(dep).map((e) => `${CircuitState[e.from]}→${CircuitState[e.to]}`),
          };
        } finally {
          client.close();
        }
      });
    const one = await run(1);
    const two = await run(2);
    expect(one).toEqual({ state: CircuitState.OPEN, windowCalls: 30, failureRate: 20 / 30, epoch: 1n, transitions: ['CLOSED→OPEN'] });
    expect(two).toEqual(one);
  }, 60_000);

  it('client errors (400, 401, context length) at 100 % never open, even with a minimum of 1 call', async () => {
    await withReplicas(2, { BREAKER_MINIMUM_CALLS: '1', BREAKER_CONSECUTIVE_FAILURES: '1' }, async (replicas) => {
      const dep = uniqueDeployment('client');
      const classes = [ErrorClass.INVALID_REQUEST, ErrorClass.AUTH, ErrorClass.CONTEXT_LENGTH, ErrorClass.CONTENT_FILTER];
      await Promise.all(Array.from({ length: 60 }, (_, i) => publish(dep, classes[i % classes.length]!)));
      await drained();
      const client = breakerClient(replicas[1]!.port);
      try {
        const { health } = await client.getHealth({ deployment: dep });
        expect(health).toMatchObject({ state: CircuitState.CLOSED, windowCalls: 0, failureRate: 0, consecutiveFailures: 0, epoch: 0n });
        expect(classes).toContain(health!.lastErrorClass);
        expect(eventsFor(dep)).toHaveLength(0);
      } finally {
        client.close();
      }
    });
  }, 60_000);

  it('GetHealth/ListHealth carry failure rate, p50/p95 latency, last error class and degraded (p95 over the slow-call threshold)', async () => {
    const dep = uniqueDeployment('latency');
    await withReplicas(1, { BREAKER_SLOW_CALL_MS_BY_DEPLOYMENT: `${dep}=400` }, async ([replica]) => {
      const client = breakerClient(replica!.port);
      try {
        const report = (cls: ErrorClass, latencyMs: number) => client.report({ outcome: { ...outcome(dep, cls), latencyMs } });
        for (let i = 0; i < 20; i++) await report(ErrorClass.UNSPECIFIED, 100);
        let { health } = await client.getHealth({ deployment: dep });
        expect(health).toMatchObject({ p50LatencyMs: 100, p95LatencyMs: 100, degraded: false, windowCalls: 20, failureRate: 0 });
        // One attempt in four is slow and failing: the mean moves a little, the p95 estimate a lot.
        for (let i = 0; i < 12; i++) await report(i % 4 === 0 ? ErrorClass.TIMEOUT : ErrorClass.UNSPECIFIED, i % 4 === 0 ? 1_500 : 100);
        ({ health } = await client.getHealth({ deployment: dep }));
        expect(health!.p50LatencyMs).toBeLessThan(400);
        expect(health!.p95LatencyMs).toBeGreaterThan(400);
        expect(health).toMatchObject({ state: CircuitState.CLOSED, degraded: true, windowCalls: 32, lastErrorClass: ErrorClass.TIMEOUT });
        expect(health!.failureRate).toBeCloseTo(3 / 32, 6);
        const { deployments } = await client.listHealth({});
        expect(deployments.find((d) => d.ref?.deployment === dep)).toMatchObject({ degraded: true, p95LatencyMs: health!.p95LatencyMs });
      } finally {
        client.close();
      }
    });
  });

  it('a breaker replica killed mid-run loses no outcome (JetStream) and leaves the state unchanged', async () => {
    const spawn = () =>
      spawnProcess({ entry: join(__dirname, '../src/main.ts'), env: { ...env({ LOG_LEVEL: 'warn' }), OTEL_SDK_DISABLED: 'true' } });
    const procs: SpawnedProcess[] = await Promise.all([spawn(), spawn()]);
    const [victim, survivor] = procs as [SpawnedProcess, SpawnedProcess];
    const client = breakerClient(survivor.port);
    try {
      const dep = uniqueDeployment('killed');
      for (let i = 0; i < 5; i++) await publish(dep, ErrorClass.OVERLOADED);
      const opened = await eventually(async () => {
        const { health } = await client.getHealth({ deployment: dep }).catch(() => ({ health: undefined }));
        return health?.state === CircuitState.OPEN ? health : undefined;
      }, 'the circuit to open');

      // Steady stream; the victim is SIGKILLed halfway, holding unacked outcomes.
      const total = 200;
      for (let i = 0; i < total; i++) {
        await publish(dep, ErrorClass.OVERLOADED);
        if (i === total / 2) await victim.kill();
        if (i % 10 === 0) await new Promise((r) => setTimeout(r, 5));
      }
      await drained();
      const { health } = await client.getHealth({ deployment: dep });
      // Every outcome counted exactly once: none lost with the victim, none double-counted on redelivery.
      expect(health).toMatchObject({
        state: CircuitState.OPEN,
        consecutiveFailures: 5 + total,
        windowCalls: 5 + total,
        epoch: opened.epoch,
        openUntilUnixMs: opened.openUntilUnixMs,
      });
      expect(eventsFor(dep).map((e) => `${CircuitState[e.from]}→${CircuitState[e.to]}`)).toEqual(['CLOSED→OPEN']);
    } finally {
      client.close();
      await Promise.all(procs.map((p) => p.stop('SIGTERM').catch(() => undefined)));
    }
  }, 90_000);
});
