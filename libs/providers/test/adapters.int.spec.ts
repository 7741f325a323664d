import { countChatTokens, countTextTokens, loadTokenizer } from '@switchyard/tokens';
import { freePort, spawnSimulator, type SimulatorHandle } from '@switchyard/testing';
import {
  CancelledError,
  createProviderAdapter,
  ProviderError,
  TimeoutAbort,
  type ErrorClass,
  type ProviderAdapter,
  type ProviderKind,
} from '../src';
import { DEPLOYMENT, PROVIDERS, REQUEST, deploymentFor, drain, failure, streamFailure } from './fixtures';
import { startTcpProxy } from './tcp-proxy';

/**
 * Every error class × every provider, produced by the simulator over real
 * HTTP through the official SDKs. The expected flags are written out here
 * (not read from CLASS_POLICY) so a change to the policy table must be made
 * on purpose in two places.
 */
const FLAGS: Record<ErrorClass, { retryable: boolean; countsTowardBreaker: boolean; fallbackAllowed: boolean }> = {
  RATE_LIMITED: { retryable: true, countsTowardBreaker: false, fallbackAllowed: true },
  QUOTA_EXHAUSTED: { retryable: false, countsTowardBreaker: false, fallbackAllowed: true },
  OVERLOADED: { retryable: true, countsTowardBreaker: true, fallbackAllowed: true },
  SERVER_ERROR: { retryable: true, countsTowardBreaker: true, fallbackAllowed: true },
  TIMEOUT: { retryable: true, countsTowardBreaker: true, fallbackAllowed: true },
  NETWORK: { retryable: true, countsTowardBreaker: true, fallbackAllowed: true },
  CONTEXT_LENGTH: { retryable: false, countsTowardBreaker: false, fallbackAllowed: true },
  CONTENT_FILTER: { retryable: false, countsTowardBreaker: false, fallbackAllowed: false },
  AUTH: { retryable: false, countsTowardBreaker: false, fallbackAllowed: true },
  INVALID_REQUEST: { retryable: false, countsTowardBreaker: false, fallbackAllowed: false },
  STREAM_INTERRUPTED: { retryable: false, countsTowardBreaker: false, fallbackAllowed: false },
};

interface FaultCase {
  fault: string;
  errorClass: ErrorClass;
  /** No HTTP response at all, hence no upstream request id. */
  noResponse?: boolean;
}

const FAULTS: FaultCase[] = [
  { fault: 'rate_limit', errorClass: 'RATE_LIMITED' },
  { fault: 'insufficient_quota', errorClass: 'QUOTA_EXHAUSTED' },
  { fault: 'spend_limit', errorClass: 'QUOTA_EXHAUSTED' },
  { fault: 'unavailable', errorClass: 'OVERLOADED' },
  { fault: 'overloaded', errorClass: 'OVERLOADED' },
  { fault: 'server_error', errorClass: 'SERVER_ERROR' },
  { fault: 'bad_gateway', errorClass: 'SERVER_ERROR' },
  { fault: 'gateway_timeout', errorClass: 'SERVER_ERROR' },
  { fault: 'hang', errorClass: 'TIMEOUT', noResponse: true },
  { fault: 'reset', errorClass: 'NETWORK', noResponse: true },
  { fault: 'context_length', errorClass: 'CONTEXT_LENGTH' },
  { fault: 'content_policy', errorClass: 'CONTENT_FILTER' },
  { fault: 'content_filter', errorClass: 'CONTENT_FILTER' },
  { fault: 'unauthorized', errorClass: 'AUTH' },
  { fault: 'forbidden', errorClass: 'AUTH' },
  { fault: 'not_found', errorClass: 'INVALID_REQUEST' },
  { fault: 'too_large', errorClass: 'INVALID_REQUEST' },
];

const REQUEST_ID = /^(req_|chatcmpl|[0-9a-f]{8})/;
/** The provider's id of an answer (`gen_ai.response.id`): chatcmpl-… for the OpenAI family, msg_… for Anthropic. */
const RESPONSE_ID: Record<ProviderKind, RegExp> = {
  openai: /^chatcmpl-\w+$/,
  azure: /^chatcmpl-\w+$/,
  'openai-compatible': /^chatcmpl-\w+$/,
  anthropic: /^msg_01\w+$/,
};
const TIMEOUT_MS = 300;

let sim: SimulatorHandle;
const adapters = {} as Record<ProviderKind, ProviderAdapter>;

function scenarioFor(provider: ProviderKind, settings: object) {
  return { seed: 7, deployments: { [DEPLOYMENT[provider]]: { retryAfterMs: 1500, ...settings } } };
}

beforeAll(async () => {
  // The tokenizer builds its tables on first use (~1 s); building them here keeps that out of the timed assertions.
  loadTokenizer();
  sim = await spawnSimulator();
  for (const p of PROVIDERS) adapters[p] = createProviderAdapter(deploymentFor(p, sim.url));
});

afterAll(async () => {
  await sim?.stop();
});

describe.each(PROVIDERS)('%s adapter against the simulator', (provider) => {
  describe.each(FAULTS)('fault $fault → $errorClass', (c) => {
    beforeEach(async () => {
      await sim.setScenario(scenarioFor(provider, { faults: { [c.fault]: 1.0 } }));
    });

    const check = (err: ProviderError, afterDeltas: number) => {
      const cls = err.classification;
      expect(cls.errorClass).toBe(c.errorClass);
      expect({ retryable: cls.retryable, countsTowardBreaker: cls.countsTowardBreaker, fallbackAllowed: cls.fallbackAllowed }).toEqual(FLAGS[c.errorClass]);
      // retryAfterMs is exactly what the simulator sent (retry-after-ms), and absent when it sent nothing.
      const sent = (err.cause as { headers?: Headers } | undefined)?.headers?.get?.('retry-after-ms');
      if (sent) expect(cls.retryAfterMs).toBe(Number(sent));
      else expect(cls.retryAfterMs).toBeUndefined();
      if (c.errorClass === 'RATE_LIMITED' || c.errorClass === 'OVERLOADED') expect(cls.retryAfterMs).toBe(1500);
      if (c.errorClass === 'RATE_LIMITED') expect(cls.status).toBe(429);
      if (c.noResponse) expect(cls.upstreamRequestId).toBeUndefined();
      else expect(cls.upstreamRequestId).toMatch(REQUEST_ID);
      expect(err.deployment).toBe(`${provider}-test`);
      // content_filter on a 200 stream delivers half an answer first; everything else fails before text.
      if (c.fault !== 'content_filter') expect(afterDeltas).toBe(0);
    };

    it('complete()', async () => {
      const err = await failure(adapters[provider].complete(REQUEST, { timeoutMs: TIMEOUT_MS }));
      check(err, 0);
    });

    it('stream()', async () => {
      const { error, deltas } = await streamFailure(adapters[provider], REQUEST, { timeoutMs: TIMEOUT_MS });
      check(error, deltas.length);
      if (c.fault === 'content_filter') expect(deltas.length).toBeGreaterThan(0);
    });
  });

  describe('success', () => {
    beforeEach(async () => {
      await sim.setScenario(scenarioFor(provider, { limits: { rpm: 600, tpm: 1_000_000 } }));
      await sim.reset();
    });

    it('complete() returns the answer with the usage the simulator billed and rate-limit headers', async () => {
      const res = await adapters[provider].complete(REQUEST, { timeoutMs: 5000 });
      expect(res.content.length).toBeGreaterThan(0);
      expect(res.finishReason).toBe('stop');
      expect(res.model).toBe(DEPLOYMENT[provider]);
      expect(res.usage).toEqual({ inputTokens: countChatTokens(REQUEST.messages as { role: string; content: string }[], provider), outputTokens: countTextTokens(res.content) });
      expect(res.upstreamRequestId).toMatch(REQUEST_ID);
      expect(res.responseId).toMatch(RESPONSE_ID[provider]);
      expect(res.rateLimit?.ignored).toEqual([]);
      expect(res.rateLimit?.requests).toMatchObject({ remaining: 599 });
      if (provider !== 'anthropic') expect(res.rateLimit?.requests?.limit).toBe(600);
      expect(res.rateLimit?.requests?.resetAt).toBeGreaterThanOrEqual(Date.now() - 1000);
      expect(res.rateLimit?.tokens?.remaining).toBeLessThan(1_000_000);
    });

    it('stream() yields the same text as deltas and one end chunk with the billed usage', async () => {
      const whole = await adapters[provider].complete(REQUEST);
      const r = await drain(adapters[provider].stream(REQUEST, { timeoutMs: 5000, firstTokenTimeoutMs: 2000, idleTimeoutMs: 2000 }));
      expect(r.error).toBeUndefined();
      expect(r.deltas.length).toBeGreaterThan(1);
      expect(r.deltas.join('')).toBe(whole.content);
      expect(r.end).toMatchObject({ type: 'end', finishReason: 'stop', usage: whole.usage });
      expect(r.end?.usageEstimated).toBeUndefined();
      expect(r.end?.upstreamRequestId).toMatch(REQUEST_ID);
      expect(r.end?.responseId).toMatch(RESPONSE_ID[provider]);
      // One id per answer: the stream's is its own, not the previous call's.
      expect(r.end?.responseId).not.toBe(whole.responseId);
    });

    it('a stop sequence ends the answer before it; the adapter names it when the provider does (Anthropic), whole and streamed', async () => {
      // The simulator's replies begin "Simulated answer".
      const req = { ...REQUEST, stop: [' answer'] };
      const whole = await adapters[provider].complete(req);
      const r = await drain(adapters[provider].stream(req, { timeoutMs: 5000, firstTokenTimeoutMs: 2000, idleTimeoutMs: 2000 }));
      expect(whole).toMatchObject({ content: 'Simulated', finishReason: 'stop' });
      expect(r.deltas.join('')).toBe('Simulated');
      const named = provider === 'anthropic' ? ' answer' : undefined;
      expect(whole.stopSequence).toBe(named);
      expect(r.end).toMatchObject({ type: 'end', finishReason: 'stop' });
      expect(r.end?.stopSequence).toBe(named);
    });

    it('maps maxTokens to a length stop', async () => {
      const res = await adapters[provider].complete({ ...REQUEST, maxTokens: 3 });
      expect(res).toMatchObject({ finishReason: 'length', usage: { outputTokens: 3 } });
    });
  });

  describe('streams that break', () => {
    it('a connection cut after 3 deltas → STREAM_INTERRUPTED (by NETWORK), never a clean end', async () => {
      await sim.setScenario(scenarioFor(provider, { cutAfterChunks: 3 }));
      const { error, deltas } = await streamFailure(adapters[provider], REQUEST);
      expect(deltas).toHaveLength(3);
      expect(error.classification).toMatchObject({ errorClass: 'STREAM_INTERRUPTED', interruptedBy: 'NETWORK', retryable: false, fallbackAllowed: false });
      expect(error.classification.upstreamRequestId).toMatch(REQUEST_ID);
      // The answer had begun, so the failure names it (gen_ai.response.id on the failed attempt's span).
      expect(error.classification.responseId).toMatch(RESPONSE_ID[provider]);
    });

    it('an SSE error event after 2 deltas → STREAM_INTERRUPTED', async () => {
      await sim.setScenario(scenarioFor(provider, { streamErrorAfterChunks: 2 }));
      const { error, deltas } = await streamFailure(adapters[provider], REQUEST);
      expect(deltas).toHaveLength(2);
      expect(error.classification).toMatchObject({
        errorClass: 'STREAM_INTERRUPTED',
        interruptedBy: provider === 'anthropic' ? 'OVERLOADED' : 'SERVER_ERROR',
        retryable: false,
      });
      expect(error.classification.upstreamRequestId).toMatch(REQUEST_ID);
    });

    it('an SSE error event before any text is classified by its own type (safe to retry)', async () => {
      await sim.setScenario(scenarioFor(provider, { streamErrorAfterChunks: 0 }));
      const { error, deltas } = await streamFailure(adapters[provider], REQUEST);
      expect(deltas).toHaveLength(0);
      expect(error.classification).toMatchObject({ errorClass: provider === 'anthropic' ? 'OVERLOADED' : 'SERVER_ERROR', retryable: true });
    });

    it('a cut before any text → NETWORK (retryable: nothing reached the caller)', async () => {
      await sim.setScenario(scenarioFor(provider, { cutAfterChunks: 0 }));
      const { error } = await streamFailure(adapters[provider], REQUEST);
      expect(error.classification).toMatchObject({ errorClass: 'NETWORK', retryable: true, countsTowardBreaker: true });
    });
  });

  describe('timeouts and cancellation', () => {
    it('first-token timeout: slow first token → TIMEOUT', async () => {
      await sim.setScenario(scenarioFor(provider, { latency: { firstToken: 2000 } }));
      const started = Date.now();
      const { error } = await streamFailure(adapters[provider], REQUEST, { firstTokenTimeoutMs: 200 });
      expect(Date.now() - started).toBeLessThan(1500);
      expect(error.classification).toMatchObject({ errorClass: 'TIMEOUT', retryable: true, countsTowardBreaker: true });
      expect((error.cause as { name?: string })?.name ?? '').not.toBe('');
      expect(error.classification.message).toContain('first-token timeout after 200 ms');
    });

    it('idle timeout: a stall between tokens after text → STREAM_INTERRUPTED by TIMEOUT', async () => {
      await sim.setScenario(scenarioFor(provider, { latency: { firstToken: 0, perToken: 2000 } }));
      const { error, deltas } = await streamFailure(adapters[provider], REQUEST, { idleTimeoutMs: 200 });
      expect(deltas.length).toBeGreaterThanOrEqual(1);
      expect(error.classification).toMatchObject({ errorClass: 'STREAM_INTERRUPTED', interruptedBy: 'TIMEOUT', countsTowardBreaker: true });
      expect(error.classification.message).toContain('idle timeout after 200 ms');
    });

    it('a caller cancel is a CancelledError, not a ProviderError', async () => {
      await sim.setScenario(scenarioFor(provider, { faults: { hang: 1.0 } }));
      const ac = new AbortController();
      const p = adapters[provider].complete(REQUEST, { signal: ac.signal });
      setTimeout(() => ac.abort(new Error('client went away')), 50);
      await expect(p).rejects.toBeInstanceOf(CancelledError);
    });

    it('a caller abort whose reason is a TimeoutAbort (the router deadline) classifies TIMEOUT', async () => {
      await sim.setScenario(scenarioFor(provider, { faults: { hang: 1.0 } }));
      const ac = new AbortController();
      const p = failure(adapters[provider].complete(REQUEST, { signal: ac.signal }));
      setTimeout(() => ac.abort(new TimeoutAbort('total', 50)), 50);
      expect((await p).classification.errorClass).toBe('TIMEOUT');
    });
  });

  it('x-should-retry overrides the class default both ways', async () => {
    await sim.setScenario(scenarioFor(provider, { faults: { server_error: 1.0 }, shouldRetry: false }));
    expect((await failure(adapters[provider].complete(REQUEST))).classification).toMatchObject({ errorClass: 'SERVER_ERROR', retryable: false });
    await sim.setScenario(scenarioFor(provider, { faults: { not_found: 1.0 }, shouldRetry: true }));
    expect((await failure(adapters[provider].complete(REQUEST))).classification).toMatchObject({ errorClass: 'INVALID_REQUEST', retryable: true });
  });

  it('a prompt over the configured context window → CONTEXT_LENGTH (no injected fault)', async () => {
    await sim.setScenario(scenarioFor(provider, { contextWindow: 50 }));
    const long = { ...REQUEST, messages: [{ role: 'user' as const, content: 'weather '.repeat(200) }] };
    const err = await failure(adapters[provider].complete(long));
    expect(err.classification).toMatchObject({ errorClass: 'CONTEXT_LENGTH', status: 400, retryable: false, fallbackAllowed: true });
  });

  it('bad neutral input fails before any HTTP call, naming the field', async () => {
    await sim.reset();
    const err = await failure(adapters[provider].complete({ ...REQUEST, maxTokens: 0 }));
    expect(err.classification).toMatchObject({ errorClass: 'INVALID_REQUEST', retryable: false });
    expect(err.message).toContain('maxTokens: must be a positive integer');
    const badTimeout = await failure(adapters[provider].complete(REQUEST, { timeoutMs: 2 ** 31 }));
    expect(badTimeout.message).toContain('timeoutMs: must be a positive number of milliseconds');
    const counters = await sim.counters();
    expect(counters[DEPLOYMENT[provider]]?.received ?? 0).toBe(0);
  });
});

describe('upstream parameters on the wire', () => {
  const req = { ...REQUEST, temperature: 0.3, topP: 0.9, stop: ['END'], user: 'tenant-a' };

  beforeEach(async () => {
    await sim.setScenario({ seed: 7 });
    await sim.reset();
  });

  it('openai: max_completion_tokens, temperature, top_p, stop, user; streams ask for usage', async () => {
    await adapters.openai.complete(req);
    await drain(adapters.openai.stream(req));
    const [plain, streamed] = (await sim.requests(DEPLOYMENT.openai)).map((r) => r.body as Record<string, unknown>);
    expect(plain).toEqual({ model: 'gpt-4o-mini', messages: req.messages, max_completion_tokens: 40, temperature: 0.3, top_p: 0.9, stop: ['END'], user: 'tenant-a' });
    expect(streamed).toMatchObject({ stream: true, stream_options: { include_usage: true } });
  });

  it('openai-compatible: max_tokens', async () => {
    await adapters['openai-compatible'].complete(req);
    const [body] = (await sim.requests(DEPLOYMENT['openai-compatible'])).map((r) => r.body as Record<string, unknown>);
    expect(body).toMatchObject({ max_tokens: 40 });
    expect(body).not.toHaveProperty('max_completion_tokens');
  });

  it('azure: deployment in the path, api-key header, api-version query', async () => {
    await adapters.azure.complete(req);
    const [record] = await sim.requests(DEPLOYMENT.azure);
    expect(record!['path']).toBe('/openai/deployments/azure-gpt-4o/chat/completions');
    expect(record!.headers?.['api-key']).toBe('sk-test-key-0001');
    expect(record!.headers?.['authorization']).toBeUndefined();
  });

  it('anthropic: system lifted out, stop_sequences, metadata.user_id', async () => {
    await adapters.anthropic.complete(req);
    const [record] = await sim.requests(DEPLOYMENT.anthropic);
    expect(record!.body).toEqual({
      model: 'claude-haiku-4-5',
      max_tokens: 40,
      system: 'You are a terse assistant.',
      messages: [{ role: 'user', content: 'Describe the weather on a quiet morning.' }],
      temperature: 0.3,
      top_p: 0.9,
      stop_sequences: ['END'],
      metadata: { user_id: 'tenant-a' },
    });
    // SDK 1.x sends the key as a Bearer token; older ones as x-api-key. Either way it must arrive.
    expect(String(record!.headers?.['x-api-key'] ?? record!.headers?.['authorization'])).toContain('sk-test-key-0001');
  });

  it('SDK retries are off: one 500 is one upstream request', async () => {
    for (const p of PROVIDERS) {
      await sim.setScenario({ seed: 7, deployments: { [DEPLOYMENT[p]]: { faults: { server_error: 1.0 } } } });
      await sim.reset();
      await failure(adapters[p].complete(REQUEST));
      expect((await sim.counters())[DEPLOYMENT[p]]).toMatchObject({ received: 1 });
    }
  });
});

describe('connections', () => {
  it.each(PROVIDERS)('%s: a timed-out request releases its socket (seen from the wire)', async (provider) => {
    const proxy = await startTcpProxy(sim.port);
    try {
      await sim.setScenario(scenarioFor(provider, { faults: { hang: 1.0 } }));
      const adapter = createProviderAdapter({ ...deploymentFor(provider, `http://127.0.0.1:${proxy.port}`), name: 'via-proxy' });
      const err = await failure(adapter.complete(REQUEST, { timeoutMs: 200 }));
      expect(err.classification.errorClass).toBe('TIMEOUT');
      expect(proxy.accepted()).toBe(1);
      await proxy.waitUntilIdle(2000);
      expect(proxy.open()).toBe(0);
    } finally {
      await proxy.close();
    }
  });

  it('a consumer that stops reading a stream early releases the socket', async () => {
    const proxy = await startTcpProxy(sim.port);
    try {
      await sim.setScenario(scenarioFor('anthropic', { latency: { firstToken: 0, perToken: 100 } }));
      const adapter = createProviderAdapter({ ...deploymentFor('anthropic', `http://127.0.0.1:${proxy.port}`), name: 'via-proxy' });
      for await (const chunk of adapter.stream(REQUEST)) {
        expect(chunk.type).toBe('delta');
        break;
      }
      await proxy.waitUntilIdle(2000);
      expect(proxy.open()).toBe(0);
    } finally {
      await proxy.close();
    }
  });

  it('reuses kept-alive connections across calls instead of one per call', async () => {
    const proxy = await startTcpProxy(sim.port);
    try {
      await sim.setScenario({ seed: 7 });
      const adapter = createProviderAdapter({ ...deploymentFor('openai', `http://127.0.0.1:${proxy.port}`), name: 'via-proxy' });
      for (let i = 0; i < 10; i++) await adapter.complete(REQUEST);
      // undici may open a second socket while the first is being returned to the pool; never one per call.
      expect(proxy.accepted()).toBeLessThanOrEqual(2);
    } finally {
      await proxy.close();
    }
  });

  it.each(PROVIDERS)('%s: connection refused → NETWORK with the socket code', async (provider) => {
    const port = await freePort();
    const adapter = createProviderAdapter(deploymentFor(provider, `http://127.0.0.1:${port}`));
    const err = await failure(adapter.complete(REQUEST, { timeoutMs: 2000 }));
    expect(err.classification).toMatchObject({ errorClass: 'NETWORK', providerCode: 'ECONNREFUSED', retryable: true, countsTowardBreaker: true });
  });
});
