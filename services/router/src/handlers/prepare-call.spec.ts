import { createHash } from 'node:crypto';
import { hashApiKey, parseConfig } from '@switchyard/config';
import { AppError, Metadata, status } from '@switchyard/grpc';
import { create } from '@bufbuild/protobuf';
import { CompleteRequestSchema, Role } from '@switchyard/contracts';
import { estimateRequestTokens } from '@switchyard/providers';
import { ManualClock } from '@switchyard/util';
import type { RouterContext } from '../router-context';
import { cacheKeyFor, prepareCall } from './prepare-call';

const KEY = 'caller-key';
const gateway = parseConfig(
  `
deployments:
  oa1: { provider: openai, baseUrl: "http://127.0.0.1:1/v1", model: m1, apiKey: env:K, price: { inputPerMillionUsd: 1, outputPerMillionUsd: 2 } }
  oa2: { provider: openai, baseUrl: "http://127.0.0.1:1/v1", model: m2, apiKey: env:K, price: { inputPerMillionUsd: 1, outputPerMillionUsd: 2 } }
  az: { provider: azure, baseUrl: "http://127.0.0.1:1", model: m3, apiKey: env:K, apiVersion: "2024-10-21", price: { inputPerMillionUsd: 1, outputPerMillionUsd: 2 } }
  an: { provider: anthropic, baseUrl: "http://127.0.0.1:1", model: m4, apiKey: env:K, price: { inputPerMillionUsd: 1, outputPerMillionUsd: 2 } }
  small: { provider: openai, baseUrl: "http://127.0.0.1:1/v1", model: m6, apiKey: env:K, contextWindow: 400, price: { inputPerMillionUsd: 1, outputPerMillionUsd: 2 } }
  big: { provider: openai, baseUrl: "http://127.0.0.1:1/v1", model: m7, apiKey: env:K, price: { inputPerMillionUsd: 1, outputPerMillionUsd: 2 } }
  local: { provider: openai-compatible, baseUrl: "http://127.0.0.1:1/v1", model: m5, apiKey: env:K, price: { inputPerMillionUsd: 1, outputPerMillionUsd: 2 } }
routes:
  mixed: { cacheable: false, candidates: [{ deployment: oa1 }, { deployment: an }, { deployment: oa2 }, { deployment: az }] }
  cached: { cacheable: true, candidates: [{ deployment: oa1 }] }
  overflowFallback: { cacheable: false, candidates: [{ deployment: small }, { deployment: big, priority: 1 }] }
  overflowFail: { cacheable: false, contextOverflow: fail, candidates: [{ deployment: small }, { deployment: big, priority: 1 }] }
  overflowTruncate: { cacheable: false, contextOverflow: truncate, candidates: [{ deployment: small }, { deployment: big, priority: 1 }] }
  textOnly: { cacheable: false, candidates: [{ deployment: local }] }
  withText: { cacheable: false, candidates: [{ deployment: local }, { deployment: an }] }
tenants:
  t:
    apiKeys: [{ id: k1, sha256: ${hashApiKey(KEY)} }]
`,
  { env: { K: 'x' } },
);

const ctx = {
  gateway,
  keys: new Map([[hashApiKey(KEY), { tenantId: 't', tenant: gateway.tenants.t!, apiKeyId: 'k1' }]]),
  defaultMaxTokens: 256,
  rng: () => 0.5,
  clock: new ManualClock(1_000_000),
  health: { get: () => undefined },
  quota: { get: () => undefined },
  outcomes: { sharedHealthReachable: () => true },
} as unknown as RouterContext;

const metadata = () => {
  const m = new Metadata();
  m.set('x-api-key', KEY);
  return m;
};
const request = (route: string) =>
  create(CompleteRequestSchema, {
    route,
    messages: [{ role: Role.USER, content: 'Count the tokens of this prompt once per provider kind, please. '.repeat(20) }],
    params: { maxTokens: 64 },
  });

describe('prepareCall', () => {
  it('gives every candidate the prompt estimate of its own provider kind (estimated once per kind)', () => {
    const p = prepareCall(ctx, request('mixed'), metadata(), undefined);
    const expected = (provider: 'openai' | 'azure' | 'anthropic') => estimateRequestTokens(p.call.chat, provider).inputTokens;
    expect(Object.fromEntries(p.inputTokens)).toEqual({ oa1: expected('openai'), oa2: expected('openai'), az: expected('azure'), an: expected('anthropic') });
    // Anthropic counts the same prompt differently, so a shared estimate would show here.
    expect(expected('anthropic')).not.toBe(expected('openai'));
  });

  it('counts the deadline from when the caller sent the request: the time it may have waited unread behind a late event loop comes off', () => {
    const deadline = new Date(1_002_000);
    expect(prepareCall(ctx, request('mixed'), metadata(), deadline).deadlineAt).toBe(1_002_000);
    const lagging = { ...ctx, loopDelay: { worstMs: () => 240 } } as RouterContext;
    expect(prepareCall(lagging, request('mixed'), metadata(), deadline).deadlineAt).toBe(1_002_000 - 240);
    expect(prepareCall(lagging, request('mixed'), metadata(), undefined).deadlineAt).toBe(Number.POSITIVE_INFINITY);
    // A stall of 829 ms (a start-up) claims at most an eighth of the 2 s the call had.
    const stalled = { ...ctx, loopDelay: { worstMs: () => 829 } } as RouterContext;
    expect(prepareCall(stalled, request('mixed'), metadata(), deadline)).toMatchObject({ deadlineAt: 1_002_000 - 250, callMs: 2_000 });
  });

  it('hashes the prompt into a cache key only when the call reads or writes the cache', () => {
    expect(prepareCall(ctx, request('mixed'), metadata(), undefined).cacheKey).toBe('');
    const cached = prepareCall(ctx, request('cached'), metadata(), undefined);
    expect(cached.cacheKey).toBe(cacheKeyFor(cached.call));
    expect(cached.cacheKey).toMatch(/^cached:[0-9a-f]{64}$/);
  });
});

describe('prepareCall: fitting the call to each candidate (issue 12)', () => {
  const withTools = (route: string, params: Record<string, unknown> = {}) =>
    create(CompleteRequestSchema, { route, messages: [{ role: Role.USER, content: 'weather?' }], params: { maxTokens: 64, tools: [{ name: 'get_weather' }], ...params } });

  it('clamps a temperature above 1 for the Anthropic candidate only, with a note, and estimates the fitted request', () => {
    const p = prepareCall(ctx, create(CompleteRequestSchema, { route: 'mixed', messages: [{ role: Role.USER, content: 'hi' }], params: { temperature: 1.5 } }), metadata(), undefined);
    expect(p.requests.get('oa1')!.temperature).toBe(1.5);
    expect(p.requests.get('oa1')).toBe(p.call.chat);
    expect(p.requests.get('an')!.temperature).toBe(1);
    expect(p.fitNotes.get('an')).toBe('temperature 1.5 clamped to 1 (anthropic range 0-1)');
    expect(p.fitNotes.has('oa1')).toBe(false);
    expect(p.plan.usable.map((c) => c.name).sort()).toEqual(['an', 'az', 'oa1', 'oa2']);
  });

  it('skips a candidate that lacks a capability the call needs, saying why', () => {
    const p = prepareCall(ctx, withTools('withText'), metadata(), undefined);
    expect(p.plan.usable.map((c) => c.name)).toEqual(['an']);
    expect(p.plan.skipped).toEqual([{ name: 'local', reason: 'cannot serve this call: openai-compatible deployment does not declare tools', retryAt: 0, quota: false }]);
    expect(p.inputTokens.has('local')).toBe(false);
  });

  it('refuses with FAILED_PRECONDITION naming the missing capability when no candidate can serve the call', () => {
    let error: unknown;
    try {
      prepareCall(ctx, withTools('textOnly'), metadata(), undefined);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe(status.FAILED_PRECONDITION);
    expect((error as AppError).message).toContain('missing capability tools');
    expect((error as AppError).details.preconditionFailure).toEqual([
      { type: 'MISSING_CAPABILITY', subject: 'deployment:local', description: 'missing capability tools: openai-compatible deployment does not declare tools' },
    ]);
  });

  it('keys the cache on tools, tool choice, response format, seed and image bytes; a text-only call keeps its key', () => {
    const key = (params: Record<string, unknown>, messages?: unknown[]) =>
      prepareCall(ctx, create(CompleteRequestSchema, { route: 'cached', messages: (messages ?? [{ role: Role.USER, content: 'hi' }]) as never, params: { maxTokens: 64, ...params } }), metadata(), undefined).cacheKey;
    const base = key({});
    const tools = key({ tools: [{ name: 'f' }] });
    const keys = [
      base,
      tools,
      key({ tools: [{ name: 'f', description: 'd' }] }),
      key({ tools: [{ name: 'f' }], toolChoice: { mode: 3 } }),
      key({ tools: [{ name: 'f' }], parallelToolCalls: false }),
      key({ responseFormat: { type: 2 } }),
      key({ seed: 1n }),
      key({}, [{ role: Role.USER, parts: [{ part: { case: 'image', value: { source: { case: 'data', value: new Uint8Array([1, 2, 3]) }, mediaType: 'image/png' } } }] }]),
      key({}, [{ role: Role.USER, parts: [{ part: { case: 'image', value: { source: { case: 'data', value: new Uint8Array([1, 2, 4]) }, mediaType: 'image/png' } } }] }]),
    ];
    expect(new Set(keys).size).toBe(keys.length);
    expect(key({ tools: [{ name: 'f' }] })).toBe(tools);
    // The key of a plain text call is what it was before the new fields existed.
    const plain = prepareCall(ctx, create(CompleteRequestSchema, { route: 'cached', messages: [{ role: Role.USER, content: 'hi' }], params: { maxTokens: 64 } }), metadata(), undefined);
    const legacy = JSON.stringify({ messages: [['user', 'hi']], maxTokens: 64, temperature: null, topP: null, stop: [] });
    expect(plain.cacheKey).toBe(`cached:${createHash('sha256').update(legacy, 'utf8').digest('hex')}`);
  });
});

describe('prepareCall: route contextOverflow (issue 12)', () => {
  const long = (route: string) =>
    create(CompleteRequestSchema, {
      route,
      messages: [
        { role: Role.SYSTEM, content: 'Be brief.' },
        ...Array.from({ length: 6 }, (_, i) => ({ role: i % 2 === 0 ? Role.USER : Role.ASSISTANT, content: `turn ${i} `.repeat(40) })),
        { role: Role.USER, content: 'the latest question' },
      ],
      params: { maxTokens: 64 },
    });

  it('fallback (default): the small window is skipped before sending, the larger one serves the whole prompt', () => {
    const p = prepareCall(ctx, long('overflowFallback'), metadata(), undefined);
    expect(p.plan.usable.map((c) => c.name)).toEqual(['big']);
    expect(p.plan.skipped.map((s) => s.name)).toEqual(['small']);
    expect(p.truncatedTurns.size).toBe(0);
  });

  it('fail: FAILED_PRECONDITION CONTEXT_LENGTH naming the window, no larger window tried', () => {
    let error: unknown;
    try {
      prepareCall(ctx, long('overflowFail'), metadata(), undefined);
    } catch (err) {
      error = err;
    }
    expect((error as AppError).code).toBe(status.FAILED_PRECONDITION);
    expect((error as AppError).message).toMatch(/exceeds the context window of 400 tokens of deployment small/);
    expect((error as AppError).details.errorInfo?.reason).toBe('CONTEXT_LENGTH_EXCEEDED');
  });

  it('truncate: the small candidate gets the oldest turns dropped (system prompt kept), noted; the large one the whole prompt', () => {
    const p = prepareCall(ctx, long('overflowTruncate'), metadata(), undefined);
    expect(p.plan.usable.map((c) => c.name)).toEqual(['small', 'big']);
    const dropped = p.truncatedTurns.get('small')!;
    expect(dropped).toBeGreaterThan(0);
    const sent = p.requests.get('small')!.messages;
    expect(sent[0]).toEqual({ role: 'system', content: 'Be brief.' });
    expect(sent.slice(1)).toEqual(p.call.chat.messages.slice(1 + dropped));
    expect(sent[1]!.role).toBe('user');
    expect(p.inputTokens.get('small')).toBeLessThanOrEqual(400);
    expect(p.fitNotes.get('small')).toBe(`dropped the ${dropped} oldest message(s) to fit the context window of 400 tokens`);
    expect(p.requests.get('big')).toBe(p.call.chat);
    expect(p.truncatedTurns.has('big')).toBe(false);
  });
});
