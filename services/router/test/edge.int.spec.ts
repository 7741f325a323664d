import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { request } from 'node:http';
import { connect } from 'node:net';
import { startInMemoryTracing, type InMemoryTracing } from '@switchyard/testing';
import { hashApiKey } from '@switchyard/config';
import { createProviderAdapter, type ProviderAdapter } from '@switchyard/providers';
import { SIM_KEY, startStack, type Stack } from './stack';

/**
 * Issue 13: the HTTP edge against the real stack (peers, Redis, NATS, the
 * simulator), spoken to by the official openai and @anthropic-ai/sdk clients
 * with only their base URL changed.
 */

const KEY = 'edge-key';
const NARROW_KEY = 'edge-narrow-key';
const POOR_KEY = 'edge-poor-key';
const RPM1_KEY = 'edge-rpm1-key';

function gatewayYaml(sim: string): string {
  const dep = (provider: string, model: string) => `
    provider: ${provider}
    baseUrl: ${provider === 'anthropic' ? sim : `${sim}/v1`}
    model: ${model}
    apiKey: env:SIM_PROVIDER_KEY
    price: { inputPerMillionUsd: 1, outputPerMillionUsd: 2 }`;
  return `
deployments:
  fast: ${dep('openai', 'fast-model')}
  claude: ${dep('anthropic', 'claude-model')}
  down: ${dep('openai', 'down-model')}
  limited: ${dep('openai', 'limited-model')}
  over: ${dep('anthropic', 'over-model')}
  cut: ${dep('openai', 'cut-model')}
  slow: ${dep('openai', 'slow-model')}
  flaky: ${dep('openai', 'flaky-model')}
    breaker: { consecutiveFailures: 2, openMs: 60000 }
  cached: ${dep('openai', 'cached-model')}
  acut: ${dep('anthropic', 'acut-model')}
routes:
  chat: { cacheable: false, candidates: [{ deployment: fast }] }
  claude: { cacheable: false, candidates: [{ deployment: claude }] }
  chat-down: { cacheable: false, candidates: [{ deployment: down }] }
  chat-limited: { cacheable: false, candidates: [{ deployment: limited }] }
  claude-over: { cacheable: false, candidates: [{ deployment: over }] }
  chat-cut: { cacheable: false, candidates: [{ deployment: cut }] }
  claude-cut: { cacheable: false, candidates: [{ deployment: acut }] }
  chat-breaker: { cacheable: false, candidates: [{ deployment: flaky }, { deployment: fast, priority: 1 }] }
  chat-slow: { cacheable: false, candidates: [{ deployment: slow }] }
  chat-cached: { candidates: [{ deployment: cached }] }
  chat-failover: { cacheable: false, candidates: [{ deployment: down }, { deployment: fast, priority: 1 }] }
tenants:
  acme:
    apiKeys: [{ id: acme-main, sha256: ${hashApiKey(KEY)} }]
  narrow:
    apiKeys: [{ id: narrow-main, sha256: ${hashApiKey(NARROW_KEY)} }]
    routes: [chat]
  rpm1:
    apiKeys: [{ id: rpm1-main, sha256: ${hashApiKey(RPM1_KEY)} }]
    limits: { rpm: 1 }
  poor:
    apiKeys: [{ id: poor-main, sha256: ${hashApiKey(POOR_KEY)} }]
    budgets: [{ period: day, limitUsd: 0.00001, hard: true }]
defaults:
  retry: { maxAttempts: 3, baseMs: 20, capMs: 100 }
  breaker: { consecutiveFailures: 1000 }
`;
}

const scenario = {
  seed: 13,
  defaults: { limits: { rpm: 1_000_000, tpm: 1_000_000_000 } },
  deployments: {
    'fast-model': {},
    'claude-model': {},
    'down-model': { faults: { unavailable: 1 }, retryAfterMs: 50 },
    'limited-model': { faults: { rate_limit: 1 }, retryAfterMs: 3000 },
    'over-model': { faults: { overloaded: 1 }, retryAfterMs: 50 },
    'slow-model': { latency: { firstToken: 50, perToken: 100 }, reply: { minTokens: 40, maxTokens: 40 } },
    'cached-model': {},
    'flaky-model': { faults: { unavailable: 1 }, retryAfterMs: 10 },
    'cut-model': { streamErrorAfterChunks: 2, reply: { minTokens: 20, maxTokens: 24 } },
    'acut-model': { streamErrorAfterChunks: 2, reply: { minTokens: 20, maxTokens: 24 } },
  },
};

const received = async (stack: Stack, model: string) => (await stack.sim.counters())[model]?.received ?? 0;

describe('HTTP edge: the official SDKs with only the base URL changed', () => {
  let stack: Stack;
  let base: string;
  let openai: OpenAI;
  let anthropic: Anthropic;
  let tracing: InMemoryTracing;

  beforeAll(async () => {
    tracing = startInMemoryTracing();
    stack = await startStack(gatewayYaml, scenario);
    base = `http://127.0.0.1:${stack.router.httpPort}`;
    openai = new OpenAI({ baseURL: `${base}/v1`, apiKey: KEY, maxRetries: 0 });
    anthropic = new Anthropic({ baseURL: base, apiKey: KEY, maxRetries: 0 });
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
    await tracing?.shutdown();
  }, 60_000);

  describe('OpenAI dialect', () => {
    it('chat.completions.create answers with usage and the x-switchyard-* headers', async () => {
      const { data, response } = await openai.chat.completions
        .create({ model: 'chat', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello' }], max_tokens: 32 })
        .withResponse();
      expect(data.object).toBe('chat.completion');
      expect(data.model).toBe('chat');
      expect(data.choices[0]!.message.content).toEqual(expect.any(String));
      expect(data.choices[0]!.message.content!.length).toBeGreaterThan(0);
      expect(data.choices[0]!.finish_reason).toMatch(/^(stop|length)$/);
      expect(data.usage!.prompt_tokens).toBeGreaterThan(0);
      expect(data.usage!.total_tokens).toBe(data.usage!.prompt_tokens + data.usage!.completion_tokens);
      expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
      expect(response.headers.get('x-switchyard-served-by')).toBe('fast');
      expect(response.headers.get('x-switchyard-attempts')).toBe('1');
      expect(response.headers.get('x-switchyard-cache')).toBe('bypass');
      expect(response.headers.get('x-switchyard-degraded')).toBe('false');
      expect(Number(response.headers.get('x-switchyard-cost-micros'))).toBeGreaterThan(0);
      expect(data.id).toBe(`chatcmpl-${response.headers.get('x-switchyard-request-id')}`);
    });

    it('streams as SSE: text deltas, a finish_reason, the include_usage chunk, and the facts as trailers', async () => {
      const stream = await openai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'stream please' }], max_tokens: 32, stream: true, stream_options: { include_usage: true } });
      let text = '';
      const finishes: string[] = [];
      let usage: OpenAI.CompletionUsage | undefined | null;
      for await (const chunk of stream) {
        for (const c of chunk.choices) {
          text += c.delta.content ?? '';
          if (c.finish_reason) finishes.push(c.finish_reason);
        }
        if (chunk.usage) usage = chunk.usage;
      }
      expect(text.length).toBeGreaterThan(0);
      expect(finishes).toHaveLength(1);
      expect(usage!.completion_tokens).toBeGreaterThan(0);
    });

    it('fails over before the first byte without the caller seeing it', async () => {
      const { data, response } = await openai.chat.completions.create({ model: 'chat-failover', messages: [{ role: 'user', content: 'hi' }], max_tokens: 16 }).withResponse();
      expect(data.choices[0]!.message.content!.length).toBeGreaterThan(0);
      expect(response.headers.get('x-switchyard-served-by')).toBe('fast');
      expect(Number(response.headers.get('x-switchyard-attempts'))).toBeGreaterThan(1);
    });

    it('a stream that fails after its first byte ends with an error event and no [DONE]', async () => {
      const stream = await openai.chat.completions.create({ model: 'chat-cut', messages: [{ role: 'user', content: 'long answer' }], max_tokens: 64, stream: true });
      let text = '';
      const read = (async () => {
        for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
      })();
      await expect(read).rejects.toThrow(/stream interrupted/);
      expect(text.length).toBeGreaterThan(0);
      const raw = await fetch(`${base}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'chat-cut', messages: [{ role: 'user', content: 'again' }], max_tokens: 64, stream: true }),
      });
      const body = await raw.text();
      expect(body).toContain('data: {"error":');
      expect(body).not.toContain('[DONE]');
    });

    it('models.list and models.retrieve show the routes this key may use', async () => {
      const all = [];
      for await (const m of openai.models.list()) all.push(m.id);
      expect(all).toEqual(expect.arrayContaining(['chat', 'claude', 'chat-down']));
      const narrow = new OpenAI({ baseURL: `${base}/v1`, apiKey: NARROW_KEY, maxRetries: 0 });
      const mine = [];
      for await (const m of narrow.models.list()) mine.push(m.id);
      expect(mine).toEqual(['chat']);
      expect((await narrow.models.retrieve('chat')).id).toBe('chat');
      await expect(narrow.models.retrieve('claude')).rejects.toBeInstanceOf(OpenAI.NotFoundError);
      await expect(narrow.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'x' }] })).rejects.toBeInstanceOf(OpenAI.PermissionDeniedError);
    });

    it('the Anthropic SDK lists and retrieves the same routes in Anthropic\'s model shape', async () => {
      const listed = [];
      for await (const m of anthropic.models.list()) listed.push(m);
      expect(listed.map((m) => m.id)).toEqual(expect.arrayContaining(['chat', 'claude', 'chat-down']));
      expect(listed[0]).toEqual({ type: 'model', id: listed[0]!.id, display_name: listed[0]!.id, created_at: '1970-01-01T00:00:00Z' });
      const page = await anthropic.models.list();
      expect({ has_more: page.has_more, first_id: page.first_id, last_id: page.last_id }).toEqual({ has_more: false, first_id: listed[0]!.id, last_id: listed.at(-1)!.id });
      expect(await anthropic.models.retrieve('claude')).toMatchObject({ type: 'model', id: 'claude', display_name: 'claude' });
      await expect(anthropic.models.retrieve('nope')).rejects.toBeInstanceOf(Anthropic.NotFoundError);
    });

    it('a model id that is not valid percent-encoding gets a 400 naming it, and the router keeps serving', async () => {
      for (const bad of ['%ZZ', '%E0%A4%A']) {
        const res = await fetch(`${base}/v1/models/${bad}`);
        expect(res.status).toBe(400);
        expect(((await res.json()) as { error: { message: string; param: string } }).error).toMatchObject({ param: 'model', message: expect.stringMatching(/not valid percent-encoding/) });
      }
      expect((await openai.models.retrieve('chat')).id).toBe('chat');
    });

    it('auth and unknown models raise the SDK typed errors', async () => {
      const stranger = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'nope', maxRetries: 0 });
      await expect(stranger.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'x' }] })).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
      const err = await openai.chat.completions.create({ model: 'gpt-nonexistent', messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.NotFoundError);
      expect((err as InstanceType<typeof OpenAI.APIError>).param).toBe('model');
    });

    it('a 429 raises RateLimitError carrying our retry-after and retry-after-ms', async () => {
      const err = (await openai.chat.completions
        .create({ model: 'chat-limited', messages: [{ role: 'user', content: 'x' }] }, { headers: { 'x-switchyard-timeout-ms': '1000' } })
        .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
      expect(err).toBeInstanceOf(OpenAI.RateLimitError);
      expect(Number(err.headers?.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(Number(err.headers?.get('retry-after-ms'))).toBeGreaterThan(0);
    });

    it('every candidate down: a 503 APIError; the SDK does not multiply the router\'s own retries', async () => {
      const before = await received(stack, 'down-model');
      const retrying = new OpenAI({ baseURL: `${base}/v1`, apiKey: KEY, maxRetries: 2 });
      const err = (await retrying.chat.completions.create({ model: 'chat-down', messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
      expect(err).toBeInstanceOf(OpenAI.APIError);
      expect(err.status).toBe(503);
      expect(Number(err.headers?.get('retry-after'))).toBeGreaterThanOrEqual(0);
      // The router already retried (maxAttempts 3): x-should-retry false keeps the SDK from tripling it.
      expect(err.headers?.get('x-should-retry')).toBe('false');
      expect(err.headers?.get('x-switchyard-request-id')).toMatch(/^[0-9a-f-]{36}$/);
      expect((await received(stack, 'down-model')) - before).toBe(3);
    });

    it('the breaker opens on a failing deployment: later calls skip it without an attempt (fewer x-switchyard-attempts, no upstream request)', async () => {
      const ask = () => openai.chat.completions.create({ model: 'chat-breaker', messages: [{ role: 'user', content: 'x' }], max_tokens: 8 }).withResponse();
      let attempts = '';
      for (let i = 0; i < 40 && attempts !== '1'; i++) {
        const { response } = await ask();
        expect(response.headers.get('x-switchyard-served-by')).toBe('fast');
        attempts = response.headers.get('x-switchyard-attempts') ?? '';
        if (attempts !== '1') await new Promise((r) => setTimeout(r, 100));
      }
      expect(attempts).toBe('1');
      const before = await received(stack, 'flaky-model');
      const { response } = await ask();
      expect(response.headers.get('x-switchyard-attempts')).toBe('1');
      expect((await received(stack, 'flaky-model')) - before).toBe(0);
    });

    it('bad JSON, wrong types, n > 1 and oversized bodies get clear 400/413 naming the problem', async () => {
      const post = (body: string, headers: Record<string, string> = {}) =>
        fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', ...headers }, body });
      const badJson = await post('{"model": "chat",');
      expect(badJson.status).toBe(400);
      expect(((await badJson.json()) as { error: { message: string } }).error.message).toMatch(/not valid JSON/);
      const wrongType = await openai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'x' }], temperature: 'hot' as never }).catch((e: unknown) => e);
      expect(wrongType).toBeInstanceOf(OpenAI.BadRequestError);
      expect((wrongType as InstanceType<typeof OpenAI.APIError>).param).toBe('temperature');
      const n2 = await openai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'x' }], n: 2 }).catch((e: unknown) => e);
      expect((n2 as InstanceType<typeof OpenAI.APIError>).param).toBe('n');
      const unknown = await post(JSON.stringify({ model: 'chat', messages: [], temprature: 1 }));
      expect(((await unknown.json()) as { error: { param: string } }).error.param).toBe('temprature');
      const ok = JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'x' }], max_tokens: 4 });
      const patch = await post(ok, { 'content-type': 'application/json-patch+json' });
      expect([patch.status, ((await patch.json()) as { error: { message: string } }).error.message]).toEqual([400, expect.stringMatching(/content-type must be application\/json/)]);
      expect((await post(ok, { 'content-type': 'application/json; charset=utf-8' })).status).toBe(200);
      const sci = await post(ok, { 'x-switchyard-timeout-ms': '1e3' });
      expect([sci.status, ((await sci.json()) as { error: { param: string } }).error.param]).toEqual([400, 'x-switchyard-timeout-ms']);
      const basic = await post(ok, { authorization: 'Basic dXNlcjpwYXNz' });
      expect([basic.status, ((await basic.json()) as { error: { message: string } }).error.message]).toEqual([401, expect.stringMatching(/only "Bearer <key>" is accepted.*"Basic"/)]);
      const badImage = await post(JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,***not base64***' } }] }] }));
      expect([badImage.status, ((await badImage.json()) as { error: { param: string } }).error.param]).toEqual([400, 'messages[0].content[0].image_url.url']);
      const wrongMethod = await fetch(`${base}/v1/chat/completions`, { headers: { authorization: `Bearer ${KEY}` } });
      expect([wrongMethod.status, wrongMethod.headers.get('allow')]).toEqual([405, 'POST, OPTIONS']);
      // OPTIONS names the methods; HEAD is GET without its body.
      const options = await fetch(`${base}/v1/chat/completions`, { method: 'OPTIONS' });
      expect([options.status, options.headers.get('allow')]).toEqual([204, 'POST, OPTIONS']);
      const head = await fetch(`${base}/v1/models`, { method: 'HEAD', headers: { authorization: `Bearer ${KEY}` } });
      expect([head.status, head.headers.get('content-type'), await head.text()]).toEqual([200, 'application/json', '']);
      expect((await fetch(`${base}/v1/models`, { method: 'DELETE' })).headers.get('allow')).toBe('GET, HEAD, OPTIONS');
      expect((await fetch(`${base}/v1/no-such-thing`)).status).toBe(404);
      const { router } = await stack.startRouter({ HTTP_MAX_BODY_BYTES: '2048' });
      const big = await fetch(`http://127.0.0.1:${router.httpPort}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'x'.repeat(4096) }] }),
      });
      expect(big.status).toBe(413);
      expect(((await big.json()) as { error: { message: string } }).error.message).toMatch(/exceeds the limit of 2048 bytes/);
    });
  });

  describe('Anthropic dialect', () => {
    /** A streamed /v1/messages call read as the raw SSE text, for what the SDK would hide. */
    const rawMessagesStream = async (body: object): Promise<string> =>
      (
        await fetch(`${base}/v1/messages`, {
          method: 'POST',
          headers: { 'x-api-key': KEY, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
          body: JSON.stringify(body),
        })
      ).text();

    it('messages.create answers with content blocks and usage', async () => {
      const msg = await anthropic.messages.create({ model: 'claude', max_tokens: 32, system: 'be brief', messages: [{ role: 'user', content: [{ type: 'text', text: 'hello' }] }] });
      expect(msg.type).toBe('message');
      expect(msg.content[0]!.type).toBe('text');
      expect(msg.stop_reason).toMatch(/^(end_turn|max_tokens)$/);
      expect(msg.usage.input_tokens).toBeGreaterThan(0);
    });

    it('message_start counts the prompt (LangChain reads input tokens only there), close to the provider\'s count in message_delta', async () => {
      const body = await rawMessagesStream({ model: 'claude', max_tokens: 16, stream: true, messages: [{ role: 'user', content: 'count my prompt, please, in the first event' }] });
      const data = (name: string) => JSON.parse(new RegExp(`event: ${name}\\ndata: (.*)\\n`).exec(body)![1]!);
      const atStart = (data('message_start') as { message: { usage: { input_tokens: number } } }).message.usage.input_tokens;
      const atEnd = (data('message_delta') as { usage: { input_tokens: number } }).usage.input_tokens;
      expect(atEnd).toBeGreaterThan(0);
      expect(atStart).toBeGreaterThan(0);
      expect(Math.abs(atStart - atEnd)).toBeLessThanOrEqual(Math.max(3, atEnd * 0.2));
    });

    it('messages.stream delivers the events in Anthropic order and assembles the message', async () => {
      const stream = anthropic.messages.stream({ model: 'claude', max_tokens: 32, messages: [{ role: 'user', content: 'stream' }] });
      const types: string[] = [];
      stream.on('streamEvent', (e) => types.push(e.type));
      let text = '';
      stream.on('text', (t) => (text += t));
      const final = await stream.finalMessage();
      expect(types[0]).toBe('message_start');
      expect(types[1]).toBe('content_block_start');
      expect(types.slice(-3)).toEqual(['content_block_stop', 'message_delta', 'message_stop']);
      expect(final.content[0]).toEqual({ type: 'text', text });
      expect(final.usage.output_tokens).toBeGreaterThan(0);
    });

    it('a matched stop sequence is stop_reason stop_sequence naming it, whole and streamed', async () => {
      // The simulator's replies begin "Simulated answer".
      const body = { model: 'claude', max_tokens: 32, stop_sequences: ['zzz', ' answer'], messages: [{ role: 'user' as const, content: 'stop early' }] };
      const msg = await anthropic.messages.create(body);
      expect(msg).toMatchObject({ content: [{ type: 'text', text: 'Simulated' }], stop_reason: 'stop_sequence', stop_sequence: ' answer' });
      const stream = anthropic.messages.stream(body);
      const final = await stream.finalMessage();
      expect(final).toMatchObject({ content: [{ type: 'text', text: 'Simulated' }], stop_reason: 'stop_sequence', stop_sequence: ' answer' });
      // No match: a plain end_turn, stop_sequence null.
      const plain = await anthropic.messages.create({ ...body, stop_sequences: ['zzz'] });
      expect(plain).toMatchObject({ stop_reason: 'end_turn', stop_sequence: null });
    });

    it('separate text blocks stay apart: system blocks one per line, user blocks as blocks', async () => {
      const before = (await stack.sim.requests('claude-model')).length;
      await anthropic.messages.create({
        model: 'claude',
        max_tokens: 16,
        system: [{ type: 'text', text: 'be brief.' }, { type: 'text', text: 'Answer in French.' }],
        messages: [{ role: 'user', content: [{ type: 'text', text: 'first part' }, { type: 'text', text: 'second part' }] }],
      });
      const sent = (await stack.sim.requests('claude-model')).slice(before)[0]!.body as { system: unknown; messages: { content: unknown }[] };
      expect(sent.system).toBe('be brief.\nAnswer in French.');
      expect(sent.messages[0]!.content).toEqual([{ type: 'text', text: 'first part' }, { type: 'text', text: 'second part' }]);
    });

    it('an overloaded route raises the typed OverloadedError (529)', async () => {
      await expect(anthropic.messages.create({ model: 'claude-over', max_tokens: 16, messages: [{ role: 'user', content: 'x' }] })).rejects.toBeInstanceOf(Anthropic.InternalServerError);
      const err = await anthropic.messages.create({ model: 'claude-over', max_tokens: 16, messages: [{ role: 'user', content: 'x' }] }).catch((e: unknown) => e);
      expect((err as InstanceType<typeof Anthropic.APIError>).status).toBe(529);
      expect(((err as InstanceType<typeof Anthropic.APIError>).error as { error: { type: string } }).error.type).toBe('overloaded_error');
    });

    it('a stream cut after its first byte ends with event: error and no message_stop', async () => {
      const body = await rawMessagesStream({ model: 'claude-cut', max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'long' }] });
      expect(body).toContain('event: message_start');
      expect(body).toContain('event: error');
      expect(body).not.toContain('message_stop');
      // Anthropic's own mid-stream overload (the simulator's error event) keeps its type for the caller.
      const error = JSON.parse(/event: error\ndata: (.*)\n/.exec(body)![1]!) as { type: string; error: { type: string; message: string } };
      expect(error).toMatchObject({ type: 'error', error: { type: 'overloaded_error', message: expect.stringContaining('stream interrupted after output was sent') } });
    });

    it('errors in Anthropic shape: missing max_tokens names it; count_tokens answers our estimate', async () => {
      const err = await anthropic.messages.create({ model: 'claude', messages: [{ role: 'user', content: 'x' }] } as never).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Anthropic.BadRequestError);
      expect(((err as InstanceType<typeof Anthropic.APIError>).error as { error: { type: string; message: string } }).error).toEqual({ type: 'invalid_request_error', message: 'max_tokens: is required' });
      const counted = await anthropic.messages.countTokens({ model: 'claude', messages: [{ role: 'user', content: 'how many tokens is this?' }] });
      expect(counted.input_tokens).toBeGreaterThan(5);
    });

    it('count_tokens is what the call would reserve: images and tool definitions included, never below what the provider then counts', async () => {
      const body = {
        model: 'claude',
        messages: [{ role: 'user' as const, content: [{ type: 'image' as const, source: { type: 'url' as const, url: 'https://example.com/cat.png' } }, { type: 'text' as const, text: 'what is this?' }] }],
        tools: [{ name: 'describe', description: 'Describe an image', input_schema: { type: 'object' as const, properties: { caption: { type: 'string' } } } }],
      };
      const textOnly = await anthropic.messages.countTokens({ model: 'claude', messages: [{ role: 'user', content: 'what is this?' }] });
      const counted = await anthropic.messages.countTokens(body);
      const answered = await anthropic.messages.create({ ...body, max_tokens: 16 });
      expect(counted.input_tokens).toBeGreaterThan(textOnly.input_tokens + 1000);
      expect(counted.input_tokens).toBeGreaterThanOrEqual(answered.usage.input_tokens);
      await expect(anthropic.messages.countTokens({ model: 'chat-nope', messages: [{ role: 'user', content: 'x' }] })).rejects.toBeInstanceOf(Anthropic.NotFoundError);
    });
  });

  describe('Switchyard controls as headers', () => {
    it('x-switchyard-cache: a repeat is answered without upstream (hit, or coalesced while the first is stored); bypass goes upstream again', async () => {
      const before = await received(stack, 'cached-model');
      const ask = { model: 'chat-cached', messages: [{ role: 'user' as const, content: `cache me ${Math.random()}` }], max_tokens: 16 };
      const first = await openai.chat.completions.create(ask).withResponse();
      expect(first.response.headers.get('x-switchyard-cache')).toBe('miss');
      const again = await openai.chat.completions.create(ask).withResponse();
      expect(again.response.headers.get('x-switchyard-cache')).toMatch(/^(hit|coalesced)$/);
      expect(again.data.choices[0]!.message.content).toBe(first.data.choices[0]!.message.content);
      expect((await received(stack, 'cached-model')) - before).toBe(1);
      const bypass = await openai.chat.completions.create(ask, { headers: { 'x-switchyard-cache': 'bypass' } }).withResponse();
      expect(bypass.response.headers.get('x-switchyard-cache')).toBe('bypass');
      expect((await received(stack, 'cached-model')) - before).toBe(2);
      const bad = await openai.chat.completions.create(ask, { headers: { 'x-switchyard-cache': 'sometimes' } }).catch((e: unknown) => e);
      expect((bad as InstanceType<typeof OpenAI.APIError>).param).toBe('x-switchyard-cache');
    });

    it('Idempotency-Key: a repeated call runs once upstream and gets the same answer', async () => {
      const before = await received(stack, 'fast-model');
      const ask = { model: 'chat', messages: [{ role: 'user' as const, content: 'once only' }], max_tokens: 16 };
      const key = `idem-${Math.random()}`;
      const a = await openai.chat.completions.create(ask, { headers: { 'Idempotency-Key': key } });
      const b = await openai.chat.completions.create(ask, { headers: { 'Idempotency-Key': key } });
      expect(b.choices[0]!.message.content).toBe(a.choices[0]!.message.content);
      expect((await received(stack, 'fast-model')) - before).toBe(1);
    });

    it('traceparent is continued: the call joins the caller\'s trace, whose id comes back', async () => {
      const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
      const { response } = await openai.chat.completions
        .create({ model: 'chat', messages: [{ role: 'user', content: 'traced' }], max_tokens: 8 }, { headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } })
        .withResponse();
      expect(response.headers.get('x-switchyard-trace-id')).toBe(traceId);
      expect(tracing.spans().find((s) => s.name === 'router.Complete' && s.spanContext().traceId === traceId)).toBeDefined();
    });

    it('a budget refusal is a 429 RateLimitError (budget_exceeded), nothing sent upstream', async () => {
      const before = await received(stack, 'fast-model');
      const poor = new OpenAI({ baseURL: `${base}/v1`, apiKey: POOR_KEY, maxRetries: 0 });
      const err = await poor.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'x' }], max_tokens: 64 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.RateLimitError);
      expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe('budget_exceeded');
      expect((await received(stack, 'fast-model')) - before).toBe(0);
    });

    it('the tenant\'s own rate limit (limiter) is a 429 RateLimitError with retry-after, nothing sent upstream', async () => {
      const limited = new OpenAI({ baseURL: `${base}/v1`, apiKey: RPM1_KEY, maxRetries: 0 });
      const ask = () => limited.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'x' }], max_tokens: 8 }, { headers: { 'x-switchyard-timeout-ms': '800' } });
      await ask();
      const before = await received(stack, 'fast-model');
      const err = (await ask().catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
      expect(err).toBeInstanceOf(OpenAI.RateLimitError);
      expect(Number(err.headers?.get('retry-after-ms'))).toBeGreaterThan(1000);
      expect((await received(stack, 'fast-model')) - before).toBe(0);
    });

    it('a streamed answer carries the x-switchyard-* facts as HTTP trailers, and one request id in its header, its chunks and its trailer', async () => {
      const streamed = (path: string, body: object) =>
        new Promise<{ requestId: string; text: string; trailers: NodeJS.Dict<string> }>((resolve, reject) => {
          const req = request({ host: '127.0.0.1', port: stack.router.httpPort, method: 'POST', path, headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' } }, (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (d: string) => (text += d));
            res.on('end', () => resolve({ requestId: String(res.headers['x-request-id']), text, trailers: res.trailers }));
          });
          req.on('error', reject);
          req.end(JSON.stringify(body));
        });
      const openaiStream = await streamed('/v1/chat/completions', { model: 'chat', messages: [{ role: 'user', content: 'trailers' }], max_tokens: 16, stream: true });
      expect(openaiStream.trailers).toMatchObject({ 'x-switchyard-served-by': 'fast', 'x-switchyard-attempts': '1', 'x-switchyard-degraded': 'false' });
      expect(openaiStream.trailers['x-switchyard-request-id']).toBe(openaiStream.requestId);
      const ids = new Set([...openaiStream.text.matchAll(/"id":"([^"]+)"/g)].map((m) => m[1]));
      expect([...ids]).toEqual([`chatcmpl-${openaiStream.requestId}`]);

      const anthropicStream = await streamed('/v1/messages', { model: 'claude', max_tokens: 16, messages: [{ role: 'user', content: 'trailers' }], stream: true });
      expect(anthropicStream.trailers['x-switchyard-request-id']).toBe(anthropicStream.requestId);
      expect(anthropicStream.text).toContain(`"id":"msg_${anthropicStream.requestId.replace(/-/g, '')}"`);
    });

    it('a client that stalls while sending its headers is cut after HTTP_HEADERS_TIMEOUT_MS', async () => {
      const { router } = await stack.startRouter({ HTTP_HEADERS_TIMEOUT_MS: '300' });
      const started = Date.now();
      const answer = await new Promise<string>((resolve) => {
        const socket = connect(router.httpPort, '127.0.0.1', () => socket.write('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n'));
        let text = '';
        socket.on('data', (d) => (text += d.toString()));
        socket.on('close', () => resolve(text));
      });
      expect(answer).toMatch(/^HTTP\/1.1 408/);
      expect(JSON.parse(answer.split('\r\n\r\n')[1]!)).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', message: expect.stringContaining('HTTP_HEADERS_TIMEOUT_MS') } });
      expect(Date.now() - started).toBeLessThan(2000);
    });

    it('headers too large, or a request node:http cannot parse, get a JSON error both SDKs read', async () => {
      const huge = await fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: { 'x-filler': 'x'.repeat(40_000), 'content-type': 'application/json' }, body: '{}' });
      expect(huge.status).toBe(431);
      expect(await huge.json()).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', message: 'request headers too large' } });
      const garbled = await new Promise<string>((resolve) => {
        const socket = connect(Number(new URL(base).port), '127.0.0.1', () => socket.write('NOT-HTTP \x00\r\n\r\n'));
        let text = '';
        socket.on('data', (d) => (text += d.toString()));
        socket.on('close', () => resolve(text));
      });
      expect(garbled).toMatch(/^HTTP\/1.1 400 Bad Request/);
      expect(JSON.parse(garbled.split('\r\n\r\n')[1]!).error.message).toMatch(/^malformed HTTP request/);
    });

    it('x-switchyard-timeout-ms becomes the call deadline: 504 when it passes', async () => {
      const started = Date.now();
      const err = await openai.chat.completions
        .create({ model: 'chat-slow', messages: [{ role: 'user', content: 'slow' }], max_tokens: 64 }, { headers: { 'x-switchyard-timeout-ms': '300' } })
        .catch((e: unknown) => e);
      expect([(err as InstanceType<typeof OpenAI.APIError>).status, (err as Error).message]).toEqual([504, expect.stringMatching(/deadline/)]);
      expect(Date.now() - started).toBeLessThan(2000);
    });

    it('a client that disconnects mid-stream cancels the call upstream', async () => {
      const aborted: string[] = [];
      const real = createProviderAdapter({ name: 'slow', provider: 'openai', baseUrl: `${stack.sim.url}/v1`, model: 'slow-model', apiKey: SIM_KEY });
      const watched: ProviderAdapter = {
        ...real,
        name: real.name,
        provider: real.provider,
        model: real.model,
        complete: (req, o) => real.complete(req, o),
        stream: (req, o) => {
          o?.signal?.addEventListener('abort', () => aborted.push('slow'), { once: true });
          return real.stream(req, o);
        },
      };
      const { router } = await stack.startRouter({}, { adapters: new Map([['slow', watched]]) });
      await new Promise<void>((resolve, reject) => {
        const req = request(
          { host: '127.0.0.1', port: router.httpPort, method: 'POST', path: '/v1/chat/completions', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' } },
          (res) => {
            res.once('data', () => {
              req.destroy();
              resolve();
            });
          },
        );
        req.on('error', () => undefined);
        req.end(JSON.stringify({ model: 'chat-slow', messages: [{ role: 'user', content: 'long' }], max_tokens: 64, stream: true }));
        setTimeout(() => reject(new Error('no first chunk')), 5000);
      });
      for (let i = 0; i < 100 && aborted.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(aborted).toEqual(['slow']);
    });
  });

  // These need the router's mapping of tools/response_format (issue 12, branch i12-router);
  // on a branch without it they fail (the router maps text-only messages).
  describe('tools and json_schema through the edge (needs i12-router wiring)', () => {
    const weather = { type: 'function' as const, function: { name: 'get_weather', description: 'Current weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } };

    it('openai: a forced tool call comes back as tool_calls, and a second turn with its result answers', async () => {
      const first = await openai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: [weather], tool_choice: { type: 'function', function: { name: 'get_weather' } }, max_tokens: 64 });
      const call = first.choices[0]!.message.tool_calls![0]! as { id: string; function: { name: string; arguments: string } };
      expect(first.choices[0]!.finish_reason).toBe('tool_calls');
      expect(call.function.name).toBe('get_weather');
      expect(JSON.parse(call.function.arguments)).toEqual(expect.any(Object));
      const second = await openai.chat.completions.create({
        model: 'chat',
        messages: [
          { role: 'user', content: 'Weather in Paris?' },
          { role: 'assistant', content: null, tool_calls: [{ id: call.id, type: 'function', function: call.function }] },
          { role: 'tool', tool_call_id: call.id, content: '{"temp_c":18}' },
        ],
        tools: [weather],
        max_tokens: 64,
      });
      expect(second.choices[0]!.message.content!.length).toBeGreaterThan(0);
    });

    it('openai: a json_schema response_format answers JSON matching the schema', async () => {
      const res = await openai.chat.completions.create({
        model: 'chat',
        messages: [{ role: 'user', content: 'a city' }],
        response_format: { type: 'json_schema', json_schema: { name: 'city', schema: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] }, strict: true } },
        max_tokens: 64,
      });
      expect(JSON.parse(res.choices[0]!.message.content!)).toEqual({ name: expect.any(String) });
    });

    it('anthropic: output_config.format json_schema answers JSON text matching the schema, on an Anthropic or an OpenAI deployment', async () => {
      const schema = { type: 'object', properties: { name: { type: 'string' } }, required: ['name'], additionalProperties: false };
      for (const model of ['claude', 'chat']) {
        const msg = await anthropic.messages.create({ model, max_tokens: 64, messages: [{ role: 'user', content: 'a city' }], output_config: { format: { type: 'json_schema', schema } } });
        expect(msg.stop_reason).toBe('end_turn');
        expect(msg.content).toHaveLength(1);
        expect(JSON.parse((msg.content[0] as { text: string }).text)).toEqual({ name: expect.any(String) });
      }
      const bad = await anthropic.messages
        .create({ model: 'claude', max_tokens: 64, messages: [{ role: 'user', content: 'x' }], output_config: { format: { type: 'json_schema', schema: 'nope' as never } } })
        .catch((e: unknown) => e);
      expect(bad).toBeInstanceOf(Anthropic.BadRequestError);
      expect(((bad as InstanceType<typeof Anthropic.APIError>).error as { error: { message: string } }).error.message).toMatch(/^output_config\.format\.schema/);
    });

    it('openai: streamed tool calls assemble in the SDK', async () => {
      const stream = openai.chat.completions.stream({ model: 'chat', messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: [weather], tool_choice: 'required', max_tokens: 64 });
      const final = await stream.finalChatCompletion();
      expect(final.choices[0]!.message.tool_calls![0]!).toMatchObject({ type: 'function', function: { name: 'get_weather' } });
    });

    it('images: an inline PNG as an OpenAI image_url part and as an Anthropic image block are answered', async () => {
      // 1×1 transparent PNG
      const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=';
      const o = await openai.chat.completions.create({ model: 'chat', max_tokens: 32, messages: [{ role: 'user', content: [{ type: 'text', text: 'what is this?' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } }] }] });
      expect(o.choices[0]!.message.content!.length).toBeGreaterThan(0);
      const a = await anthropic.messages.create({ model: 'claude', max_tokens: 32, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: png } }, { type: 'text', text: 'what is this?' }] }] });
      expect(a.content[0]!.type).toBe('text');
      expect(a.usage.input_tokens).toBeGreaterThan(0);
    });

    it('anthropic: messages.create and messages.stream with tools give tool_use blocks', async () => {
      const tools = [{ name: 'get_weather', description: 'Current weather', input_schema: { type: 'object' as const, properties: { city: { type: 'string' } }, required: ['city'] } }];
      const msg = await anthropic.messages.create({ model: 'claude', max_tokens: 64, tools, tool_choice: { type: 'tool', name: 'get_weather' }, messages: [{ role: 'user', content: 'Weather in Paris?' }] });
      expect(msg.stop_reason).toBe('tool_use');
      const use = msg.content.find((b) => b.type === 'tool_use')!;
      expect(use).toMatchObject({ type: 'tool_use', name: 'get_weather' });
      const streamed = await anthropic.messages.stream({ model: 'claude', max_tokens: 64, tools, tool_choice: { type: 'any' }, messages: [{ role: 'user', content: 'Weather in Paris?' }] }).finalMessage();
      expect(streamed.content.find((b) => b.type === 'tool_use')).toMatchObject({ name: 'get_weather', input: expect.any(Object) });
    });
  });

  describe('lifecycle', () => {
    it('stop() lets an in-flight HTTP call finish, then closes the listener', async () => {
      const { router } = await stack.startRouter();
      const edge = new OpenAI({ baseURL: `http://127.0.0.1:${router.httpPort}/v1`, apiKey: KEY, maxRetries: 0 });
      const inFlight = edge.chat.completions.create({ model: 'chat-slow', messages: [{ role: 'user', content: 'finish me' }], max_tokens: 64 });
      await new Promise((r) => setTimeout(r, 300));
      const stopped = router.stop();
      const answer = await inFlight;
      expect(answer.choices[0]!.message.content!.length).toBeGreaterThan(0);
      await stopped;
      await expect(fetch(`http://127.0.0.1:${router.httpPort}/healthz`)).rejects.toThrow();
    }, 20_000);
  });

  describe('health', () => {
    it('healthz is alive; readyz is ready with every peer reachable', async () => {
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      const ready = await fetch(`${base}/readyz`);
      expect(await ready.json()).toEqual({ status: 'ready', config: 'loaded', unreachable: [] });
      expect(ready.headers.get('x-request-id')).toBeTruthy();
    });
  });
});
