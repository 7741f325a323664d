import OpenAI, { APIConnectionError, APIError, APIUserAbortError } from 'openai';
import { countChatTokens, countTextTokens } from '@switchyard/tokens';
import { ManualClock } from '@switchyard/util';
import { createSimulator } from '../src/index';
import { everyFaultScenario, useSimulator } from './helpers';

const messages = [
  { role: 'system' as const, content: 'You are terse.' },
  { role: 'user' as const, content: 'Why do providers return 429?' },
];

function client(url: string, apiKey = 'sk-test-1234567890') {
  return new OpenAI({ baseURL: `${url}/v1`, apiKey, maxRetries: 0 });
}

describe('OpenAI chat completions through the official SDK', () => {
  const sim = useSimulator({ scenario: { defaults: { limits: { rpm: 1000, tpm: 1_000_000 } } } });

  it('answers non-streaming with the exact shape and usage from the shared tokenizer', async () => {
    const { data, response } = await client(sim.current.url)
      .chat.completions.create({ model: 'gpt-4o', messages, max_tokens: 200 })
      .withResponse();
    expect(data.id).toMatch(/^chatcmpl-/);
    expect(data.object).toBe('chat.completion');
    expect(data.model).toBe('gpt-4o');
    expect(data.system_fingerprint).toMatch(/^fp_/);
    const choice = data.choices[0]!;
    expect(choice).toMatchObject({ index: 0, logprobs: null, finish_reason: 'stop', message: { role: 'assistant', refusal: null } });
    expect(choice.message.content).toMatch(/^Simulated answer/);
    expect(data.usage).toMatchObject({
      prompt_tokens: countChatTokens(messages, 'openai'),
      completion_tokens: countTextTokens(choice.message.content!),
    });
    expect(data.usage!.total_tokens).toBe(data.usage!.prompt_tokens + data.usage!.completion_tokens);
    expect(response.headers.get('x-request-id')).toMatch(/^req_[0-9a-f]{32}$/);
    expect(response.headers.get('x-ratelimit-limit-requests')).toBe('1000');
    expect(response.headers.get('x-ratelimit-remaining-requests')).toMatch(/^99\d$/);
    expect(response.headers.get('x-ratelimit-limit-tokens')).toBe('1000000');
    expect(response.headers.get('x-ratelimit-reset-requests')).toMatch(/^\d+(\.\d+)?(ms|s)$/);
  });

  it('answers the same prompt with the same content, and cuts at max_tokens with finish_reason length', async () => {
    const c = client(sim.current.url);
    const a = await c.chat.completions.create({ model: 'gpt-4o', messages });
    const b = await c.chat.completions.create({ model: 'gpt-4o', messages });
    expect(b.choices[0]!.message.content).toBe(a.choices[0]!.message.content);
    const short = await c.chat.completions.create({ model: 'gpt-4o', messages, max_completion_tokens: 4 });
    expect(short.choices[0]!.finish_reason).toBe('length');
    expect(short.usage!.completion_tokens).toBe(4);
    expect(a.choices[0]!.message.content!.startsWith(short.choices[0]!.message.content!)).toBe(true);
  });

  it('streams chunks with choices[0].delta, a usage chunk with empty choices, then [DONE]', async () => {
    const c = client(sim.current.url);
    const whole = await c.chat.completions.create({ model: 'gpt-4o', messages });
    const stream = await c.chat.completions.create({ model: 'gpt-4o', messages, stream: true, stream_options: { include_usage: true } });
    let text = '';
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    for (const chunk of chunks.slice(0, -1)) {
      expect(chunk.object).toBe('chat.completion.chunk');
      expect(chunk.choices).toHaveLength(1);
      text += chunk.choices[0]!.delta.content ?? '';
    }
    expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant');
    expect(chunks[chunks.length - 2]!.choices[0]!.finish_reason).toBe('stop');
    const last = chunks[chunks.length - 1]!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toEqual(whole.usage);
    expect(text).toBe(whole.choices[0]!.message.content);
    // One token per content chunk.
    expect(chunks.length - 3).toBe(whole.usage!.completion_tokens - 1);
  });

  it('lists the scenario deployments as models', async () => {
    const sim2 = await createSimulator({ scenario: { deployments: { 'gpt-4o': {}, 'gpt-4o-mini': {} } } });
    try {
      const page = await client(sim2.url).models.list();
      expect(page.data.map((m) => m.id)).toEqual(['gpt-4o', 'gpt-4o-mini']);
    } finally {
      await sim2.stop();
    }
  });

  it('rejects a request without an API key with 401', async () => {
    const res = await fetch(`${sim.current.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ model: 'gpt-4o', messages }) });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { message: string; type: string } }).error.message).toMatch(/didn't provide an API key/);
  });
});

describe('OpenAI faults through the SDK', () => {
  const kinds = {
    rate_limit: [429, 'requests', 'rate_limit_exceeded'],
    insufficient_quota: [429, 'insufficient_quota', 'insufficient_quota'],
    spend_limit: [429, 'insufficient_quota', 'insufficient_quota'],
    server_error: [500, 'server_error', null],
    bad_gateway: [502, 'cf_bad_gateway', 502],
    unavailable: [503, 'server_error', null],
    gateway_timeout: [504, 'cf_gateway_timeout', 504],
    overloaded: [503, 'server_error', null],
    context_length: [400, 'invalid_request_error', 'context_length_exceeded'],
    content_policy: [400, 'invalid_request_error', 'content_policy_violation'],
    unauthorized: [401, 'invalid_request_error', 'invalid_api_key'],
    forbidden: [403, 'invalid_request_error', 'model_not_found'],
    not_found: [404, 'invalid_request_error', 'model_not_found'],
    too_large: [413, 'invalid_request_error', 'request_too_large'],
  } as const;
  const sim = useSimulator({
    scenario: everyFaultScenario([...Object.keys(kinds), 'content_filter', 'reset', 'hang'], { retryAfterMs: 2500 }),
  });

  it.each(Object.entries(kinds))('%s → %j', async (kind, [status, type, code]) => {
    const err = await client(sim.current.url)
      .chat.completions.create({ model: kind, messages })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(APIError);
    const e = err as APIError;
    expect(e.status).toBe(status);
    expect(e.type).toBe(type);
    expect(e.code ?? null).toBe(code);
    expect(e.requestID).toMatch(/^req_/);
    if ((status === 429 || status === 503) && kind !== 'insufficient_quota' && kind !== 'spend_limit') {
      expect(e.headers?.get('retry-after')).toBe('3');
      expect(e.headers?.get('retry-after-ms')).toBe('2500');
    } else {
      expect(e.headers?.get('retry-after')).toBeNull();
    }
  });

  it('content_filter → 200 with finish_reason content_filter', async () => {
    const r = await client(sim.current.url).chat.completions.create({ model: 'content_filter', messages });
    expect(r.choices[0]!.finish_reason).toBe('content_filter');
  });

  it('reset → the socket dies before any header (a connection error)', async () => {
    const err = await client(sim.current.url).chat.completions.create({ model: 'reset', messages }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(APIConnectionError);
    expect(sim.current.counters()['reset']!.byStatus).toEqual({ reset: 1 });
  });

  it('hang → never answers, and the client abort releases it', async () => {
    const controller = new AbortController();
    const started = Date.now();
    const pending = client(sim.current.url).chat.completions.create({ model: 'hang', messages }, { signal: controller.signal });
    setTimeout(() => controller.abort(), 300);
    await expect(pending).rejects.toBeInstanceOf(APIUserAbortError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(sim.current.counters()['hang']!.byStatus).toEqual({ hang: 1 });
  });
});

describe('OpenAI scenario behaviour', () => {
  it('rejects prompts over contextWindow with context_length_exceeded naming both sizes', async () => {
    const sim = await createSimulator({ scenario: { deployments: { small: { contextWindow: 20 } } } });
    try {
      const long = [{ role: 'user' as const, content: 'tokens '.repeat(40) }];
      const err = (await client(sim.url).chat.completions.create({ model: 'small', messages: long }).catch((e) => e)) as APIError;
      expect(err.status).toBe(400);
      expect(err.code).toBe('context_length_exceeded');
      expect(err.param).toBe('messages');
      expect(err.message).toContain(`maximum context length is 20 tokens. However, your messages resulted in ${countChatTokens(long, 'openai')} tokens`);
      // A short prompt on the same deployment is fine.
      await expect(client(sim.url).chat.completions.create({ model: 'small', messages: [{ role: 'user', content: 'hi' }] })).resolves.toBeDefined();
    } finally {
      await sim.stop();
    }
  });

  it('answers 404 model_not_found for unlisted models under strictModels', async () => {
    const sim = await createSimulator({ scenario: { strictModels: true, deployments: { 'gpt-4o': {} } } });
    try {
      const err = (await client(sim.url).chat.completions.create({ model: 'gpt-5', messages }).catch((e) => e)) as APIError;
      expect(err.status).toBe(404);
      expect(err.code).toBe('model_not_found');
      expect(err.message).toContain('`gpt-5` does not exist');
    } finally {
      await sim.stop();
    }
  });

  it('enforces RPM per key as a refilling token bucket with retry-after', async () => {
    const clock = new ManualClock(Date.UTC(2025, 0, 1));
    const sim = await createSimulator({ clock, scenario: { deployments: { 'gpt-4o': { limits: { rpm: 2 } } } } });
    try {
      const c = client(sim.url);
      await c.chat.completions.create({ model: 'gpt-4o', messages });
      const second = await c.chat.completions.create({ model: 'gpt-4o', messages }).withResponse();
      expect(second.response.headers.get('x-ratelimit-remaining-requests')).toBe('0');
      expect(second.response.headers.get('x-ratelimit-reset-requests')).toBe('1m0s');
      const err = (await c.chat.completions.create({ model: 'gpt-4o', messages }).catch((e) => e)) as APIError;
      expect(err.status).toBe(429);
      expect(err.type).toBe('requests');
      expect(err.code).toBe('rate_limit_exceeded');
      expect(err.message).toContain('on requests per min (RPM): Limit 2, Used 2, Requested 1. Please try again in 30s.');
      expect(err.headers?.get('retry-after')).toBe('30');
      expect(err.headers?.get('retry-after-ms')).toBe('30000');
      // Another key has its own bucket.
      await expect(client(sim.url, 'sk-other-key-000000').chat.completions.create({ model: 'gpt-4o', messages })).resolves.toBeDefined();
      clock.advance(30_000);
      await expect(c.chat.completions.create({ model: 'gpt-4o', messages })).resolves.toBeDefined();
    } finally {
      await sim.stop();
    }
  });

  it('enforces TPM on prompt + max_tokens at admission', async () => {
    const clock = new ManualClock(0);
    const sim = await createSimulator({ clock, scenario: { deployments: { 'gpt-4o': { limits: { tpm: 200 } } } } });
    try {
      const c = client(sim.url);
      const prompt = countChatTokens(messages, 'openai');
      await c.chat.completions.create({ model: 'gpt-4o', messages, max_tokens: 100 });
      const err = (await c.chat.completions.create({ model: 'gpt-4o', messages, max_tokens: 100 }).catch((e) => e)) as APIError;
      expect(err.status).toBe(429);
      expect(err.type).toBe('tokens');
      expect(err.message).toContain(`tokens per min (TPM): Limit 200, Used ${100 + prompt}, Requested ${100 + prompt}.`);
      const waitMs = ((2 * (100 + prompt) - 200) * 60_000) / 200;
      expect(Number(err.headers?.get('retry-after-ms'))).toBe(Math.ceil(waitMs));
    } finally {
      await sim.stop();
    }
  });

  it('sends x-should-retry when the scenario asks for it', async () => {
    const sim = await createSimulator({ scenario: { deployments: { d: { faults: { server_error: 1 }, shouldRetry: false } } } });
    try {
      const err = (await client(sim.url).chat.completions.create({ model: 'd', messages }).catch((e) => e)) as APIError;
      expect(err.headers?.get('x-should-retry')).toBe('false');
    } finally {
      await sim.stop();
    }
  });

  it('fails every request in an outage window with the configured status', async () => {
    const clock = new ManualClock(1_000_000);
    const sim = await createSimulator({ clock, scenario: { deployments: { d: { outages: [{ from: 0, to: 10_000, status: 503 }] } } } });
    try {
      const c = client(sim.url);
      for (let i = 0; i < 3; i++) await expect(c.chat.completions.create({ model: 'd', messages })).rejects.toMatchObject({ status: 503 });
      clock.advance(10_000);
      await expect(c.chat.completions.create({ model: 'd', messages })).resolves.toBeDefined();
    } finally {
      await sim.stop();
    }
  });

  it('injects the same faults in the same order for the same seed, again after reset', async () => {
    const scenario = { seed: 42, deployments: { d: { faults: { server_error: 0.3, rate_limit: 0.2 } } } };
    const run = async (url: string) => {
      const statuses: number[] = [];
      for (let i = 0; i < 30; i++) {
        statuses.push(await client(url).chat.completions.create({ model: 'd', messages }).then(() => 200, (e: APIError) => e.status!));
      }
      return statuses;
    };
    const a = await createSimulator({ scenario });
    const b = await createSimulator({ scenario });
    try {
      const first = await run(a.url);
      expect(new Set(first)).toEqual(new Set([200, 429, 500]));
      expect(await run(b.url)).toEqual(first);
      a.reset();
      expect(await run(a.url)).toEqual(first);
      a.setScenario({ ...scenario, seed: 43 });
      expect(await run(a.url)).not.toEqual(first);
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});

describe('OpenAI streaming faults and latency', () => {
  it('cutAfterChunks destroys the socket after N content chunks', async () => {
    const sim = await createSimulator({ scenario: { deployments: { d: { cutAfterChunks: 2 } } } });
    try {
      const stream = await client(sim.url).chat.completions.create({ model: 'd', messages, stream: true });
      const seen: string[] = [];
      const err = await (async () => {
        for await (const chunk of stream) seen.push(chunk.choices[0]?.delta.content ?? '');
      })().catch((e: unknown) => e);
      // undici reports the unfinished chunked body as "TypeError: terminated" (from another realm, hence no instanceof).
      expect(String(err)).toMatch(/terminated|other side closed|ECONNRESET/);
      expect(seen).toEqual(['Sim', 'ulated']);
      expect(sim.counters()['d']!.faults).toEqual({ stream_cut: 1 });
    } finally {
      await sim.stop();
    }
  });

  it('streamErrorAfterChunks sends an error frame the SDK raises as APIError', async () => {
    const sim = await createSimulator({ scenario: { deployments: { d: { streamErrorAfterChunks: 3 } } } });
    try {
      const stream = await client(sim.url).chat.completions.create({ model: 'd', messages, stream: true });
      const seen: string[] = [];
      const err = await (async () => {
        for await (const chunk of stream) seen.push(chunk.choices[0]?.delta.content ?? '');
      })().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(APIError);
      expect((err as APIError).message).toMatch(/server had an error/);
      expect(seen).toEqual(['Sim', 'ulated', ' answer']);
    } finally {
      await sim.stop();
    }
  });

  it('delays the first token and every following one per the latency distributions', async () => {
    const sim = await createSimulator({
      scenario: { deployments: { d: { latency: { firstToken: 150, perToken: { uniform: { min: 10, max: 20 } } }, reply: { minTokens: 6, maxTokens: 6 } } } },
    });
    try {
      const started = Date.now();
      const stream = await client(sim.url).chat.completions.create({ model: 'd', messages, stream: true });
      const arrivals: number[] = [];
      for await (const chunk of stream) if (chunk.choices[0]?.delta.content) arrivals.push(Date.now() - started);
      expect(arrivals).toHaveLength(6);
      expect(arrivals[0]).toBeGreaterThanOrEqual(140);
      expect(arrivals[5]! - arrivals[0]!).toBeGreaterThanOrEqual(45);
      const t0 = Date.now();
      await client(sim.url).chat.completions.create({ model: 'd', messages });
      expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
    } finally {
      await sim.stop();
    }
  });

  it('stop() releases hung requests and in-flight delayed answers', async () => {
    const sim = await createSimulator({ scenario: { deployments: { hang: { faults: { hang: 1 } }, slow: { latency: { firstToken: 60_000 } } } } });
    const hung = client(sim.url).chat.completions.create({ model: 'hang', messages }).catch((e: unknown) => e);
    const slow = client(sim.url).chat.completions.create({ model: 'slow', messages }).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    await sim.stop();
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(await hung).toBeInstanceOf(APIConnectionError);
    expect(await slow).toBeInstanceOf(APIConnectionError);
  });
});
