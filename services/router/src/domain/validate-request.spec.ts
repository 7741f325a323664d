import { create, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import type { RouteConfig } from '@switchyard/config';
import { CacheMode, CompleteRequestSchema, Role, type CompleteRequest } from '@switchyard/contracts';
import { InvalidRequestError } from './errors';
import { largestValidRequestBytes, MAX_STOP_SEQUENCE_CHARS, resolveRoute, validateCall, type ValidationLimits } from './validate-request';

const route: RouteConfig = { candidates: [{ deployment: 'a', priority: 0, weight: 1 }], allowStaleOnError: true, fallbackOnContentFilter: false, cacheable: true };
const limits: ValidationLimits = { maxMessages: 3, maxPromptChars: 100, maxTokens: 1000, defaultMaxTokens: 256 };

type RequestInit = MessageInitShape<typeof CompleteRequestSchema>;

function request(overrides: Partial<RequestInit> = {}): CompleteRequest {
  return create(CompleteRequestSchema, { route: 'chat', messages: [{ role: Role.USER, content: 'hello' }], ...overrides } as RequestInit);
}

function problem(fn: () => unknown): { field: string; problem: string } {
  try {
    fn();
  } catch (err) {
    if (err instanceof InvalidRequestError) return { field: err.field, problem: err.problem };
    throw err;
  }
  throw new Error('expected InvalidRequestError');
}

describe('resolveRoute', () => {
  it('rejects a missing or unknown route on field route', () => {
    expect(problem(() => resolveRoute({ routes: { chat: route } }, ''))).toEqual({ field: 'route', problem: expect.stringContaining('required') });
    expect(problem(() => resolveRoute({ routes: { chat: route } }, 'nope'))).toEqual({ field: 'route', problem: 'unknown route "nope"' });
    expect(problem(() => resolveRoute({ routes: { chat: route } }, 'toString')).field).toBe('route');
  });
});

describe('validateCall', () => {
  it('builds the neutral request, defaulting max_tokens when 0', () => {
    const call = validateCall(request({ params: { temperature: 0.5, stop: ['END'] }, userId: 'u1' }), route, limits);
    expect(call.chat).toEqual({ messages: [{ role: 'user', content: 'hello' }], maxTokens: 256, temperature: 0.5, stop: ['END'], user: 'u1' });
    expect(call.cache).toEqual({ read: true, write: true, staleOnError: true });
  });

  it.each<[string, Partial<RequestInit>, string]>([
    ['empty messages', { messages: [] }, 'messages'],
    ['too many messages', { messages: Array.from({ length: 4 }, () => ({ role: Role.USER, content: 'x' })) }, 'messages'],
    ['unspecified role', { messages: [{ role: Role.UNSPECIFIED, content: 'x' }] }, 'messages[0].role'],
    ['unknown role number', { messages: [{ role: 42 as Role, content: 'x' }] }, 'messages[0].role'],
    ['empty content', { messages: [{ role: Role.USER, content: 'hi' }, { role: Role.USER, content: '  ' }] }, 'messages[1].content'],
    ['only system messages', { messages: [{ role: Role.SYSTEM, content: 'be nice' }] }, 'messages'],
    ['prompt too large', { messages: [{ role: Role.USER, content: 'x'.repeat(101) }] }, 'messages'],
    ['max_tokens above the bound', { params: { maxTokens: 1001 } }, 'params.max_tokens'],
    ['temperature above 2', { params: { temperature: 2.5 } }, 'params.temperature'],
    ['temperature negative', { params: { temperature: -0.1 } }, 'params.temperature'],
    ['temperature NaN', { params: { temperature: Number.NaN } }, 'params.temperature'],
    ['top_p above 1', { params: { topP: 1.01 } }, 'params.top_p'],
    ['too many stop sequences', { params: { stop: ['a', 'b', 'c', 'd', 'e'] } }, 'params.stop'],
    ['empty stop sequence', { params: { stop: [''] } }, 'params.stop[0]'],
    ['stop sequence above 256 characters', { params: { stop: ['END', 's'.repeat(257)] } }, 'params.stop[1]'],
    ['feature with spaces', { feature: 'my feature' }, 'feature'],
    ['unknown cache mode', { cachePolicy: { mode: 9 as CacheMode } }, 'cache_policy.mode'],
  ])('rejects %s naming %s', (_name, overrides, field) => {
    expect(problem(() => validateCall(request(overrides), route, limits)).field).toBe(field);
  });

  it('bounds the encoded size of every request it accepts by largestValidRequestBytes', () => {
    // Every field at its bound, in the characters that take the most bytes (3 per UTF-16 unit).
    const wide = (n: number) => '中'.repeat(n);
    const big = { maxMessages: 256, maxPromptChars: 256 * 40, maxTokens: 1000, defaultMaxTokens: 256 };
    const req = request({
      route: wide(40),
      messages: Array.from({ length: 256 }, () => ({ role: Role.USER, content: wide(40) })),
      params: { maxTokens: 1000, temperature: 1.99, topP: 0.99, stop: Array.from({ length: 4 }, () => wide(MAX_STOP_SEQUENCE_CHARS)) },
      userId: wide(256),
      feature: 'f'.repeat(64),
      idempotencyKey: wide(128),
      cachePolicy: { mode: CacheMode.NO_STORE, allowStaleOnError: true },
    });
    expect(() => validateCall(req, route, big)).not.toThrow();
    expect(toBinary(CompleteRequestSchema, req).length).toBeLessThanOrEqual(largestValidRequestBytes(big, 40));
  });

  it('says what the bound is', () => {
    expect(problem(() => validateCall(request({ params: { maxTokens: 5000 } }), route, limits)).problem).toBe('must be between 1 and 1000 (0 means the default 256), got 5000');
  });

  it('bypasses the cache when the route is not cacheable or the caller says so', () => {
    expect(validateCall(request(), { ...route, cacheable: false }, limits).cache).toEqual({ read: false, write: false, staleOnError: false });
    expect(validateCall(request({ cachePolicy: { mode: CacheMode.BYPASS } }), route, limits).cache.read).toBe(false);
    expect(validateCall(request({ cachePolicy: { mode: CacheMode.REFRESH } }), route, limits).cache).toEqual({ read: false, write: true, staleOnError: false });
    expect(validateCall(request({ cachePolicy: { mode: CacheMode.NO_STORE, allowStaleOnError: false } }), route, limits).cache).toEqual({ read: true, write: false, staleOnError: false });
  });
});
