import type { APIError as AnthropicAPIError } from '@anthropic-ai/sdk';
import { loadedAnthropicSdk } from './anthropic-sdk';
import { APIError as OpenAIAPIError, APIConnectionError as OpenAIConnectionError, APIConnectionTimeoutError as OpenAIConnectionTimeoutError, APIUserAbortError as OpenAIUserAbortError } from 'openai';
import { CLASS_POLICY, type Classification, type ErrorClass } from './error-class';
import { CancelledError, IncompleteStreamError, InvalidChatRequestError, ProviderError, TimeoutAbort } from './errors';
import { hasRateLimitInfo, headerGetter, parseRateLimitHeaders, upstreamRequestIdFrom, type HeaderSource } from './rate-limit-headers';

export interface ClassifyContext {
  /**
   * The attempt's abort signal. When the failure is an abort, its reason
   * decides: a TimeoutAbort → TIMEOUT, anything else → caller cancellation
   * (classify returns null).
   */
  signal?: AbortSignal;
  /** True once a content delta has reached the caller: any failure becomes STREAM_INTERRUPTED. */
  afterFirstChunk?: boolean;
  /** Response headers already known (stream errors arrive after the headers). */
  headers?: HeaderSource;
  /** Epoch ms for HTTP-date Retry-After and rate-limit resets; default Date.now(). */
  now?: number;
}

/**
 * Maps anything an attempt can end with to an error class:
 * - SDK errors (openai / @anthropic-ai/sdk APIError and its subclasses, incl.
 *   SSE `error` events, which the SDKs throw as status-less APIErrors),
 * - our TimeoutAbort, aborts, raw socket/DNS/TLS errors,
 * - a neutral ChatResponse / end StreamChunk, an OpenAI completion or chunk,
 *   an Anthropic message or stream event (content filter / SSE error).
 *
 * Returns null for "nothing to classify": a successful response or event, or a
 * caller cancellation (which is deliberately not an error class; see
 * CancelledError). Unknown thrown values classify as SERVER_ERROR: they come
 * from inside the provider call (malformed body, broken stream) and a retry is
 * the safe default.
 */
export function classify(input: unknown, ctx: ClassifyContext = {}): Classification | null {
  const base = classifyBase(input, ctx);
  if (base === null) return null;
  if (ctx.afterFirstChunk && base.errorClass !== 'STREAM_INTERRUPTED' && base.errorClass !== 'CONTENT_FILTER') {
    // Text already reached the caller: this attempt cannot be silently replayed.
    const policy = CLASS_POLICY.STREAM_INTERRUPTED;
    return {
      ...base,
      errorClass: 'STREAM_INTERRUPTED',
      retryable: policy.retryable,
      fallbackAllowed: policy.fallbackAllowed,
      countsTowardBreaker: CLASS_POLICY[base.errorClass].countsTowardBreaker,
      interruptedBy: base.errorClass,
      message: `stream interrupted after partial output: ${base.message}`,
    };
  }
  return base;
}

function make(errorClass: ErrorClass, message: string, extra: Partial<Classification> = {}): Classification {
  return { errorClass, ...CLASS_POLICY[errorClass], message, ...extra };
}

function classifyBase(input: unknown, ctx: ClassifyContext): Classification | null {
  if (input instanceof ProviderError) return input.classification;
  if (input instanceof CancelledError) return null;
  if (input instanceof TimeoutAbort) return make('TIMEOUT', input.message, { timeoutKind: input.kind });
  if (input instanceof InvalidChatRequestError) return make('INVALID_REQUEST', input.message);
  if (input instanceof IncompleteStreamError) return make('NETWORK', input.message, requestMeta(ctx.headers, ctx.now));

  // Aborts: what the abort meant is in the signal's reason, not in the error.
  if (isAbortLike(input)) {
    const reason = ctx.signal?.aborted ? ctx.signal.reason : undefined;
    if (reason instanceof TimeoutAbort) return make('TIMEOUT', reason.message, { timeoutKind: reason.kind });
    if (ctx.signal?.aborted) return null;
    // An abort nobody asked for (SDK-internal timer): a timeout.
    return make('TIMEOUT', errorMessage(input) || 'request aborted');
  }
  if (ctx.signal?.aborted && ctx.signal.reason instanceof TimeoutAbort && isConnectionError(input)) {
    return make('TIMEOUT', ctx.signal.reason.message, { timeoutKind: ctx.signal.reason.kind });
  }

  const anthropic = loadedAnthropicSdk();
  if (input instanceof OpenAIConnectionTimeoutError || (anthropic && input instanceof anthropic.APIConnectionTimeoutError)) {
    return make('TIMEOUT', (input as Error).message);
  }
  if (input instanceof OpenAIConnectionError || (anthropic && input instanceof anthropic.APIConnectionError)) {
    return classifyNetwork(input as Error, ctx);
  }
  if (input instanceof OpenAIAPIError || (anthropic && input instanceof anthropic.APIError)) {
    return classifyApiError(input as OpenAIAPIError | AnthropicAPIError, ctx);
  }
  if (isErrorLike(input)) {
    if (networkCode(input) !== undefined || /socket hang up|other side closed|terminated|fetch failed/i.test(input.message)) {
      return classifyNetwork(input, ctx);
    }
    return make('SERVER_ERROR', `unexpected error from provider call: ${input.message}`, requestMeta(ctx.headers, ctx.now));
  }
  if (input !== null && typeof input === 'object') return classifyPayload(input as Record<string, unknown>, ctx);
  return make('SERVER_ERROR', `unexpected value thrown from provider call: ${String(input)}`);
}

/**
 * Structural, not `instanceof Error`: errors raised inside Node's bundled
 * undici come from another realm under some runners (jest's vm context), and
 * an `instanceof` miss there would turn a socket error into "not an error".
 */
function isErrorLike(v: unknown): v is Error {
  return typeof v === 'object' && v !== null && typeof (v as { message?: unknown }).message === 'string' && ('stack' in v || 'name' in v);
}

function isAbortLike(err: unknown): boolean {
  const anthropic = loadedAnthropicSdk();
  if (err instanceof OpenAIUserAbortError || (anthropic && err instanceof anthropic.APIUserAbortError)) return true;
  return typeof err === 'object' && err !== null && (err as { name?: unknown }).name === 'AbortError';
}

function isConnectionError(err: unknown): boolean {
  const anthropic = loadedAnthropicSdk();
  return err instanceof OpenAIConnectionError || (anthropic !== undefined && err instanceof anthropic.APIConnectionError) || (isErrorLike(err) && networkCode(err) !== undefined);
}

const NETWORK_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN',
  'ETIMEDOUT', 'EPROTO', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT',
  'CERT_HAS_EXPIRED', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** First recognised socket/DNS/TLS code along the `cause` chain (undici nests: TypeError('fetch failed') → SocketError → ...). */
export function networkCode(err: unknown): string | undefined {
  let cur: unknown = err;
  for (let depth = 0; depth < 8 && cur !== null && typeof cur === 'object'; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && (NETWORK_CODES.has(code) || code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL'))) return code;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

function causeMessages(err: unknown): string {
  const parts: string[] = [];
  let cur: unknown = err;
  for (let depth = 0; depth < 8 && isErrorLike(cur); depth++) {
    if (cur.message && !parts.includes(cur.message)) parts.push(cur.message);
    cur = (cur as { cause?: unknown }).cause;
  }
  return parts.join(' <- ');
}

function classifyNetwork(err: Error, ctx: ClassifyContext): Classification {
  const code = networkCode(err);
  const text = causeMessages(err);
  // Timeouts below HTTP (connect / headers / body timers) are timeouts, not resets.
  if (code === 'ETIMEDOUT' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return make('TIMEOUT', `${code}: ${text}`, requestMeta(ctx.headers, ctx.now));
  }
  return make('NETWORK', code ? `${code}: ${text}` : text || 'connection error', { ...requestMeta(ctx.headers, ctx.now), ...(code ? { providerCode: code } : {}) });
}

interface ErrorFields {
  type?: string;
  code?: string;
  message: string;
}

/**
 * OpenAI's APIError.error is the inner `{message,type,code,param}`; Anthropic's
 * is the whole body `{type:'error', error:{type,message}}`. Read both shapes.
 */
function errorFields(err: OpenAIAPIError | AnthropicAPIError): ErrorFields {
  const body = (err.error ?? {}) as Record<string, unknown>;
  const inner = (typeof body['error'] === 'object' && body['error'] !== null ? body['error'] : body) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' && v.length > 0 ? v : undefined);
  const type = str((err as { type?: unknown }).type) ?? str(inner['type']);
  const code = str((err as { code?: unknown }).code) ?? str((err as { errorCode?: unknown }).errorCode) ?? str(inner['code']);
  const message = str(inner['message']) ?? err.message;
  return { ...(type ? { type } : {}), ...(code ? { code } : {}), message };
}

const QUOTA_CODES = new Set(['insufficient_quota', 'billing_error', 'enforced_spend_limit_reached', 'billing_hard_limit_reached', 'spend_limit_reached']);
const QUOTA_TEXT = /insufficient_quota|exceeded your current quota|spend limit|enforced_spend_limit|api usage limits|credit balance is too low/i;
const CONTEXT_CODES = new Set(['context_length_exceeded', 'string_above_max_length']);
const CONTEXT_TEXT = /context_length_exceeded|prompt is too long|maximum context length|context window|exceed(?:s)? context limit|too many tokens/i;
const CONTENT_CODES = new Set(['content_filter', 'content_policy_violation', 'ResponsibleAIPolicyViolation']);
const CONTENT_TEXT = /content (?:management )?policy|content filter|content_filter|flagged by|responsibleaipolicyviolation/i;

function classifyApiError(err: OpenAIAPIError | AnthropicAPIError, ctx: ClassifyContext): Classification {
  const status = typeof err.status === 'number' ? err.status : undefined;
  const headers = err.headers ?? ctx.headers;
  const f = errorFields(err);
  const providerCode = f.code ?? f.type;
  const errorClass = pickClass(status, f);
  const extra: Partial<Classification> = { ...requestMeta(headers, ctx.now) };
  if (status !== undefined) extra.status = status;
  if (providerCode !== undefined) extra.providerCode = providerCode;
  const requestId = err.requestID ?? upstreamRequestIdFrom(headers);
  if (requestId) extra.upstreamRequestId = requestId;
  const c = make(errorClass, status !== undefined ? `${status} ${f.message}` : f.message, extra);
  const shouldRetry = headerGetter(headers)('x-should-retry')?.trim().toLowerCase();
  if (shouldRetry === 'true') c.retryable = true;
  else if (shouldRetry === 'false') c.retryable = false;
  return c;
}

function pickClass(status: number | undefined, f: ErrorFields): ErrorClass {
  const code = f.code ?? '';
  const type = f.type ?? '';
  if (status === 402 || QUOTA_CODES.has(code) || QUOTA_CODES.has(type) || ((status === undefined || status === 400 || status === 403 || status === 429) && QUOTA_TEXT.test(f.message))) {
    return 'QUOTA_EXHAUSTED';
  }
  if (status === 429 || type === 'rate_limit_error' || code === 'rate_limit_exceeded') return 'RATE_LIMITED';
  if (status === 503 || status === 529 || type === 'overloaded_error') return 'OVERLOADED';
  if (status === 401 || status === 403 || type === 'authentication_error' || type === 'permission_error') return 'AUTH';
  const clientError = status !== undefined ? status >= 400 && status < 500 : type === 'invalid_request_error' || type === 'not_found_error';
  if (clientError || CONTEXT_CODES.has(code) || CONTENT_CODES.has(code)) {
    if (status === 408) return 'TIMEOUT';
    if (CONTEXT_CODES.has(code) || CONTEXT_TEXT.test(f.message)) return 'CONTEXT_LENGTH';
    if (CONTENT_CODES.has(code) || CONTENT_CODES.has(type) || CONTENT_TEXT.test(f.message)) return 'CONTENT_FILTER';
    return 'INVALID_REQUEST';
  }
  // 5xx, status-less SSE errors (api_error, server_error, timeout_error) and anything unexpected.
  return 'SERVER_ERROR';
}

function requestMeta(headers: HeaderSource | undefined, now: number | undefined): Partial<Classification> {
  if (!headers) return {};
  const out: Partial<Classification> = {};
  const id = upstreamRequestIdFrom(headers);
  if (id) out.upstreamRequestId = id;
  const snapshot = parseRateLimitHeaders(headers, now ?? Date.now());
  if (snapshot.retryAfterMs !== undefined) out.retryAfterMs = snapshot.retryAfterMs;
  if (hasRateLimitInfo(snapshot) || snapshot.ignored.length > 0) out.rateLimit = snapshot;
  return out;
}

function errorMessage(err: unknown): string {
  return isErrorLike(err) ? err.message : '';
}

/** Non-error payloads: responses and stream events that still mean "failure". */
function classifyPayload(obj: Record<string, unknown>, ctx: ClassifyContext): Classification | null {
  const meta = requestMeta(ctx.headers, ctx.now);
  // Neutral ChatResponse or end StreamChunk.
  if (obj['finishReason'] === 'content_filter') {
    const id = typeof obj['upstreamRequestId'] === 'string' ? { upstreamRequestId: obj['upstreamRequestId'] } : {};
    return make('CONTENT_FILTER', 'output stopped by the provider content filter', { ...meta, ...id, status: 200 });
  }
  // OpenAI completion / chunk.
  if (Array.isArray(obj['choices'])) {
    const filtered = (obj['choices'] as { finish_reason?: unknown }[]).some((c) => c?.finish_reason === 'content_filter');
    return filtered ? make('CONTENT_FILTER', 'finish_reason content_filter', { ...meta, status: 200 }) : null;
  }
  // Anthropic message.
  if (obj['type'] === 'message') {
    return obj['stop_reason'] === 'refusal' ? make('CONTENT_FILTER', 'stop_reason refusal', { ...meta, status: 200 }) : null;
  }
  // Anthropic message_delta with a refusal.
  if (obj['type'] === 'message_delta') {
    const delta = obj['delta'] as { stop_reason?: unknown } | undefined;
    return delta?.stop_reason === 'refusal' ? make('CONTENT_FILTER', 'stop_reason refusal', { ...meta, status: 200 }) : null;
  }
  // SSE error event payload: Anthropic {type:'error', error:{type,message}}, OpenAI {error:{message,type,code}}.
  const error = obj['error'];
  if ((obj['type'] === 'error' || error !== undefined) && typeof error === 'object' && error !== null) {
    const e = error as Record<string, unknown>;
    const f: ErrorFields = {
      ...(typeof e['type'] === 'string' ? { type: e['type'] } : {}),
      ...(typeof e['code'] === 'string' ? { code: e['code'] } : {}),
      message: typeof e['message'] === 'string' ? e['message'] : JSON.stringify(e),
    };
    const providerCode = f.code ?? f.type;
    return make(pickClass(undefined, f), f.message, { ...meta, ...(providerCode ? { providerCode } : {}) });
  }
  // Recognised non-failure payloads: neutral chunks/responses and the other stream event types.
  if ('finishReason' in obj || obj['type'] === 'delta' || (typeof obj['type'] === 'string' && SUCCESS_EVENT_TYPES.has(obj['type']))) return null;
  return make('SERVER_ERROR', `unrecognised value from provider call: ${safeJson(obj)}`, meta);
}

const SUCCESS_EVENT_TYPES = new Set(['message_start', 'message_stop', 'content_block_start', 'content_block_delta', 'content_block_stop', 'ping', 'end']);

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v).slice(0, 200);
  } catch {
    return String(v);
  }
}
