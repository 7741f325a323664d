import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashApiKey } from '@switchyard/config';
import {
  BudgetService,
  CacheStatus,
  ErrorClass,
  FinishReason,
  KeyKind,
  LimitKind,
  LimiterService,
  Role,
  RouterService,
} from '@switchyard/contracts';
import { createClient, parseGrpcError, status, type Client } from '@switchyard/grpc';
import type { RunningService } from '@switchyard/runtime';
import {
  freePort,
  spawnSimulator,
  startInMemoryTracing,
  startNats,
  startRedis,
  type InMemoryTracing,
  type ServerHandle,
  type SimulatorHandle,
} from '@switchyard/testing';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { CompleteRequestSchema, CompleteResponseSchema } from '@switchyard/contracts';
import { Client as GrpcClient, credentials, Metadata } from '@grpc/grpc-js';
// The peers run in-process through their production start(), so this test
// covers the real contracts between services rather than fakes of them.
// eslint-disable-next-line @nx/enforce-module-boundaries
import { start as startBreaker, loadConfig as loadBreakerConfig } from '@switchyard/breaker';
// eslint-disable-next-line @nx/enforce-module-boundaries
import { start as startBudget, loadConfig as loadBudgetConfig } from '@switchyard/budget';
// eslint-disable-next-line @nx/enforce-module-boundaries
import { start as startLimiter, loadConfig as loadLimiterConfig } from '@switchyard/limiter';
// eslint-disable-next-line @nx/enforce-module-boundaries
import { start as startCache, loadConfig as loadCacheConfig } from '@switchyard/cache';
import { loadConfig, start, TRACE_ID_HEADER } from '../src';

/**
 * The router against REAL peers (limiter, breaker, budget, cache started
 * in-process through their production start()), real Redis and NATS, and the
 * provider simulator spoken to by the official SDKs.
 */

const ACME_KEY = 'acme-secret-key';
const STRICT_KEY = 'strict-secret-key';
const PROBE_KEY = 'probe-secret-key';
const NOCAP_KEY = 'nocap-secret-key';
const BROKE_KEY = 'broke-secret-key';
const THROTTLED_KEY = 'throttled-secret-key';
/** Short freshness so the stale-if-error test need not wait long. */
const CACHE_TTL_MS = 1500;
const SIM_KEY = 'sim-provider-key';

const silent = { info() {}, warn() {}, error() {}, debug() {}, fatal() {}, trace() {}, child() { return silent; }, level: 'silent' };

function gatewayYaml(sim: string): string {
  return `
deployments:
  oai-primary:
    provider: openai
    baseUrl: ${sim}/v1
    model: gpt-4o-mini
    apiKey: env:SIM_PROVIDER_KEY
    limits: { rpm: 10000, tpm: 10000000 }
    price: { inputPerMillionUsd: 0.15, outputPerMillionUsd: 0.6 }
  anthropic-main:
    provider: anthropic
    baseUrl: ${sim}
    model: claude-haiku-4-5
    apiKey: env:SIM_PROVIDER_KEY
    price: { inputPerMillionUsd: 1, outputPerMillionUsd: 5 }
  flaky:
    provider: openai
    baseUrl: ${sim}/v1
    model: flaky-model
    apiKey: env:SIM_PROVIDER_KEY
    price: { inputPerMillionUsd: 2.5, outputPerMillionUsd: 10 }
  backup:
    provider: openai
    baseUrl: ${sim}/v1
    model: gpt-4o
    apiKey: env:SIM_PROVIDER_KEY
    price: { inputPerMillionUsd: 2.5, outputPerMillionUsd: 10 }
  flaky-stream:
    provider: openai
    baseUrl: ${sim}/v1
    model: flaky-model
    apiKey: env:SIM_PROVIDER_KEY
    price: { inputPerMillionUsd: 2.5, outputPerMillionUsd: 10 }
  flaky-dead:
    provider: openai
    baseUrl: ${sim}/v1
    model: flaky-model
    apiKey: env:SIM_PROVIDER_KEY
    price: { inputPerMillionUsd: 2.5, outputPerMillionUsd: 10 }
  dead-with-fallback:
    provider: openai
    baseUrl: ${sim}/v1
    model: flaky-model
    apiKey: env:SIM_PROVIDER_KEY
    price: { inputPerMillionUsd: 2.5, outputPerMillionUsd: 10 }
  flaky-breaker:
    provider: openai
    baseUrl: ${sim}/v1
    model: flaky-model
    apiKey: env:SIM_PROVIDER_KEY
    price: { inputPerMillionUsd: 2.5, outputPerMillionUsd: 10 }
  cut:
    provider: openai
    baseUrl: ${sim}/v1
    model: cut-model
    apiKey: env:SIM_PROVIDER_KEY
    price: { inputPerMillionUsd: 2.5, outputPerMillionUsd: 10 }
  tiny:
    provider: openai
    baseUrl: ${sim}/v1
    model: tiny-model
    apiKey: env:SIM_PROVIDER_KEY
    contextWindow: 30
    price: { inputPerMillionUsd: 0.1, outputPerMillionUsd: 0.1 }
  flip:
    provider: openai
    baseUrl: ${sim}/v1
    model: flip-model
    apiKey: env:SIM_PROVIDER_KEY
    price: { inputPerMillionUsd: 0.15, outputPerMillionUsd: 0.6 }
  rejecting:
    provider: anthropic
    baseUrl: ${sim}
    model: rejecting-model
    apiKey: env:SIM_PROVIDER_KEY
    price: { inputPerMillionUsd: 1, outputPerMillionUsd: 5 }
routes:
  chat-openai:
    candidates: [{ deployment: oai-primary }]
  chat-anthropic:
    candidates: [{ deployment: anthropic-main }]
  chat-fallback:
    cacheable: false
    candidates:
      - { deployment: flaky, priority: 0 }
      - { deployment: backup, priority: 1 }
  chat-stream-fallback:
    cacheable: false
    candidates:
      - { deployment: flaky-stream, priority: 0 }
      - { deployment: backup, priority: 1 }
  chat-dead:
    cacheable: false
    candidates: [{ deployment: flaky-dead }]
  chat-dead-fallback:
    candidates: [{ deployment: dead-with-fallback }]
    fallbackAnswer: "${FALLBACK_ANSWER}"
  chat-breaker:
    cacheable: false
    candidates: [{ deployment: flaky-breaker }]
  chat-cut:
    cacheable: false
    candidates: [{ deployment: cut }, { deployment: backup, priority: 1 }]
  chat-context:
    cacheable: false
    candidates: [{ deployment: tiny }, { deployment: backup, priority: 1 }]
  chat-tiny:
    cacheable: false
    candidates: [{ deployment: tiny }]
  chat-stale:
    candidates: [{ deployment: flip }]
  chat-rejecting:
    cacheable: false
    candidates: [{ deployment: rejecting }, { deployment: backup, priority: 1 }]
tenants:
  broke:
    apiKeys: [{ id: broke-main, sha256: ${hashApiKey(BROKE_KEY)} }]
    budgets: [{ period: month, limitUsd: 0.00001, hard: true }]
  throttled:
    apiKeys: [{ id: throttled-main, sha256: ${hashApiKey(THROTTLED_KEY)} }]
    limits: { rpm: 2 }
    budgets: [{ period: day, limitUsd: 50, hard: true }]
  nocap:
    apiKeys: [{ id: nocap-main, sha256: ${hashApiKey(NOCAP_KEY)} }]
  acme:
    apiKeys: [{ id: acme-main, sha256: ${hashApiKey(ACME_KEY)} }]
    limits: { rpm: 10000, tpm: 10000000 }
    budgets: [{ period: day, limitUsd: 50, hard: true }]
  strict:
    apiKeys: [{ id: strict-main, sha256: ${hashApiKey(STRICT_KEY)} }]
    limits: { rpm: 10000, tpm: 10000000 }
    budgets: [{ period: day, limitUsd: 5, hard: true }]
  probe:
    apiKeys: [{ id: probe-main, sha256: ${hashApiKey(PROBE_KEY)} }]
    limits: { rpm: 10000, tpm: 10000000 }
    budgets: [{ period: day, limitUsd: 5, hard: true }]
    routes: [chat-openai]
defaults:
  retry: { maxAttempts: 3, baseMs: 5, capMs: 20 }
  cache: { ttlMs: ${CACHE_TTL_MS}, staleTtlMs: 600000 }
`;
}

const scenario = {
  seed: 7,
  defaults: { limits: { rpm: 1_000_000, tpm: 1_000_000_000 } },
  deployments: {
    'gpt-4o-mini': {},
    'gpt-4o': {},
    'claude-haiku-4-5': {},
    'flaky-model': { faults: { unavailable: 1 }, retryAfterMs: 20 },
    'cut-model': { cutAfterChunks: 3, reply: { minTokens: 30, maxTokens: 40 } },
    'tiny-model': { contextWindow: 30 },
    'rejecting-model': { faults: { not_found: 1 } },
    'flip-model': {},
  },
};

/** Plain init shape accepted by both Complete and StreamComplete (the messages are field-for-field identical). */
interface Req {
  route: string;
  messages: { role: Role; content: string }[];
  params?: { maxTokens?: number; temperature?: number; topP?: number; stop?: string[] };
}

const FALLBACK_ANSWER = 'The assistant is taking a short break — please try again shortly';

function request(init: Partial<Req> = {}): Req {
  return { route: 'chat-openai', messages: [{ role: Role.USER, content: 'Say hello to the integration test.' }], params: { maxTokens: 64 }, ...init };
}

async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 5000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > until) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('router (real peers, Redis, NATS, simulator)', () => {
  let redis: ServerHandle;
  let nats: ServerHandle;
  let sim: SimulatorHandle;
  const services: RunningService[] = [];
  let router: RunningService;
  let client: Client<typeof RouterService.method>;
  let budget: Client<typeof BudgetService.method>;
  let limiter: Client<typeof LimiterService.method>;
  let tracing: InMemoryTracing;
  let configPath: string;
  const acme = { metadata: { 'x-api-key': ACME_KEY } };
  const strict = { metadata: { authorization: `Bearer ${STRICT_KEY}` } };
  const probe = { metadata: { authorization: `Bearer ${PROBE_KEY}` } };

  beforeAll(async () => {
    tracing = startInMemoryTracing();
    [redis, nats, sim] = await Promise.all([startRedis(), startNats({ jetstream: true }), spawnSimulator({ scenario })]);
    const dir = mkdtempSync(join(tmpdir(), 'sy-router-'));
    configPath = join(dir, 'gateway.yaml');
    writeFileSync(configPath, gatewayYaml(sim.url));
    const common = { GRPC_HOST: '127.0.0.1', GRPC_PORT: '0', REDIS_URL: redis.url, NATS_URL: nats.url, SWITCHYARD_CONFIG: configPath, LOG_LEVEL: 'silent' };
    const [lim, brk, bud, cache] = await Promise.all([
      startLimiter(loadLimiterConfig(common), { logger: silent as never }),
      startBreaker(loadBreakerConfig(common), { logger: silent as never }),
      startBudget(loadBudgetConfig(common), { logger: silent as never }),
      startCache(loadCacheConfig(common), { logger: silent as never }),
    ]);
    services.push(lim, brk, bud, cache);
    router = await start(
      loadConfig({
        ...common,
        SIM_PROVIDER_KEY: SIM_KEY,
        LIMITER_ADDR: `127.0.0.1:${lim.port}`,
        BREAKER_ADDR: `127.0.0.1:${brk.port}`,
        BUDGET_ADDR: `127.0.0.1:${bud.port}`,
        CACHE_ADDR: `127.0.0.1:${cache.port}`,
      }),
      { logger: silent },
    );
    client = createClient(RouterService, `127.0.0.1:${router.port}`, { defaultDeadlineMs: 15_000 });
    budget = createClient(BudgetService, `127.0.0.1:${bud.port}`, { defaultDeadlineMs: 5_000 });
    limiter = createClient(LimiterService, `127.0.0.1:${lim.port}`, { defaultDeadlineMs: 5_000 });
  }, 60_000);

  afterAll(async () => {
    for (const c of [client, budget, limiter]) c?.close();
    await router?.stop();
    await Promise.all(services.map((s) => s.stop()));
    await Promise.all([sim?.stop(), nats?.stop(), redis?.stop()]);
    await tracing?.shutdown();
  }, 60_000);

  it('completes through an OpenAI-backed route and reports how', async () => {
    const res = await client.complete(request({ messages: [{ role: Role.USER, content: 'openai route, unique 1' }] }), acme);
    expect(res.content.length).toBeGreaterThan(0);
    expect(res.finishReason).toBe(FinishReason.STOP);
    expect(res.servedBy).toMatchObject({ provider: 'openai', deployment: 'oai-primary', model: 'gpt-4o-mini' });
    expect(res.usage!.inputTokens).toBeGreaterThan(0);
    expect(res.usage!.outputTokens).toBeGreaterThan(0);
    expect(res.costMicros).toBeGreaterThan(0n);
    expect(res.attempts).toHaveLength(1);
    expect(res.attempts[0]!.errorClass).toBe(ErrorClass.UNSPECIFIED);
    expect(res.cacheStatus).toBe(CacheStatus.MISS);
    expect(res.requestId).toMatch(/^[0-9a-f-]{36}$/);
    // The simulator saw exactly the parameters we asked for.
    const seen = await sim.requests('gpt-4o-mini');
    expect(seen.at(-1)!.body).toMatchObject({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'openai route, unique 1' }] });
  });

  it('sends the trace id as initial metadata, and traces each provider attempt with GenAI attributes', async () => {
    tracing.reset();
    const raw = new GrpcClient(`127.0.0.1:${router.port}`, credentials.createInsecure());
    const md = new Metadata();
    md.set('x-api-key', ACME_KEY);
    let headers: Metadata | undefined;
    await new Promise<void>((resolve, reject) => {
      const call = raw.makeUnaryRequest(
        '/switchyard.router.v1.RouterService/Complete',
        (m: ReturnType<typeof create<typeof CompleteRequestSchema>>) => Buffer.from(toBinary(CompleteRequestSchema, m)),
        (b: Buffer) => fromBinary(CompleteResponseSchema, b),
        create(CompleteRequestSchema, request({ messages: [{ role: Role.USER, content: 'trace me' }] })),
        md,
        (err) => (err ? reject(err) : resolve()),
      );
      call.on('metadata', (m) => (headers = m));
    });
    raw.close();
    const traceId = String(headers?.get(TRACE_ID_HEADER)[0] ?? '');
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    const callSpan = tracing.spans().find((s) => s.name === 'router.Complete');
    const attemptSpan = tracing.spans().find((s) => s.name === 'chat gpt-4o-mini');
    expect(callSpan?.spanContext().traceId).toBe(traceId);
    expect(attemptSpan?.spanContext().traceId).toBe(traceId);
    expect(attemptSpan?.attributes).toMatchObject({ 'gen_ai.provider.name': 'openai', 'gen_ai.request.model': 'gpt-4o-mini', 'switchyard.deployment': 'oai-primary' });
    expect(attemptSpan?.attributes['gen_ai.usage.output_tokens']).toBeGreaterThan(0);
    // Current GenAI conventions, and the upstream request id on a successful attempt too (issue 14).
    expect(attemptSpan?.attributes).not.toHaveProperty('gen_ai.system');
    expect(attemptSpan?.attributes['switchyard.upstream_request_id']).toEqual(expect.stringMatching(/\S/));
    expect(attemptSpan?.attributes['gen_ai.response.id']).toEqual(expect.stringMatching(/^chatcmpl-\w+$/));
    // No prompt text in span attributes.
    expect(JSON.stringify(tracing.spans().map((s) => s.attributes))).not.toContain('trace me');
  });

  it('puts gen_ai.response.id and the upstream request id on streamed and Anthropic attempt spans too', async () => {
    tracing.reset();
    await client.complete(request({ route: 'chat-anthropic', messages: [{ role: Role.USER, content: 'anthropic ids' }] }), acme);
    for await (const msg of client.streamComplete(request({ messages: [{ role: Role.USER, content: 'stream ids' }] }), acme)) void msg;
    for await (const msg of client.streamComplete(request({ route: 'chat-anthropic', messages: [{ role: Role.USER, content: 'anthropic stream ids' }] }), acme)) void msg;
    const attempts = tracing.spans().filter((s) => s.name.startsWith('chat '));
    const ids = attempts.map((s) => ({ provider: s.attributes['gen_ai.provider.name'], id: s.attributes['gen_ai.response.id'], upstream: s.attributes['switchyard.upstream_request_id'] }));
    expect(ids).toEqual([
      { provider: 'anthropic', id: expect.stringMatching(/^msg_01\w+$/), upstream: expect.stringMatching(/^req_/) },
      { provider: 'openai', id: expect.stringMatching(/^chatcmpl-\w+$/), upstream: expect.stringMatching(/^req_/) },
      { provider: 'anthropic', id: expect.stringMatching(/^msg_01\w+$/), upstream: expect.stringMatching(/^req_/) },
    ]);
  });

  it('completes through an Anthropic-backed route', async () => {
    const res = await client.complete(request({ route: 'chat-anthropic', messages: [{ role: Role.SYSTEM, content: 'be brief' }, { role: Role.USER, content: 'anthropic route' }] }), acme);
    expect(res.content.length).toBeGreaterThan(0);
    expect(res.servedBy).toMatchObject({ provider: 'anthropic', deployment: 'anthropic-main' });
    expect(res.usage!.outputTokens).toBeGreaterThan(0);
    const seen = await sim.requests('claude-haiku-4-5');
    expect(seen.at(-1)!.body).toMatchObject({ model: 'claude-haiku-4-5', system: 'be brief', max_tokens: 64 });
  });

  it('streams deltas then exactly one final', async () => {
    const deltas: string[] = [];
    let finals = 0;
    let final: { finishReason: FinishReason; usage?: { outputTokens: number }; servedBy?: { deployment: string }; costMicros: bigint } | undefined;
    for await (const msg of client.streamComplete(request({ messages: [{ role: Role.USER, content: 'stream please' }] }), acme)) {
      if (msg.event.case === 'delta') {
        expect(finals).toBe(0);
        deltas.push(msg.event.value.text);
      } else if (msg.event.case === 'final') {
        finals++;
        final = msg.event.value;
      }
    }
    expect(deltas.length).toBeGreaterThan(1);
    expect(finals).toBe(1);
    expect(final!.finishReason).toBe(FinishReason.STOP);
    expect(final!.usage!.outputTokens).toBeGreaterThan(0);
    expect(final!.servedBy!.deployment).toBe('oai-primary');
    expect(final!.costMicros).toBeGreaterThan(0n);
  });

  it('fails over to the next priority when the primary answers 503 every time, listing every attempt', async () => {
    await sim.reset();
    const res = await client.complete(request({ route: 'chat-fallback' }), acme);
    expect(res.servedBy!.deployment).toBe('backup');
    expect(res.attempts.map((a) => [a.deployment!.deployment, ErrorClass[a.errorClass], a.httpStatus])).toEqual([
      ['flaky', 'OVERLOADED', 503],
      ['flaky', 'OVERLOADED', 503],
      ['flaky', 'OVERLOADED', 503],
      ['backup', 'UNSPECIFIED', 0],
    ]);
    const counters = await sim.counters();
    expect(counters['flaky-model']!.received).toBe(3);
    expect(counters['gpt-4o']!.received).toBe(1);
  });

  it('fails over transparently on a stream that fails before its first delta', async () => {
    const deltas: string[] = [];
    let final: { servedBy?: { deployment: string }; attempts: { deployment?: { deployment: string }; errorClass: ErrorClass }[]; finishReason: FinishReason } | undefined;
    for await (const msg of client.streamComplete(request({ route: 'chat-stream-fallback' }), acme)) {
      if (msg.event.case === 'delta') deltas.push(msg.event.value.text);
      else if (msg.event.case === 'final') final = msg.event.value;
    }
    expect(deltas.join('').length).toBeGreaterThan(0);
    expect(final!.finishReason).toBe(FinishReason.STOP);
    expect(final!.servedBy!.deployment).toBe('backup');
    expect(final!.attempts.map((a) => [a.deployment!.deployment, ErrorClass[a.errorClass]])).toEqual([
      ['flaky-stream', 'OVERLOADED'],
      ['flaky-stream', 'OVERLOADED'],
      ['flaky-stream', 'OVERLOADED'],
      ['backup', 'UNSPECIFIED'],
    ]);
  });

  it('ends an interrupted stream with an INCOMPLETE final (never a clean end) and accounts the partial output', async () => {
    const deltas: string[] = [];
    const finals: { finishReason: FinishReason; errorClass: ErrorClass; errorMessage: string; usage?: { inputTokens: number; outputTokens: number }; costMicros: bigint; servedBy?: { deployment: string } }[] = [];
    for await (const msg of client.streamComplete(request({ route: 'chat-cut', params: { maxTokens: 100 } }), acme)) {
      if (msg.event.case === 'delta') deltas.push(msg.event.value.text);
      else if (msg.event.case === 'final') finals.push(msg.event.value);
    }
    expect(deltas.length).toBeGreaterThan(0);
    expect(finals).toHaveLength(1);
    const final = finals[0]!;
    expect(final.finishReason).toBe(FinishReason.INCOMPLETE);
    expect(ErrorClass[final.errorClass]).toBe('STREAM_INTERRUPTED');
    expect(final.errorMessage.length).toBeGreaterThan(0);
    // No failover after output was sent: the backup never ran.
    expect(final.servedBy!.deployment).toBe('cut');
    expect(final.usage!.inputTokens).toBeGreaterThan(0);
    expect(final.usage!.outputTokens).toBeGreaterThan(0);
    expect(final.costMicros).toBeGreaterThan(0n);
  });

  it('names the answer on the span of an attempt whose stream broke after it began (gen_ai.response.id)', async () => {
    tracing.reset();
    for await (const msg of client.streamComplete(request({ route: 'chat-cut', params: { maxTokens: 100 } }), acme)) void msg;
    const broken = tracing.spans().find((s) => s.name.startsWith('chat ') && s.attributes['error.type'] === 'STREAM_INTERRUPTED');
    expect(broken?.attributes['gen_ai.response.id']).toEqual(expect.stringMatching(/^(chatcmpl-|msg_01)\w+$/));
  });

  it('when every candidate fails: UNAVAILABLE with RetryInfo and every attempt in ErrorInfo', async () => {
    const err = await client.complete(request({ route: 'chat-dead' }), acme).then(
      () => {
        throw new Error('expected an error');
      },
      (e: unknown) => parseGrpcError(e),
    );
    expect(err.code).toBe(status.UNAVAILABLE);
    expect(err.message).toMatch(/every candidate of route chat-dead failed/);
    expect(err.details.retryDelayMs).toBeGreaterThanOrEqual(0);
    const meta = err.details.errorInfo!.metadata;
    expect(err.details.errorInfo!.reason).toBe('ALL_CANDIDATES_FAILED');
    expect(meta.attempts).toBe('3');
    expect(meta.attempt_1).toMatch(/^deployment=flaky-dead class=OVERLOADED latency_ms=\d+ upstream_request_id=\S* http_status=503/);
    expect(meta.attempt_3).toMatch(/deployment=flaky-dead/);
  });

  it("serves the route's static fallback answer when every candidate failed and nothing stale exists: degraded, free, never cached", async () => {
    // What acme has spent once nothing is reserved any more (earlier calls' commits have landed).
    const budgetSpent = async () => {
      const b = await eventually(
        () => budget.getBudget({ tenant: 'acme' }),
        (r) => r.caps.every((c) => c.reservedMicros === 0n),
      );
      return b.caps.map((c) => c.spentMicros);
    };
    const spentBefore = await budgetSpent();
    for (let i = 0; i < 2; i++) {
      const res = await client.complete(request({ route: 'chat-dead-fallback', messages: [{ role: Role.USER, content: 'fallback please' }] }), acme);
      expect(res.content).toBe(FALLBACK_ANSWER);
      expect(res.degraded).toBe(true);
      expect(res.degradedReason).toMatch(/^static fallback answer/);
      expect(res.costMicros).toBe(0n);
      // Never cached: the second call is a MISS again, not a HIT of the fallback.
      expect(res.cacheStatus).toBe(CacheStatus.MISS);
      expect(res.servedBy).toBeUndefined();
    }
    const deltas: string[] = [];
    let final: { degraded: boolean; costMicros: bigint } | undefined;
    for await (const msg of client.streamComplete(request({ route: 'chat-dead-fallback', messages: [{ role: Role.USER, content: 'fallback please' }] }), acme)) {
      if (msg.event.case === 'delta') deltas.push(msg.event.value.text);
      else if (msg.event.case === 'final') final = msg.event.value;
    }
    expect(deltas.join('')).toBe(FALLBACK_ANSWER);
    expect(final!.degraded).toBe(true);
    expect(final!.costMicros).toBe(0n);
    expect(await budgetSpent()).toEqual(spentBefore);
  });

  it('skips, before sending, a candidate whose context window is smaller than the prompt, and answers from a larger one', async () => {
    await sim.reset();
    const long = 'word '.repeat(60);
    const res = await client.complete(request({ route: 'chat-context', messages: [{ role: Role.USER, content: long }] }), acme);
    expect(res.servedBy!.deployment).toBe('backup');
    // The 30-token window is known too small for a ~60-token prompt: no round trip to its 400.
    expect(res.attempts.map((a) => ErrorClass[a.errorClass])).toEqual(['UNSPECIFIED']);
    expect(await sim.requests('tiny-model')).toHaveLength(0);
  });

  it('answers FAILED_PRECONDITION naming the prompt size when no candidate has a large enough window', async () => {
    const long = 'word '.repeat(60);
    const err = await client.complete(request({ route: 'chat-tiny', messages: [{ role: Role.USER, content: long }] }), acme).then(
      () => {
        throw new Error('expected an error');
      },
      (e: unknown) => parseGrpcError(e),
    );
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.message).toMatch(/^prompt is too long: \d+ tokens > 30 maximum context length \(the largest context window among the route's candidates\)$/);
  });

  it('fails fast with the provider message on INVALID_REQUEST, without trying the fallback', async () => {
    await sim.reset();
    const err = await client.complete(request({ route: 'chat-rejecting' }), acme).then(
      () => {
        throw new Error('expected an error');
      },
      (e: unknown) => parseGrpcError(e),
    );
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.message).toMatch(/provider rejected the request: rejected by deployment rejecting: .*rejecting-model/);
    expect((await sim.counters())['gpt-4o']?.received ?? 0).toBe(0);
  });

  it('stops sending to a deployment once the breaker opened it (outcomes → breaker → KV → replica)', async () => {
    // 3 failures per call; the breaker opens at 5 consecutive, so the third call sees it OPEN.
    const attemptsOf = async () =>
      client.complete(request({ route: 'chat-breaker' }), acme).then(
        () => {
          throw new Error('expected an error');
        },
        (e: unknown) => parseGrpcError(e),
      );
    await attemptsOf();
    await attemptsOf();
    const err = await eventually(attemptsOf, (e) => e.details.errorInfo?.metadata.attempts === '0', 10_000);
    expect(err.code).toBe(status.UNAVAILABLE);
    expect(err.details.errorInfo!.metadata['skipped_flaky-breaker']).toBe('circuit open');
    expect(err.details.retryDelayMs).toBeGreaterThan(0);
  });

  it('refuses a call whose worst case exceeds a hard budget: RESOURCE_EXHAUSTED with QuotaFailure, nothing sent upstream', async () => {
    await sim.reset();
    const err = await client.complete(request(), { metadata: { 'x-api-key': BROKE_KEY } }).then(
      () => {
        throw new Error('expected an error');
      },
      (e: unknown) => parseGrpcError(e),
    );
    expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(err.message).toMatch(/^budget exceeded: /);
    expect(err.details.quotaFailure?.[0]?.subject).toMatch(/broke/);
    expect(err.details.errorInfo?.reason).toBe('BUDGET_EXCEEDED');
    expect((await sim.counters())['gpt-4o-mini']?.received ?? 0).toBe(0);
    // The limiter reservation taken in parallel was handed back.
    const q = await eventually(
      () => limiter.getQuota({ key: { kind: KeyKind.TENANT, id: 'broke' } }),
      (r) => (r.quota?.limits ?? []).every((l) => l.used === 0),
    );
    for (const limit of q.quota?.limits ?? []) expect([LimitKind[limit.kind], limit.used]).toEqual([LimitKind[limit.kind], 0]);
  });

  it("answers RESOURCE_EXHAUSTED with RetryInfo once the tenant's own rate limit is used up, and holds no budget", async () => {
    const throttled = { metadata: { 'x-api-key': THROTTLED_KEY } };
    let err: ReturnType<typeof parseGrpcError> | undefined;
    for (let i = 0; i < 6 && !err; i++) {
      err = await client.complete(request({ route: 'chat-openai', messages: [{ role: Role.USER, content: `throttle ${i}` }] }), throttled).then(
        () => undefined,
        (e: unknown) => parseGrpcError(e),
      );
    }
    expect(err?.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(err!.message).toMatch(/tenant throttled RPM exhausted/);
    expect(err!.details.retryDelayMs).toBeGreaterThan(0);
    expect(err!.details.quotaFailure?.length).toBeGreaterThan(0);
    expect(err!.details.errorInfo?.metadata.attempts).toBe('0');
    const b = await eventually(
      () => budget.getBudget({ tenant: 'throttled' }),
      (r) => r.caps.every((c) => c.reservedMicros === 0n),
    );
    expect(b.caps.length).toBeGreaterThan(0);
    expect(b.caps.every((c) => c.reservedMicros === 0n)).toBe(true);
  });

  it('records the spend with the budget service after a success', async () => {
    const res = await client.complete(request({ messages: [{ role: Role.USER, content: 'spend check' }] }), strict);
    const caps = await eventually(
      () => budget.getBudget({ tenant: 'strict' }),
      (b) => b.caps.some((c) => c.spentMicros > 0n && c.reservedMicros === 0n),
    );
    const day = caps.caps.find((c) => c.spentMicros > 0n)!;
    expect(day.spentMicros).toBeGreaterThanOrEqual(res.costMicros);
    expect(day.reservedMicros).toBe(0n);
  });

  describe('bad input is refused with a message naming the problem, and charges nothing', () => {
    // The probe tenant only ever sends bad input, so "nothing charged" is exact.
    const BAD_KEY = { metadata: { 'x-api-key': 'not-a-key' } };
    const cases: [string, Req, { metadata: Record<string, string> } | undefined, status, RegExp][] = [
      ['no API key', request(), undefined, status.UNAUTHENTICATED, /missing API key \(metadata x-api-key\)/],
      ['an unknown API key', request(), BAD_KEY, status.UNAUTHENTICATED, /unknown API key/],
      ['an unknown route', request({ route: 'nope' }), undefined, status.INVALID_ARGUMENT, /^route: unknown route "nope"/],
      ['a route the tenant may not use', request({ route: 'chat-anthropic' }), undefined, status.PERMISSION_DENIED, /may not use route "chat-anthropic"/],
      ['no messages', request({ messages: [] }), undefined, status.INVALID_ARGUMENT, /^messages: must contain at least one message/],
      ['a bad role', request({ messages: [{ role: Role.UNSPECIFIED, content: 'x' }] }), undefined, status.INVALID_ARGUMENT, /^messages\[0\]\.role: /],
      ['empty content', request({ messages: [{ role: Role.USER, content: '' }] }), undefined, status.INVALID_ARGUMENT, /^messages\[0\]\.content: must not be empty/],
      ['max_tokens too large', request({ params: { maxTokens: 1_000_000 } }), undefined, status.INVALID_ARGUMENT, /^params\.max_tokens: must be between 1 and 32768/],
      ['temperature out of range', request({ params: { maxTokens: 10, temperature: 3 } }), undefined, status.INVALID_ARGUMENT, /^params\.temperature: must be between 0 and 2/],
      ['top_p out of range', request({ params: { maxTokens: 10, topP: 1.5 } }), undefined, status.INVALID_ARGUMENT, /^params\.top_p: must be between 0 and 1/],
    ];

    it.each(cases)('%s', async (_name, req, creds, code, message) => {
      const opts = creds ?? (code === status.UNAUTHENTICATED ? {} : probe);
      const err = await client.complete(req, opts).then(
        () => {
          throw new Error('expected an error');
        },
        (e: unknown) => parseGrpcError(e),
      );
      expect(status[err.code]).toBe(status[code]);
      expect(err.message).toMatch(message);
      if (code === status.INVALID_ARGUMENT) expect(err.details.badRequest?.[0]?.field).toBe(message.source.replace(/^\^/, '').split(':')[0]!.replace(/\\/g, ''));
    });

    it('also refuses bad input on StreamComplete before anything is sent', async () => {
      const stream = client.streamComplete(request({ messages: [] }), probe);
      const err = await (async () => {
        for await (const _ of stream) throw new Error('no message expected');
      })().then(
        () => undefined,
        (e: unknown) => parseGrpcError(e),
      );
      expect(err?.code).toBe(status.INVALID_ARGUMENT);
    });

    it('charged nothing: no budget spent or reserved, no limiter usage', async () => {
      const b = await budget.getBudget({ tenant: 'probe' });
      expect(b.caps.length).toBeGreaterThan(0);
      for (const cap of b.caps) {
        expect(cap.spentMicros).toBe(0n);
        expect(cap.reservedMicros).toBe(0n);
      }
      const q = await limiter.getQuota({ key: { kind: KeyKind.TENANT, id: 'probe' } });
      for (const limit of q.quota?.limits ?? []) expect([LimitKind[limit.kind], limit.used]).toEqual([LimitKind[limit.kind], 0]);
    });
  });

  describe('when its own peers are down (DESIGN.md "When our own dependencies fail")', () => {
    let lonely: RunningService;
    let lonelyClient: Client<typeof RouterService.method>;
    beforeAll(async () => {
      const [deadBudget, deadLimiter, deadCache] = await Promise.all([freePort(), freePort(), freePort()]);
      lonely = await start(
        loadConfig({
          GRPC_HOST: '127.0.0.1',
          GRPC_PORT: '0',
          NATS_URL: nats.url,
          SWITCHYARD_CONFIG: configPath,
          SIM_PROVIDER_KEY: SIM_KEY,
          PEER_DEADLINE_MS: '200',
          LIMITER_ADDR: `127.0.0.1:${deadLimiter}`,
          BUDGET_ADDR: `127.0.0.1:${deadBudget}`,
          CACHE_ADDR: `127.0.0.1:${deadCache}`,
          BREAKER_ADDR: `127.0.0.1:${deadCache}`,
        }),
        { logger: silent },
      );
      lonelyClient = createClient(RouterService, `127.0.0.1:${lonely.port}`, { defaultDeadlineMs: 15_000 });
    });
    afterAll(async () => {
      lonelyClient?.close();
      await lonely?.stop();
    });

    it('refuses a tenant with hard caps when the budget service is unreachable (fail closed), naming the budget service', async () => {
      const started = Date.now();
      const err = await lonelyClient.complete(request(), acme).then(
        () => {
          throw new Error('expected an error');
        },
        (e: unknown) => parseGrpcError(e),
      );
      expect(err.code).toBe(status.UNAVAILABLE);
      expect(err.message).toMatch(/budget service unavailable .*tenant "acme" has hard caps/);
      expect(Date.now() - started).toBeLessThan(2000);
    });

    it('serves a tenant without caps, bypassing the cache and admitting from this router’s share of the limits', async () => {
      const res = await lonelyClient.complete(request(), { metadata: { 'x-api-key': NOCAP_KEY } });
      expect(res.content.length).toBeGreaterThan(0);
      expect(res.cacheStatus).toBe(CacheStatus.UNAVAILABLE);
      expect(res.attempts[0]!.note).toBe('limiter unavailable: local share');
      expect(res.degraded).toBe(true);
      expect(res.degradedReason).toMatch(/budget service unavailable/);
      expect(res.degradedReason).toMatch(/limiter unavailable: local share/);
    });
  });

  it('serves a repeated request from the cache: HIT, no cost, no attempts, no upstream call', async () => {
    const req = request({ messages: [{ role: Role.USER, content: 'cache me' }] });
    const first = await client.complete(req, acme);
    expect(first.cacheStatus).toBe(CacheStatus.MISS);
    const second = await eventually(
      () => client.complete(req, acme),
      (r) => r.cacheStatus === CacheStatus.HIT,
    );
    const upstreamBefore = (await sim.counters())['gpt-4o-mini']!.received;
    const third = await client.complete(req, acme);
    expect((await sim.counters())['gpt-4o-mini']!.received).toBe(upstreamBefore);
    for (const hit of [second, third]) {
      expect(hit.cacheStatus).toBe(CacheStatus.HIT);
      expect(hit.content).toBe(first.content);
      expect(hit.costMicros).toBe(0n);
      expect(hit.attempts).toHaveLength(0);
      expect(hit.servedBy!.deployment).toBe('oai-primary');
      expect(hit.requestId).not.toBe(first.requestId);
    }
  });

  it('serves a stale cached answer, marked degraded, when every candidate fails', async () => {
    const req = request({ route: 'chat-stale', messages: [{ role: Role.USER, content: 'stale if error' }] });
    const fresh = await client.complete(req, acme);
    await eventually(
      () => client.complete(req, acme),
      (r) => r.cacheStatus === CacheStatus.HIT,
    );
    await new Promise((r) => setTimeout(r, CACHE_TTL_MS + 200));
    await sim.setScenario({ ...scenario, deployments: { ...scenario.deployments, 'flip-model': { faults: { unavailable: 1 }, retryAfterMs: 10 } } });
    try {
      const res = await client.complete(req, acme);
      expect(res.cacheStatus).toBe(CacheStatus.STALE);
      expect(res.content).toBe(fresh.content);
      expect(res.degraded).toBe(true);
      expect(res.degradedReason).toBe('stale cache: all candidates failed');
      expect(res.attempts.map((a) => ErrorClass[a.errorClass])).toEqual(['OVERLOADED', 'OVERLOADED', 'OVERLOADED']);
      expect(res.cacheAgeMs).toBeGreaterThanOrEqual(CACHE_TTL_MS);
    } finally {
      await sim.setScenario(scenario);
    }
  });
});

