/**
 * The walking skeleton, end to end, as production runs it: NATS, Redis, the
 * provider simulator and the five services each in their own OS process,
 * started through their real entry points, called with a plain grpc-js client.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { fromBinary } from '@bufbuild/protobuf';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  BudgetService,
  CircuitState,
  CompleteRequestSchema,
  CompleteResponseSchema,
  GetBudgetRequestSchema,
  GetBudgetResponseSchema,
  GetQuotaRequestSchema,
  GetQuotaResponseSchema,
  HealthTransitionSchema,
  KeyKind,
  LimiterService,
  Role,
  RouterService,
  StreamCompleteRequestSchema,
  StreamCompleteResponseSchema,
  type HealthTransition,
} from '@switchyard/contracts';
import { hashApiKey } from '@switchyard/config';
import { PRESENCE_SUBJECTS } from '@switchyard/nats';
import {
  spawnProcess,
  spawnSimulator,
  startNats,
  startOtlpReceiver,
  startRedis,
  type OtlpReceiver,
  type ServerHandle,
  type SimulatorHandle,
  type SpawnedProcess,
} from '@switchyard/testing';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { createPlainClient } from './grpc-plain-client';

const ROOT = resolve(__dirname, '../..');
const API_KEY = 'sk-e2e-acme';
const AUTH = { 'x-api-key': API_KEY };

const config = `
deployments:
  openai-primary:
    provider: openai
    baseUrl: \${SIMULATOR_URL}/v1
    model: gpt-4o
    apiKey: env:OPENAI_API_KEY
    limits: { rpm: 10000, tpm: 10000000 }
    price: { inputPerMillionUsd: 2.5, outputPerMillionUsd: 10 }
  anthropic-fallback:
    provider: anthropic
    baseUrl: \${SIMULATOR_URL}
    model: claude-sonnet-4-6
    apiKey: env:ANTHROPIC_API_KEY
    limits: { rpm: 10000, tpm: 10000000 }
    price: { inputPerMillionUsd: 3, outputPerMillionUsd: 15 }
routes:
  chat:
    candidates:
      - { deployment: openai-primary, priority: 0 }
      - { deployment: anthropic-fallback, priority: 1 }
  claude:
    candidates:
      - { deployment: anthropic-fallback }
tenants:
  acme:
    apiKeys: [{ id: acme-e2e, sha256: ${hashApiKey(API_KEY)} }]
    budgets: [{ period: day, limitUsd: 100 }]
defaults:
  retry: { maxAttempts: 2, baseMs: 10, capMs: 50 }
  breaker: { consecutiveFailures: 5, openMs: 120000 }
`;

function request(overrides: Partial<MessageInitShape<typeof CompleteRequestSchema>> = {}): MessageInitShape<typeof CompleteRequestSchema> {
  return {
    route: 'chat',
    messages: [
      { role: Role.SYSTEM, content: 'You are terse.' },
      { role: Role.USER, content: 'Name three rivers in Europe.' },
    ],
    params: { maxTokens: 64 },
    userId: 'user-1',
    feature: 'e2e',
    ...overrides,
  } as MessageInitShape<typeof CompleteRequestSchema>;
}

async function eventually<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A Redis script run (EVALSHA, or EVAL after NOSCRIPT), by its database semantics rather than a library's span name. */
function isRedisScript(s: { attributes: Record<string, unknown>; name: string }): boolean {
  const system = s.attributes['db.system'] ?? s.attributes['db.system.name'];
  const operation = String(s.attributes['db.operation.name'] ?? s.attributes['db.operation'] ?? s.attributes['db.statement'] ?? s.attributes['db.query.text'] ?? s.name);
  return system === 'redis' && /^eval/i.test(operation);
}

describe('foundation: one call across every service', () => {
  let nats: ServerHandle;
  let redis: ServerHandle;
  let otlp: OtlpReceiver;
  let simulator: SimulatorHandle;
  const services: Record<string, SpawnedProcess> = {};
  let router: ReturnType<typeof createPlainClient>;
  let peers: ReturnType<typeof createPlainClient>[] = [];
  let watcher: NatsConnection;
  const transitions: HealthTransition[] = [];

  beforeAll(async () => {
    [nats, redis, otlp] = await Promise.all([startNats({ jetstream: true }), startRedis(), startOtlpReceiver()]);
    simulator = await spawnSimulator({ scenario: { seed: 7, deployments: { 'gpt-4o': {}, 'claude-sonnet-4-6': {} } } });
    const dir = mkdtempSync(join(tmpdir(), 'sy-e2e-'));
    const configPath = join(dir, 'switchyard.yaml');
    writeFileSync(configPath, config);
    const env = {
      NATS_URL: nats.url,
      REDIS_URL: redis.url,
      SWITCHYARD_CONFIG: configPath,
      SIMULATOR_URL: simulator.url,
      GRPC_HOST: '127.0.0.1',
      GRPC_PORT: '0',
      OPENAI_API_KEY: 'sk-sim-openai',
      ANTHROPIC_API_KEY: 'sk-sim-anthropic',
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_METRICS_EXPORTER: 'none',
      OTEL_LOGS_EXPORTER: 'none',
      OTEL_BSP_SCHEDULE_DELAY: '100',
      LOG_LEVEL: 'warn',
    };
    const names = ['limiter', 'breaker', 'budget', 'cache'] as const;
    const started = await Promise.all(
      names.map((name) => spawnProcess({ entry: join(ROOT, `services/${name}/src/main.ts`), env, readyTimeoutMs: 90_000 })),
    );
    names.forEach((name, i) => (services[name] = started[i]));
    services.router = await spawnProcess({
      entry: join(ROOT, 'services/router/src/main.ts'),
      env: {
        ...env,
        LIMITER_ADDR: `127.0.0.1:${services.limiter.port}`,
        BREAKER_ADDR: `127.0.0.1:${services.breaker.port}`,
        BUDGET_ADDR: `127.0.0.1:${services.budget.port}`,
        CACHE_ADDR: `127.0.0.1:${services.cache.port}`,
      },
      readyTimeoutMs: 90_000,
    });
    router = createPlainClient(`127.0.0.1:${services.router.port}`);
    peers = [createPlainClient(`127.0.0.1:${services.budget.port}`), createPlainClient(`127.0.0.1:${services.limiter.port}`)];
    watcher = await connect({ servers: nats.url });
    watcher.subscribe('switchyard.health.>', {
      callback: (_err, msg) => {
        transitions.push(fromBinary(HealthTransitionSchema, msg.data));
      },
    });
  }, 180_000);

  afterAll(async () => {
    router?.close();
    peers.forEach((p) => p.close());
    await watcher?.close();
    // Router first: in-flight work settles against live peers.
    if (services.router) await services.router.stop();
    await Promise.all(Object.entries(services).filter(([n]) => n !== 'router').map(([, p]) => p.stop()));
    await simulator?.stop();
    await Promise.all([nats?.stop(), redis?.stop(), otlp?.stop()]);
  }, 60_000);

  const complete = (req: MessageInitShape<typeof CompleteRequestSchema>, metadata: Record<string, string> = AUTH) =>
    router.unary(RouterService, 'Complete', CompleteRequestSchema, CompleteResponseSchema, req, metadata);
  const budget = async () =>
    (await peers[0].unary(BudgetService, 'GetBudget', GetBudgetRequestSchema, GetBudgetResponseSchema, { tenant: 'acme' })).response;
  const quota = async (deployment: string) =>
    (
      await peers[1].unary(LimiterService, 'GetQuota', GetQuotaRequestSchema, GetQuotaResponseSchema, {
        key: { kind: KeyKind.DEPLOYMENT, id: deployment },
      })
    ).response;
  const spent = async () => {
    const caps = (await budget()).caps;
    return caps.reduce((sum, c) => sum + c.spentMicros, 0n);
  };
  /** Cumulative admissions (GCRA "used" decays, so it cannot show that a request was counted). */
  const admittedRequests = async (deployment: string) => (await quota(deployment)).quota?.admittedRequests ?? 0n;

  let totalCost = 0n;
  let firstTraceId = '';

  it('exports no span while only housekeeping runs (start-up, heartbeats, sweeps)', async () => {
    const beats: Record<string, number> = {};
    const withTraceHeaders: string[] = [];
    await new Promise<void>((resolve) => {
      // PRESENCE_SUBJECTS are switchyard.<service>.replicas.
      const sub = watcher.subscribe('switchyard.*.replicas', {
        callback: (_err, msg) => {
          if (msg.headers?.has('traceparent')) withTraceHeaders.push(msg.subject);
          beats[msg.subject] = (beats[msg.subject] ?? 0) + 1;
          if ((beats[PRESENCE_SUBJECTS.limiter] ?? 0) >= 3 && (beats[PRESENCE_SUBJECTS.router] ?? 0) >= 3) {
            sub.unsubscribe();
            resolve();
          }
        },
      });
    });
    expect(withTraceHeaders).toEqual([]);
    // Each process exports within OTEL_BSP_SCHEDULE_DELAY (100 ms) of a span ending, so the first heartbeats' spans, had there been any, arrived before the third.
    expect(otlp.spans().map((s) => `${s.serviceName} ${s.kind} ${s.name}`)).toEqual([]);
  });

  it('answers an OpenAI-backed route with content, usage, cost and who served it', async () => {
    const { response, metadata } = await complete(request());
    expect(response.content.length).toBeGreaterThan(0);
    expect(response.usage?.inputTokens).toBeGreaterThan(0);
    expect(response.usage?.outputTokens).toBeGreaterThan(0);
    expect(response.costMicros).toBeGreaterThan(0n);
    expect(response.servedBy).toMatchObject({ provider: 'openai', deployment: 'openai-primary', model: 'gpt-4o' });
    expect(response.attempts).toHaveLength(1);
    expect(response.attempts[0].upstreamRequestId).toMatch(/^req_/);
    totalCost += response.costMicros;
    firstTraceId = String(metadata.get('x-switchyard-trace-id')[0] ?? '');
    expect(firstTraceId).toMatch(/^[0-9a-f]{32}$/);
  });

  it('puts the whole journey of one call in one trace', async () => {
    const required: [string, (s: { serviceName: string; kind: string; name: string; attributes: Record<string, unknown> }) => boolean][] = [
      ['router server span', (s) => s.serviceName === 'switchyard-router' && s.kind === 'SERVER' && s.name.includes('Complete')],
      ['cache server span', (s) => s.serviceName === 'switchyard-cache' && s.kind === 'SERVER'],
      ['budget server span', (s) => s.serviceName === 'switchyard-budget' && s.kind === 'SERVER'],
      ['limiter server span', (s) => s.serviceName === 'switchyard-limiter' && s.kind === 'SERVER'],
      ['provider HTTP client span', (s) => s.serviceName === 'switchyard-router' && s.kind === 'CLIENT' && JSON.stringify(s.attributes).includes('/v1/chat/completions')],
      ['NATS publish span', (s) => s.serviceName === 'switchyard-router' && s.kind === 'PRODUCER'],
      ['breaker consume span', (s) => s.serviceName === 'switchyard-breaker' && s.kind === 'CONSUMER'],
      // Issue 14: the Redis scripts and the NATS consume of the real services, by semantics (kind, db / messaging system), not by library span names.
      ['limiter Redis script span', (s) => s.serviceName === 'switchyard-limiter' && isRedisScript(s)],
      ['budget Redis script span', (s) => s.serviceName === 'switchyard-budget' && isRedisScript(s)],
      ['breaker Redis script span', (s) => s.serviceName === 'switchyard-breaker' && isRedisScript(s)],
      ['breaker NATS consume span', (s) => s.serviceName === 'switchyard-breaker' && s.kind === 'CONSUMER' && s.attributes['messaging.system'] === 'nats'],
      [
        'attempt span naming the answer and the upstream request',
        (s) =>
          s.serviceName === 'switchyard-router' &&
          s.attributes['gen_ai.provider.name'] === 'openai' &&
          /^chatcmpl-\w+$/.test(String(s.attributes['gen_ai.response.id'])) &&
          /^req_/.test(String(s.attributes['switchyard.upstream_request_id'])),
      ],
    ];
    const spans = await otlp.waitForSpans(
      (all) => required.every(([, match]) => all.some((s) => s.traceId === firstTraceId && match(s))),
      20_000,
    );
    for (const [what, match] of required) {
      expect({ what, found: spans.some((s) => s.traceId === firstTraceId && match(s)) }).toEqual({ what, found: true });
    }
    // The provider call is one span, its attempt (which carries the HTTP facts), not also an HTTP client span under it.
    expect(spans.filter((s) => s.serviceName === 'switchyard-router' && s.kind === 'CLIENT' && s.scope.includes('instrumentation-http'))).toEqual([]);
    // One call is one trace: every span exported so far (housekeeping kept running meanwhile) belongs to it.
    expect([...new Set(otlp.spans().map((s) => s.traceId))]).toEqual([firstTraceId]);
    const roots = otlp.spans().filter((s) => s.parentSpanId === '');
    expect(roots.map((s) => ({ service: s.serviceName, kind: s.kind }))).toEqual([{ service: 'switchyard-router', kind: 'SERVER' }]);
  });

  it('answers an Anthropic-backed route', async () => {
    const { response } = await complete(request({ route: 'claude', params: { maxTokens: 48, temperature: 0.2 } }));
    expect(response.servedBy).toMatchObject({ provider: 'anthropic', deployment: 'anthropic-fallback' });
    expect(response.content.length).toBeGreaterThan(0);
    expect(response.usage?.outputTokens).toBeGreaterThan(0);
    totalCost += response.costMicros;
  });

  it('streams deltas and ends with a complete final message', async () => {
    const events = await router.serverStream(
      RouterService,
      'StreamComplete',
      StreamCompleteRequestSchema,
      StreamCompleteResponseSchema,
      { ...request({ messages: [{ role: Role.USER, content: 'Stream me a short answer.' }] }) } as MessageInitShape<
        typeof StreamCompleteRequestSchema
      >,
      AUTH,
    );
    const deltas = events.filter((e) => e.event.case === 'delta');
    const finals = events.filter((e) => e.event.case === 'final');
    expect(deltas.length).toBeGreaterThan(1);
    expect(finals).toHaveLength(1);
    expect(events[events.length - 1].event.case).toBe('final');
    const final = finals[0].event.value as { usage?: { outputTokens: number }; costMicros: bigint; finishReason: number };
    expect(final.usage?.outputTokens).toBeGreaterThan(0);
    expect(final.finishReason).not.toBe(4 /* INCOMPLETE */);
    totalCost += final.costMicros;
  });

  it('records the spend in budget and the requests in limiter', async () => {
    await eventually(async () => ((await spent()) === totalCost ? true : undefined), `budget spent == ${totalCost}`);
    // One unary call and one stream on the OpenAI route, one call on the Anthropic route: one admission each.
    expect(await admittedRequests('openai-primary')).toBe(2n);
    expect(await admittedRequests('anthropic-fallback')).toBe(1n);
  });

  it('rejects bad input with the right status and a message naming the problem, charging nothing', async () => {
    const spentBefore = await spent();
    const admittedBefore = await admittedRequests('openai-primary');
    const expectError = async (req: MessageInitShape<typeof CompleteRequestSchema>, metadata: Record<string, string>, code: number, message: RegExp) => {
      const err = (await complete(req, metadata).then(
        () => undefined,
        (e: ServiceError) => e,
      )) as ServiceError | undefined;
      expect(err).toBeDefined();
      expect({ code: err!.code, details: err!.details }).toEqual({ code, details: expect.stringMatching(message) });
    };
    await expectError(request({ route: 'no-such-route' }), AUTH, GrpcStatus.INVALID_ARGUMENT, /^route: .*no-such-route/);
    await expectError(request({ messages: [] }), AUTH, GrpcStatus.INVALID_ARGUMENT, /messages/);
    await expectError(request({ params: { maxTokens: 40_000 } }), AUTH, GrpcStatus.INVALID_ARGUMENT, /max_tokens/);
    await expectError(request({ params: { maxTokens: 10_000_000 } }), AUTH, GrpcStatus.INVALID_ARGUMENT, /max_tokens/);
    await expectError(request(), {}, GrpcStatus.UNAUTHENTICATED, /API key/i);
    await expectError(request(), { 'x-api-key': 'sk-wrong' }, GrpcStatus.UNAUTHENTICATED, /API key/i);
    expect(await spent()).toBe(spentBefore);
    expect(await admittedRequests('openai-primary')).toBe(admittedBefore);
  });

  it('opens the breaker once when the primary keeps failing, and then serves from the fallback', async () => {
    await simulator.setScenario({ seed: 7, deployments: { 'gpt-4o': { faults: { unavailable: 1 } }, 'claude-sonnet-4-6': {} } });
    const countBefore = transitions.length;
    // Every call still succeeds (fallback) while the primary's failures accumulate.
    await eventually(
      async () => {
        const { response } = await complete(request({ messages: [{ role: Role.USER, content: `failing ${Date.now()}` }] }));
        expect(response.servedBy?.deployment).toBe('anthropic-fallback');
        return transitions.length > countBefore ? true : undefined;
      },
      'a health transition event',
      30_000,
    );
    const primaryCallsAtOpen = (await simulator.counters())['gpt-4o']?.received ?? 0;
    // The router's replica learns the new state from KV; the next calls skip the primary entirely.
    const skipped = await eventually(
      async () => {
        const { response } = await complete(request({ messages: [{ role: Role.USER, content: `after open ${Date.now()}` }] }));
        return response.attempts.every((a) => a.deployment?.deployment !== 'openai-primary') ? response : undefined;
      },
      'a call that skips the open primary',
      5_000,
    );
    expect(skipped.servedBy?.deployment).toBe('anthropic-fallback');
    expect(skipped.attempts).toHaveLength(1);
    const afterSkip = (await simulator.counters())['gpt-4o']?.received ?? 0;
    const { response: again } = await complete(request({ messages: [{ role: Role.USER, content: 'once more' }] }));
    expect(again.servedBy?.deployment).toBe('anthropic-fallback');
    expect((await simulator.counters())['gpt-4o']?.received ?? 0).toBe(afterSkip);
    expect(afterSkip - primaryCallsAtOpen).toBeLessThanOrEqual(4);
    const primaryEvents = transitions.slice(countBefore).filter((t) => t.ref?.deployment === 'openai-primary');
    expect(primaryEvents).toHaveLength(1);
    expect(primaryEvents[0]).toMatchObject({ from: CircuitState.CLOSED, to: CircuitState.OPEN });
  });

  it('started every trace at a request: no root span other than an incoming call', async () => {
    const roots = otlp.spans().filter((s) => s.parentSpanId === '');
    expect(roots.length).toBeGreaterThan(0);
    expect(roots.filter((s) => s.kind !== 'SERVER').map((s) => `${s.serviceName} ${s.kind} ${s.name}`)).toEqual([]);
    // Current GenAI conventions only: gen_ai.provider.name, never the deprecated gen_ai.system.
    expect(otlp.spans().filter((s) => 'gen_ai.system' in s.attributes).map((s) => s.name)).toEqual([]);
    expect(otlp.spans().some((s) => s.attributes['gen_ai.provider.name'] === 'anthropic')).toBe(true);
  });
});
