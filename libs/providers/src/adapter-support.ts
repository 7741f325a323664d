import { CLASS_POLICY } from './error-class';
import { InvalidChatRequestError, ProviderError } from './errors';
import { classify } from './classify';
import { hasRateLimitInfo, headerMap, parseRateLimitHeaders, upstreamRequestIdFrom } from './rate-limit-headers';
import type { CallOptions, ChatResponse, RateLimitSnapshot } from './types';

const MAX_TIMER_MS = 2 ** 31 - 1;

/** Rejects bad call options with the field named (a caller bug, so INVALID_REQUEST, never retried). */
export function checkCallOptions(opts: CallOptions): void {
  for (const field of ['timeoutMs', 'firstTokenTimeoutMs', 'idleTimeoutMs'] as const) {
    const v = opts[field];
    // setTimeout fires at once for delays above 2^31-1 ms, which would turn a long timeout into an instant one.
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > MAX_TIMER_MS)) {
      throw new InvalidChatRequestError(field, `must be a positive number of milliseconds up to ${MAX_TIMER_MS} (got ${String(v)})`);
    }
  }
}

/** Input errors become ProviderError(INVALID_REQUEST) so callers handle exactly two failure types. */
export function invalidRequest(err: unknown, deployment: string): Error {
  if (err instanceof InvalidChatRequestError) {
    return new ProviderError({ errorClass: 'INVALID_REQUEST', ...CLASS_POLICY.INVALID_REQUEST, message: err.message }, err, deployment);
  }
  return err instanceof Error ? err : new Error(String(err));
}

export interface ResponseMetaResult {
  upstreamRequestId?: string;
  rateLimit?: RateLimitSnapshot;
}

export function metaFromHeaders(fetched: Headers, now: number): ResponseMetaResult {
  const out: ResponseMetaResult = {};
  const headers = headerMap(fetched);
  const id = upstreamRequestIdFrom(headers);
  if (id) out.upstreamRequestId = id;
  const rl = parseRateLimitHeaders(headers, now);
  if (hasRateLimitInfo(rl) || rl.ignored.length > 0) out.rateLimit = rl;
  return out;
}

/** A 200 whose answer was filtered is a failure (CONTENT_FILTER), not an answer. */
export function contentFilterFailure(res: ChatResponse, deployment: string): ProviderError | undefined {
  if (res.finishReason !== 'content_filter') return undefined;
  const c = classify(res)!;
  if (res.responseId) c.responseId = res.responseId;
  return new ProviderError(c, undefined, deployment);
}

/** Names the answer a failure belongs to, when the provider had already said its id (a stream that broke after it began). */
export function withResponseId(err: Error, responseId: string | undefined): Error {
  if (responseId && err instanceof ProviderError) err.classification.responseId ??= responseId;
  return err;
}
