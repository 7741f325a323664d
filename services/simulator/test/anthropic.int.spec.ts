import Anthropic, { APIError } from '@anthropic-ai/sdk';
import { countChatTokens, countTextTokens } from '@switchyard/tokens';
import { ManualClock } from '@switchyard/util';
import { createSimulator } from '../src/index';
import { everyFaultScenario, useSimulator } from './helpers';

const messages = [{ role: 'user' as const, content: 'Why did the breaker open?' }];
const system = 'You are terse.';

function client(url: string, apiKey = 'sk-ant-test') {
  return new Anthropic({ baseURL: url, apiKey, maxRetries: 0 });
}

describe('Anthropic messages through the official SDK', () => {
  const sim = useSimulator({ scenario: { defaults: { limits: { rpm: 50, tpm: 40_000 } }, deployments: { 'claude-sonnet-4-6': {}, 'claude-haiku-4-5': {} } } });

  it('answers non-streaming with the exact shape, usage and headers', async () => {
    const { data, response } = await client(sim.current.url)
      .messages.create({ model: 'claude-sonnet-4-6', max_tokens: 256, system, messages })
      .withResponse();
    expect(data.id).toMatch(/^msg_01/);
    expect(data).toMatchObject({ type: 'message', role: 'assistant', model: 'claude-sonnet-4-6', stop_reason: 'end_turn', stop_sequence: null });
    expect(data.content).toHaveLength(1);
    const block = data.content[0]!;
    expect(block.type).toBe('text');
    const text = block.type === 'text' ? block.text : '';
    expect(text).toMatch(/^Simulated answer/);
    expect(data.usage.input_tokens).toBe(countChatTokens([{ role: 'system', content: system }, ...messages], 'anthropic'));
    expect(data.usage.output_tokens).toBe(countTextTokens(text));
    expect(response.headers.get('request-id')).toMatch(/^req_/);
    expect(response.headers.get('anthropic-ratelimit-requests-limit')).toBe('50');
    expect(response.headers.get('anthropic-ratelimit-requests-remaining')).toBe('49');
    expect(response.headers.get('anthropic-ratelimit-requests-reset')).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    for (const family of ['tokens', 'input-tokens', 'output-tokens']) {
      expect(response.headers.get(`anthropic-ratelimit-${family}-limit`)).toBe('40000');
    }
  });

  it('stops at max_tokens and at stop sequences', async () => {
    const c = client(sim.current.url);
    const short = await c.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 3, messages });
    expect(short.stop_reason).toBe('max_tokens');
    expect(short.usage.output_tokens).toBe(3);
    const stopped = await c.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 100, messages, stop_sequences: [' answer'] });
    expect(stopped.stop_reason).toBe('stop_sequence');
    expect(stopped.stop_sequence).toBe(' answer');
    expect(stopped.content[0]).toMatchObject({ type: 'text', text: 'Simulated' });
  });

  it('streams every event type in order, and the SDK assembles the same message', async () => {
    const c = client(sim.current.url);
    const whole = await c.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 256, messages });
    const stream = await c.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 256, messages, stream: true });
    const types: string[] = [];
    let text = '';
    let outputTokens = 0;
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text;
      if (event.type === 'message_delta') outputTokens = event.usage.output_tokens;
    }
    const deltas = types.filter((t) => t === 'content_block_delta').length;
    expect(types).toEqual([
      'message_start',
      'content_block_start',
      ...Array(deltas).fill('content_block_delta'),
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    expect(text).toBe(whole.content[0]!.type === 'text' ? whole.content[0]!.text : '');
    expect(outputTokens).toBe(whole.usage.output_tokens);

    const final = await c.messages.stream({ model: 'claude-sonnet-4-6', max_tokens: 256, messages }).finalMessage();
    expect(final.content).toEqual(whole.content);
    expect(final.usage.output_tokens).toBe(whole.usage.output_tokens);
  });

  it('requires max_tokens, a top-level system, anthropic-version and x-api-key', async () => {
    const post = (body: unknown, headers: Record<string, string> = { 'x-api-key': 'k', 'anthropic-version': '2023-06-01' }) =>
      fetch(`${sim.current.url}/v1/messages`, { method: 'POST', headers, body: JSON.stringify(body) });
    const noMax = await post({ model: 'claude-sonnet-4-6', messages });
    expect(noMax.status).toBe(400);
    expect(await noMax.json()).toEqual({
      type: 'error',
      error: { type: 'invalid_request_error', message: 'max_tokens: Field required' },
      request_id: noMax.headers.get('request-id'),
    });
    const systemRole = await post({ model: 'claude-sonnet-4-6', max_tokens: 10, messages: [{ role: 'system', content: 'x' }, ...messages] });
    expect(systemRole.status).toBe(400);
    expect(((await systemRole.json()) as { error: { message: string; type: string } }).error.message).toMatch(/Unexpected role "system"/);
    const noVersion = await post({ model: 'claude-sonnet-4-6', max_tokens: 10, messages }, { 'x-api-key': 'k' });
    expect(noVersion.status).toBe(400);
    const noKey = await post({ model: 'claude-sonnet-4-6', max_tokens: 10, messages }, { 'anthropic-version': '2023-06-01' });
    expect(noKey.status).toBe(401);
    expect(((await noKey.json()) as { error: { message: string; type: string } }).error.type).toBe('authentication_error');
  });

  it('lists models in the Anthropic shape', async () => {
    const page = await client(sim.current.url).models.list();
    expect(page.data.map((m) => m.id)).toEqual(['claude-sonnet-4-6', 'claude-haiku-4-5']);
    expect(page.data[0]).toMatchObject({ type: 'model', display_name: 'claude-sonnet-4-6' });
  });
});

describe('Anthropic faults through the SDK', () => {
  const kinds = {
    rate_limit: [429, 'rate_limit_error', /rate limit for your organization/],
    insufficient_quota: [400, 'invalid_request_error', /credit balance is too low/],
    spend_limit: [429, 'rate_limit_error', /reached your specified API usage limits/],
    server_error: [500, 'api_error', /Internal server error/],
    bad_gateway: [502, 'api_error', /Bad gateway/],
    unavailable: [503, 'api_error', /Service unavailable/],
    gateway_timeout: [504, 'timeout_error', /timed out/],
    overloaded: [529, 'overloaded_error', /Overloaded/],
    context_length: [400, 'invalid_request_error', /prompt is too long: \d+ tokens > \d+ maximum/],
    content_policy: [400, 'invalid_request_error', /content filtering policy/],
    unauthorized: [401, 'authentication_error', /invalid x-api-key/],
    forbidden: [403, 'permission_error', /permission/],
    not_found: [404, 'not_found_error', /model: not_found/],
    too_large: [413, 'request_too_large', /maximum allowed number of bytes/],
  } as const;
  const sim = useSimulator({ scenario: everyFaultScenario([...Object.keys(kinds), 'content_filter'], { shouldRetry: { overloaded: true } }) });

  it.each(Object.entries(kinds))('%s → %j', async (kind, [status, type, message]) => {
    const err = (await client(sim.current.url).messages.create({ model: kind, max_tokens: 50, messages }).catch((e) => e)) as APIError;
    expect(err).toBeInstanceOf(APIError);
    expect(err.status).toBe(status);
    expect(err.error).toMatchObject({ type: 'error', error: { type } });
    expect((err.error as { error: { message: string } }).error.message).toMatch(message);
    expect(err.requestID).toMatch(/^req_/);
    const quota = kind === 'spend_limit' || kind === 'insufficient_quota';
    expect(err.headers?.get('retry-after')).toBe([429, 503, 529].includes(status) && !quota ? '1' : null);
    expect(err.errorCode).toBe(kind === 'spend_limit' ? 'enforced_spend_limit_reached' : null);
    if (kind === 'overloaded') expect(err.headers?.get('x-should-retry')).toBe('true');
  });

  it('content_filter → 200 with stop_reason refusal', async () => {
    const r = await client(sim.current.url).messages.create({ model: 'content_filter', max_tokens: 50, messages });
    expect(r.stop_reason).toBe('refusal');
  });
});

describe('Anthropic limits and stream faults', () => {
  it('enforces RPM with rate_limit_error, retry-after and RFC 3339 resets', async () => {
    const clock = new ManualClock(Date.UTC(2025, 5, 1, 12, 0, 0));
    const sim = await createSimulator({ clock, scenario: { deployments: { 'claude-haiku-4-5': { limits: { rpm: 1 } } } } });
    try {
      const c = client(sim.url);
      await c.messages.create({ model: 'claude-haiku-4-5', max_tokens: 10, messages });
      const err = (await c.messages.create({ model: 'claude-haiku-4-5', max_tokens: 10, messages }).catch((e) => e)) as APIError;
      expect(err.status).toBe(429);
      expect(err.error).toMatchObject({ type: 'error', error: { type: 'rate_limit_error' } });
      expect(err.headers?.get('retry-after')).toBe('60');
      expect(err.headers?.get('anthropic-ratelimit-requests-remaining')).toBe('0');
      expect(err.headers?.get('anthropic-ratelimit-requests-reset')).toBe('2025-06-01T12:01:00Z');
    } finally {
      await sim.stop();
    }
  });

  it('sends event: error (overloaded_error) after N deltas, which the SDK raises', async () => {
    const sim = await createSimulator({ scenario: { deployments: { d: { streamErrorAfterChunks: 2 } } } });
    try {
      const stream = await client(sim.url).messages.create({ model: 'd', max_tokens: 100, messages, stream: true });
      const texts: string[] = [];
      const err = await (async () => {
        for await (const e of stream) if (e.type === 'content_block_delta' && e.delta.type === 'text_delta') texts.push(e.delta.text);
      })().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(APIError);
      expect(String((err as Error).message)).toMatch(/overloaded_error/);
      expect(texts).toEqual(['Sim', 'ulated']);
    } finally {
      await sim.stop();
    }
  });

  it('cuts the socket mid-stream with cutAfterChunks', async () => {
    const sim = await createSimulator({ scenario: { deployments: { d: { cutAfterChunks: 1 } } } });
    try {
      const err = await client(sim.url)
        .messages.stream({ model: 'd', max_tokens: 100, messages })
        .finalMessage()
        .catch((e: unknown) => e);
      expect(String(err)).toMatch(/terminated|other side closed|ECONNRESET|Connection error/);
    } finally {
      await sim.stop();
    }
  });
});
