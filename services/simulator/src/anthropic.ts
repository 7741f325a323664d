import type { IncomingHttpHeaders } from 'node:http';
import type { TokenMessage } from '@switchyard/tokens';
import { contentText, createIdSource, type ChatRequest, type Completion, type Dialect, type ErrorReply, type FaultContext } from './dialect';
import { formatRfc3339 } from './durations';
import type { LimitSnapshot, Rejection } from './rate-limits';
import type { FaultKind } from './scenario';

/**
 * Anthropic Messages API wire format: `POST /v1/messages`, `x-api-key` and
 * `anthropic-version` headers, typed error envelopes, and the named-event SSE
 * stream the `@anthropic-ai/sdk` parses.
 */

const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
const requestId = createIdSource(BASE58, 14);
const messageId = createIdSource(BASE58, 12);
const RATE_LIMIT_TAIL =
  'For details, refer to: https://docs.claude.com/en/api/rate-limits. You can see the response headers for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later. You may also contact sales at https://www.anthropic.com/contact-sales to discuss your options for a rate limit increase.';

function err(status: number, type: string, message: string, errorCode?: string): ErrorReply {
  const error = errorCode ? { type, message, details: { error_code: errorCode } } : { type, message };
  return { status, body: JSON.stringify({ type: 'error', error }) };
}
const invalid = (message: string) => err(400, 'invalid_request_error', message);

function parseMessages(b: Record<string, unknown>): TokenMessage[] | ErrorReply {
  const raw = b.messages;
  if (raw === undefined) return invalid('messages: Field required');
  if (!Array.isArray(raw)) return invalid('messages: Input should be a valid list');
  const out: TokenMessage[] = [];
  // The top-level system prompt is billed as input; count it as a leading message.
  if (b.system !== undefined) {
    const system = contentText(b.system);
    if (system === null) return invalid('system: Input should be a valid string or a list of text blocks');
    out.push({ role: 'system', content: system });
  }
  for (let i = 0; i < raw.length; i++) {
    const m = raw[i] as { role?: unknown; content?: unknown } | null;
    if (!m || typeof m !== 'object') return invalid(`messages.${i}: Input should be a valid dictionary`);
    if (m.role === 'system') {
      return invalid('messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, not "system" as an input message role.');
    }
    if (m.role !== 'user' && m.role !== 'assistant') return invalid(`messages.${i}.role: Input should be 'user' or 'assistant'`);
    const text = contentText(m.content);
    if (text === null) return invalid(`messages.${i}.content: Input should be a valid string or a list of content blocks`);
    out.push({ role: m.role, content: text });
  }
  return out;
}

function parse(body: unknown): ChatRequest | ErrorReply {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return invalid('Input should be a valid dictionary');
  const b = body as Record<string, unknown>;
  if (typeof b.model !== 'string' || b.model.length === 0) return invalid('model: Field required');
  // Anthropic, unlike OpenAI, has no default output length: max_tokens is mandatory.
  if (b.max_tokens === undefined) return invalid('max_tokens: Field required');
  if (typeof b.max_tokens !== 'number' || !Number.isInteger(b.max_tokens) || b.max_tokens < 1) {
    return invalid('max_tokens: Input should be greater than or equal to 1');
  }
  const messages = parseMessages(b);
  if (!Array.isArray(messages)) return messages;
  const stop = Array.isArray(b.stop_sequences) ? b.stop_sequences.filter((s): s is string => typeof s === 'string') : [];
  return { deployment: b.model, messages, maxTokens: b.max_tokens, stream: b.stream === true, includeUsage: false, stop };
}

function nextMonthUtc(nowMs: number): string {
  const d = new Date(nowMs);
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1)).toISOString().slice(0, 10);
}

function fault(kind: FaultKind, ctx: FaultContext): ErrorReply {
  switch (kind) {
    case 'rate_limit':
      return err(429, 'rate_limit_error', `This request would exceed the rate limit for your organization (org-simulator) of ${ctx.rpmLimit ?? 50} requests per minute. ${RATE_LIMIT_TAIL}`);
    case 'insufficient_quota':
      return invalid('Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.');
    case 'spend_limit':
      // The current API (as @anthropic-ai/sdk 1.x models it: EnforcedSpendLimitReachedError) answers an enforced
      // spend limit with a 429 rate_limit_error whose details.error_code tells it apart from an ordinary rate limit.
      return err(
        429,
        'rate_limit_error',
        `You have reached your specified API usage limits. You will regain access on ${nextMonthUtc(Date.now())} at 00:00 UTC.`,
        'enforced_spend_limit_reached',
      );
    case 'server_error':
      return err(500, 'api_error', 'Internal server error');
    case 'bad_gateway':
      return err(502, 'api_error', 'Bad gateway');
    case 'unavailable':
      return err(503, 'api_error', 'Service unavailable');
    case 'gateway_timeout':
      return err(504, 'timeout_error', 'Request timed out');
    case 'overloaded':
      return err(529, 'overloaded_error', 'Overloaded');
    case 'context_length':
      return invalid(`prompt is too long: ${Math.max(ctx.promptTokens, ctx.contextWindow + 1)} tokens > ${ctx.contextWindow} maximum`);
    case 'content_policy':
      return invalid('Output blocked by content filtering policy');
    case 'unauthorized':
      return err(401, 'authentication_error', 'invalid x-api-key');
    case 'forbidden':
      return err(403, 'permission_error', 'Your API key does not have permission to use the specified resource.');
    case 'not_found':
      return err(404, 'not_found_error', `model: ${ctx.deployment}`);
    case 'too_large':
      return err(413, 'request_too_large', 'Request exceeds the maximum allowed number of bytes.');
    default:
      throw new Error(`anthropic: fault ${kind} has no error body`);
  }
}

function rateLimited(r: Rejection): ErrorReply {
  const unit = r.dimension === 'requests' ? 'requests' : 'tokens';
  if (!Number.isFinite(r.retryAfterMs)) {
    return err(429, 'rate_limit_error', `This request would exceed the rate limit for your organization (org-simulator) of ${r.limit} ${unit} per minute: it alone requests ${r.requested} ${unit}. ${RATE_LIMIT_TAIL}`);
  }
  return err(429, 'rate_limit_error', `This request would exceed the rate limit for your organization (org-simulator) of ${r.limit} ${unit} per minute. ${RATE_LIMIT_TAIL}`);
}

/**
 * Anthropic limits input and output tokens separately; the simulator keeps one
 * token bucket per key (prompt + max_tokens) and reports it under all three
 * token families, which is what a client reading any of them needs.
 */
function addLimitHeaders(h: Record<string, string>, s: LimitSnapshot, now: number): void {
  if (s.requests) {
    h['anthropic-ratelimit-requests-limit'] = String(s.requests.limit);
    h['anthropic-ratelimit-requests-remaining'] = String(s.requests.remaining);
    h['anthropic-ratelimit-requests-reset'] = formatRfc3339(now + s.requests.resetMs);
  }
  if (s.tokens) {
    const limit = String(s.tokens.limit);
    const remaining = String(s.tokens.remaining);
    const reset = formatRfc3339(now + s.tokens.resetMs);
    for (const family of ['tokens', 'input-tokens', 'output-tokens']) {
      h[`anthropic-ratelimit-${family}-limit`] = limit;
      h[`anthropic-ratelimit-${family}-remaining`] = remaining;
      h[`anthropic-ratelimit-${family}-reset`] = reset;
    }
  }
}

const STOP_REASON = { stop: 'end_turn', length: 'max_tokens', stop_sequence: 'stop_sequence', content_filter: 'refusal' } as const;

function usage(c: Completion, outputTokens: number): string {
  return `{"input_tokens":${c.promptTokens},"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":${outputTokens},"service_tier":"standard"}`;
}

function completionBody(c: Completion): string {
  const content = c.text.length > 0 ? `[{"type":"text","text":${JSON.stringify(c.text)}}]` : '[]';
  return `{"id":"${c.id}","type":"message","role":"assistant","model":${JSON.stringify(c.model)},"content":${content},"stop_reason":"${STOP_REASON[c.finish]}","stop_sequence":${c.stopSequence === null ? 'null' : JSON.stringify(c.stopSequence)},"usage":${usage(c, c.completionTokens)}}`;
}

const event = (name: string, data: string) => `event: ${name}\ndata: ${data}\n\n`;

export function createAnthropicDialect(): Dialect {
  return {
    name: 'anthropic',
    tokenProvider: 'anthropic',
    apiKey: (headers: IncomingHttpHeaders) => {
      const key = headers['x-api-key'];
      if (typeof key === 'string' && key.length > 0) return key;
      const auth = headers.authorization;
      return auth?.startsWith('Bearer ') ? auth.slice(7).trim() || undefined : undefined;
    },
    preflight: (headers) => (headers['anthropic-version'] ? null : invalid('anthropic-version: header is required')),
    missingKey: () => err(401, 'authentication_error', 'x-api-key header is required'),
    invalidJson: () => invalid('There was an error parsing the body. Please make sure the request body is valid JSON.'),
    parse: (body) => parse(body),
    fault,
    rateLimited: (r) => rateLimited(r),
    // Anthropic error envelopes carry the request id in the body too ({type, error, request_id}).
    stampError: (body, headers) => `${body.slice(0, -1)},"request_id":"${headers['request-id']}"}`,
    baseHeaders: () => ({ 'content-type': 'application/json', 'request-id': `req_011C${requestId()}`, 'anthropic-organization-id': '00000000-0000-4000-8000-5100a7000000' }),
    addLimitHeaders,
    newId: () => `msg_01${messageId()}`,
    completion: completionBody,
    stream: {
      open: (c) =>
        event('message_start', `{"type":"message_start","message":{"id":"${c.id}","type":"message","role":"assistant","model":${JSON.stringify(c.model)},"content":[],"stop_reason":null,"stop_sequence":null,"usage":${usage(c, 1)}}}`) +
        event('content_block_start', '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}') +
        event('ping', '{"type":"ping"}'),
      delta: (_c, piece) => event('content_block_delta', `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":${JSON.stringify(piece)}}}`),
      close: (c) =>
        event('content_block_stop', '{"type":"content_block_stop","index":0}') +
        event('message_delta', `{"type":"message_delta","delta":{"stop_reason":"${STOP_REASON[c.finish]}","stop_sequence":${c.stopSequence === null ? 'null' : JSON.stringify(c.stopSequence)}},"usage":{"output_tokens":${c.completionTokens}}}`) +
        event('message_stop', '{"type":"message_stop"}'),
      error: () => event('error', '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'),
    },
  };
}
