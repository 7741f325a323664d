import { anthropicSdk } from './anthropic-sdk';
import OpenAI from 'openai';
import { classify } from './classify';
import { CLASS_POLICY } from './error-class';
import { IncompleteStreamError, ProviderError, TimeoutAbort } from './errors';

// As a process with an Anthropic deployment has it: the SDK is loaded with the first Anthropic client (anthropic-sdk.ts).
const Anthropic = anthropicSdk().default;
const NOW = Date.parse('2025-01-01T00:00:00Z');

function openaiError(status: number | undefined, error: object | undefined, headers: Record<string, string> = {}) {
  return OpenAI.APIError.generate(status, error === undefined ? undefined : { error }, undefined, status ? new Headers({ 'x-request-id': 'req_oa', ...headers }) : undefined);
}
function anthropicError(status: number, type: string, message: string, headers: Record<string, string> = {}) {
  return Anthropic.APIError.generate(status, { type: 'error', error: { type, message } }, undefined, new Headers({ 'request-id': 'req_an', ...headers }));
}
const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

describe('classify: HTTP errors from the real SDK error classes', () => {
  it.each([
    ['openai 429 rate_limit_exceeded', 'RATE_LIMITED', () => openaiError(429, { message: 'Rate limit reached', type: 'requests', code: 'rate_limit_exceeded' })],
    ['openai 429 insufficient_quota', 'QUOTA_EXHAUSTED', () => openaiError(429, { message: 'You exceeded your current quota', type: 'insufficient_quota', code: 'insufficient_quota' })],
    ['anthropic 429 rate_limit_error', 'RATE_LIMITED', () => anthropicError(429, 'rate_limit_error', 'Number of request tokens has exceeded your per-minute rate limit')],
    ['anthropic 400 spend limit', 'QUOTA_EXHAUSTED', () => anthropicError(400, 'invalid_request_error', 'You have reached your specified API usage limits.')],
    ['anthropic 429 enforced_spend_limit_reached', 'QUOTA_EXHAUSTED', () => Anthropic.APIError.generate(429, { type: 'error', error: { type: 'rate_limit_error', message: 'spend limit', details: { error_code: 'enforced_spend_limit_reached' } } }, undefined, new Headers({ 'request-id': 'req_an' }))],
    ['anthropic 402 billing_error', 'QUOTA_EXHAUSTED', () => anthropicError(402, 'billing_error', 'credit balance is too low')],
    ['openai 503', 'OVERLOADED', () => openaiError(503, { message: 'The engine is currently overloaded', type: 'server_error' })],
    ['anthropic 529 overloaded_error', 'OVERLOADED', () => anthropicError(529, 'overloaded_error', 'Overloaded')],
    ['openai 500', 'SERVER_ERROR', () => openaiError(500, { message: 'oops', type: 'server_error' })],
    ['openai 502', 'SERVER_ERROR', () => openaiError(502, undefined)],
    ['anthropic 504 timeout_error', 'SERVER_ERROR', () => anthropicError(504, 'timeout_error', 'upstream timed out')],
    ['openai 400 context_length_exceeded', 'CONTEXT_LENGTH', () => openaiError(400, { message: "This model's maximum context length is 128000 tokens", code: 'context_length_exceeded', type: 'invalid_request_error' })],
    ['anthropic 400 prompt is too long', 'CONTEXT_LENGTH', () => anthropicError(400, 'invalid_request_error', 'prompt is too long: 210000 tokens > 200000 maximum')],
    ['azure 400 content_filter', 'CONTENT_FILTER', () => openaiError(400, { message: "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.", code: 'content_filter' })],
    ['openai 401', 'AUTH', () => openaiError(401, { message: 'Incorrect API key provided', code: 'invalid_api_key' })],
    ['anthropic 403 permission_error', 'AUTH', () => anthropicError(403, 'permission_error', 'no access')],
    ['openai 404 model_not_found', 'INVALID_REQUEST', () => openaiError(404, { message: 'The model does not exist', code: 'model_not_found' })],
    ['anthropic 413 request_too_large', 'INVALID_REQUEST', () => anthropicError(413, 'request_too_large', 'Request exceeds the maximum size')],
    ['openai 422', 'INVALID_REQUEST', () => openaiError(422, { message: 'bad' })],
    ['openai 400 plain', 'INVALID_REQUEST', () => openaiError(400, { message: "Invalid value for 'temperature'", param: 'temperature' })],
    ['openai 408', 'TIMEOUT', () => openaiError(408, { message: 'request timeout' })],
  ] as [string, string, () => Error][])('%s → %s', (_name, expected, make) => {
    const c = classify(make(), { now: NOW })!;
    expect(c.errorClass).toBe(expected);
    const policy = CLASS_POLICY[expected as keyof typeof CLASS_POLICY];
    expect({ retryable: c.retryable, countsTowardBreaker: c.countsTowardBreaker, fallbackAllowed: c.fallbackAllowed }).toEqual(policy);
    expect(c.upstreamRequestId).toMatch(/^req_/);
    expect(c.status).toBeGreaterThan(0);
  });

  it('only OVERLOADED, SERVER_ERROR, TIMEOUT and NETWORK count toward the breaker', () => {
    const counting = Object.entries(CLASS_POLICY).filter(([, p]) => p.countsTowardBreaker).map(([k]) => k).sort();
    expect(counting).toEqual(['NETWORK', 'OVERLOADED', 'SERVER_ERROR', 'TIMEOUT']);
  });
});

describe('classify: x-should-retry and Retry-After', () => {
  it('x-should-retry: false makes a 500 non-retryable but it still counts toward the breaker', () => {
    const c = classify(openaiError(500, { message: 'x' }, { 'x-should-retry': 'false' }))!;
    expect(c).toMatchObject({ errorClass: 'SERVER_ERROR', retryable: false, countsTowardBreaker: true });
  });

  it('x-should-retry: true makes a 400 retryable without changing its class', () => {
    const c = classify(openaiError(400, { message: 'transient' }, { 'x-should-retry': 'true' }))!;
    expect(c).toMatchObject({ errorClass: 'INVALID_REQUEST', retryable: true, countsTowardBreaker: false });
  });

  it('ignores an x-should-retry value that is neither true nor false', () => {
    expect(classify(openaiError(500, { message: 'x' }, { 'x-should-retry': 'maybe' }))!.retryable).toBe(true);
  });

  it('prefers retry-after-ms over retry-after', () => {
    const c = classify(openaiError(429, { message: 'slow down', code: 'rate_limit_exceeded' }, { 'retry-after-ms': '1500.2', 'retry-after': '9' }), { now: NOW })!;
    expect(c.retryAfterMs).toBe(1501);
  });

  it('reads retry-after in seconds', () => {
    expect(classify(anthropicError(429, 'rate_limit_error', 'x', { 'retry-after': '7' }), { now: NOW })!.retryAfterMs).toBe(7000);
  });

  it('reads retry-after as an HTTP-date relative to now', () => {
    const date = new Date(NOW + 30_000).toUTCString();
    expect(classify(anthropicError(529, 'overloaded_error', 'x', { 'retry-after': date }), { now: NOW })!.retryAfterMs).toBe(30_000);
  });

  it('treats an HTTP-date in the past as "retry now"', () => {
    const date = new Date(NOW - 5_000).toUTCString();
    expect(classify(anthropicError(429, 'rate_limit_error', 'x', { 'retry-after': date }), { now: NOW })!.retryAfterMs).toBe(0);
  });

  it('falls back to retry-after when retry-after-ms is garbage, and reports the ignored header', () => {
    const c = classify(openaiError(429, { message: 'x', code: 'rate_limit_exceeded' }, { 'retry-after-ms': 'soon', 'retry-after': '2' }), { now: NOW })!;
    expect(c.retryAfterMs).toBe(2000);
    expect(c.rateLimit?.ignored).toEqual([{ header: 'retry-after-ms', reason: 'not a number: "soon"' }]);
  });

  it('carries rate-limit headers of a 429 for the limiter', () => {
    const c = classify(openaiError(429, { message: 'x', code: 'rate_limit_exceeded' }, { 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '6m0s' }), { now: NOW })!;
    expect(c.rateLimit?.requests).toEqual({ remaining: 0, resetAt: NOW + 360_000 });
  });
});

describe('classify: transport failures, timeouts and cancellation', () => {
  it('digs ECONNRESET out of APIConnectionError.cause → NETWORK', () => {
    const fetchFailed = new TypeError('fetch failed', { cause: withCode('read ECONNRESET', 'ECONNRESET') });
    const c = classify(new OpenAI.APIConnectionError({ cause: fetchFailed }))!;
    expect(c).toMatchObject({ errorClass: 'NETWORK', retryable: true, countsTowardBreaker: true, providerCode: 'ECONNRESET' });
    expect(c.message).toContain('read ECONNRESET');
  });

  it.each(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID'])('%s → NETWORK', (code) => {
    const err = new Anthropic.APIConnectionError({ cause: new TypeError('fetch failed', { cause: withCode('boom', code) }) });
    expect(classify(err)!.errorClass).toBe('NETWORK');
  });

  it('socket hang up without a code is still NETWORK', () => {
    expect(classify(new Error('socket hang up'))!.errorClass).toBe('NETWORK');
  });

  it('the SDK connection timeout → TIMEOUT', () => {
    expect(classify(new OpenAI.APIConnectionTimeoutError())!.errorClass).toBe('TIMEOUT');
    expect(classify(new Anthropic.APIConnectionTimeoutError())!.errorClass).toBe('TIMEOUT');
  });

  it('an abort whose reason is our TimeoutAbort → TIMEOUT; any other abort reason is a caller cancel (null)', () => {
    const timedOut = new AbortController();
    timedOut.abort(new TimeoutAbort('first-token', 50));
    expect(classify(new OpenAI.APIUserAbortError(), { signal: timedOut.signal })).toMatchObject({ errorClass: 'TIMEOUT', message: 'first-token timeout after 50 ms', timeoutKind: 'first-token' });
    const cancelled = new AbortController();
    cancelled.abort(new Error('client went away'));
    expect(classify(new OpenAI.APIUserAbortError(), { signal: cancelled.signal })).toBeNull();
    expect(classify(new DOMException('aborted', 'AbortError'), { signal: cancelled.signal })).toBeNull();
  });

  it('a TimeoutAbort thrown directly → TIMEOUT, naming which timer; after output, an interruption that keeps it', () => {
    expect(classify(new TimeoutAbort('idle', 10))).toMatchObject({ errorClass: 'TIMEOUT', timeoutKind: 'idle' });
    expect(classify(new TimeoutAbort('total', 10), { afterFirstChunk: true })).toMatchObject({ errorClass: 'STREAM_INTERRUPTED', interruptedBy: 'TIMEOUT', timeoutKind: 'total', countsTowardBreaker: true });
  });

  it('a stream that ends without its terminal event → NETWORK', () => {
    expect(classify(new IncompleteStreamError('cut'))!.errorClass).toBe('NETWORK');
  });

  it('returns a ProviderError’s own classification unchanged', () => {
    const inner = classify(new TimeoutAbort('total', 1))!;
    expect(classify(new ProviderError(inner))).toBe(inner);
  });
});

describe('classify: streams', () => {
  it('any failure after the first chunk is STREAM_INTERRUPTED, remembering what interrupted it', () => {
    const err = new OpenAI.APIConnectionError({ cause: new TypeError('terminated', { cause: withCode('other side closed', 'UND_ERR_SOCKET') }) });
    const c = classify(err, { afterFirstChunk: true })!;
    expect(c).toMatchObject({ errorClass: 'STREAM_INTERRUPTED', interruptedBy: 'NETWORK', retryable: false, fallbackAllowed: false, countsTowardBreaker: true });
  });

  it('an Anthropic SSE error event before any text classifies by its type (overloaded → retry is safe)', () => {
    const sse = new Anthropic.APIError(undefined, { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }, undefined, new Headers({ 'request-id': 'req_s' }), 'overloaded_error');
    expect(classify(sse)).toMatchObject({ errorClass: 'OVERLOADED', retryable: true, upstreamRequestId: 'req_s' });
    expect(classify(sse, { afterFirstChunk: true })).toMatchObject({ errorClass: 'STREAM_INTERRUPTED', interruptedBy: 'OVERLOADED' });
  });

  it('an OpenAI SSE error payload after text is STREAM_INTERRUPTED', () => {
    const sse = new OpenAI.APIError(undefined, { message: 'The server had an error', type: 'server_error' }, undefined, new Headers());
    expect(classify(sse, { afterFirstChunk: true })).toMatchObject({ errorClass: 'STREAM_INTERRUPTED', interruptedBy: 'SERVER_ERROR' });
  });

  it('classifies raw stream event payloads', () => {
    expect(classify({ type: 'error', error: { type: 'rate_limit_error', message: 'x' } })!.errorClass).toBe('RATE_LIMITED');
    expect(classify({ error: { message: 'boom', type: 'server_error' } })!.errorClass).toBe('SERVER_ERROR');
    expect(classify({ type: 'message_delta', delta: { stop_reason: 'refusal' } })!.errorClass).toBe('CONTENT_FILTER');
    expect(classify({ type: 'content_block_delta', delta: { type: 'text_delta', text: 'x' } })).toBeNull();
  });
});

describe('classify: 200 responses', () => {
  it('finish_reason content_filter on a 200 → CONTENT_FILTER, no retry, no fallback', () => {
    expect(classify({ choices: [{ finish_reason: 'content_filter' }] })).toMatchObject({ errorClass: 'CONTENT_FILTER', retryable: false, fallbackAllowed: false, status: 200 });
    expect(classify({ content: '', finishReason: 'content_filter', usage: { inputTokens: 1, outputTokens: 0 }, model: 'm', upstreamRequestId: 'r1' })).toMatchObject({
      errorClass: 'CONTENT_FILTER',
      upstreamRequestId: 'r1',
    });
    expect(classify({ type: 'message', stop_reason: 'refusal' })!.errorClass).toBe('CONTENT_FILTER');
  });

  it('a normal response is not a failure', () => {
    expect(classify({ choices: [{ finish_reason: 'stop' }] })).toBeNull();
    expect(classify({ content: 'x', finishReason: 'length', usage: { inputTokens: 1, outputTokens: 1 }, model: 'm' })).toBeNull();
    expect(classify({ type: 'message', stop_reason: 'end_turn' })).toBeNull();
  });
});
