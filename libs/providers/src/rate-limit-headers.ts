import type { IgnoredHeader, RateLimitBucket, RateLimitSnapshot } from './types';

/** Anything further out than this is not a real reset window (providers use up to a day; monthly caps are a budget concern). */
export const MAX_RESET_MS = 31 * 24 * 3_600_000;
/** A Retry-After beyond a day is treated as garbage rather than obeyed. */
export const MAX_RETRY_AFTER_MS = 24 * 3_600_000;
/** No provider limit comes near this; larger values are parse accidents. */
const MAX_COUNT = 1e12;
/** RFC 3339 resets slightly in the past are clock skew, not garbage; clamp them to now. */
const PAST_RESET_TOLERANCE_MS = 60_000;

export type HeaderSource = Headers | ReadonlyMap<string, string> | Record<string, string | string[] | undefined>;

/** Case-insensitive lookup over a fetch Headers, a map by lower-case name ({@link headerMap}) or a plain (e.g. node http) header record. */
export function headerGetter(headers: HeaderSource | undefined): (name: string) => string | undefined {
  if (!headers) return () => undefined;
  if (headers instanceof Map) {
    const map = headers as ReadonlyMap<string, string>;
    return (name) => map.get(name.toLowerCase());
  }
  if (typeof (headers as Headers).get === 'function') {
    const h = headers as Headers;
    return (name) => h.get(name) ?? undefined;
  }
  const lower = new Map<string, string>();
  for (const [k, v] of Object.entries(headers as Record<string, string | string[] | undefined>)) {
    if (v === undefined) continue;
    lower.set(k.toLowerCase(), Array.isArray(v) ? v.join(', ') : v);
  }
  return (name) => lower.get(name.toLowerCase());
}

/**
 * A fetch Headers read once into a map by lower-case name, repeated values
 * joined as Headers.get joins them. An answer's headers are looked up some
 * twenty times (request id, every rate-limit bucket, retry-after), and each
 * undici get validates and normalises its name: one pass then map lookups
 * costs a fraction of that.
 */
export function headerMap(headers: Headers): Map<string, string> {
  const map = new Map<string, string>();
  headers.forEach((value, name) => {
    const prior = map.get(name);
    map.set(name, prior === undefined ? value : `${prior}, ${value}`);
  });
  return map;
}

const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ns: 1e-6 };
const DURATION_RE = /^(?:\d+(?:\.\d+)?|\.\d+)(?:h|ms|m|s|us|µs|μs|ns)/;

/**
 * Parses a Go `time.Duration` string as OpenAI sends in
 * `x-ratelimit-reset-*` (`1s`, `6m0s`, `12ms`, `23h47m36.648s`, `0.5s`) into
 * milliseconds. A bare number is taken as seconds (some OpenAI-compatible
 * servers send that). Returns undefined when the text is not a duration;
 * negative durations are reported as such by the caller (sign is returned).
 */
export function parseGoDuration(text: string): number | undefined {
  let s = text.trim();
  if (s.length === 0) return undefined;
  let sign = 1;
  if (s[0] === '-' || s[0] === '+') {
    if (s[0] === '-') sign = -1;
    s = s.slice(1);
  }
  if (/^\d+(?:\.\d+)?$/.test(s)) return sign * Number(s) * 1000;
  if (s === '0') return 0;
  let total = 0;
  while (s.length > 0) {
    const m = DURATION_RE.exec(s);
    if (!m) return undefined;
    const token = m[0];
    const unit = /[a-zµμ]+$/.exec(token)![0];
    total += Number(token.slice(0, token.length - unit.length)) * UNIT_MS[unit]!;
    s = s.slice(token.length);
  }
  return sign * total;
}

export interface RetryAfterResult {
  retryAfterMs?: number;
  ignored: IgnoredHeader[];
}

/**
 * `retry-after-ms` (OpenAI/Azure; milliseconds, may be fractional) wins over
 * `retry-after` (seconds or an HTTP-date, RFC 9110). Past dates mean "now"
 * (0 ms). Negative, unparseable or absurd (> 1 day) values are ignored with a
 * reason.
 */
export function parseRetryAfter(headers: HeaderSource | undefined, now: number): RetryAfterResult {
  const get = headerGetter(headers);
  const ignored: IgnoredHeader[] = [];
  const ms = get('retry-after-ms');
  if (ms !== undefined) {
    const v = Number(ms.trim());
    if (ms.trim() === '' || !Number.isFinite(v)) ignored.push({ header: 'retry-after-ms', reason: `not a number: ${JSON.stringify(ms)}` });
    else if (v < 0) ignored.push({ header: 'retry-after-ms', reason: `negative: ${ms}` });
    else if (v > MAX_RETRY_AFTER_MS) ignored.push({ header: 'retry-after-ms', reason: `absurd (> 1 day): ${ms}` });
    else return { retryAfterMs: Math.ceil(v), ignored };
  }
  const ra = get('retry-after');
  if (ra !== undefined) {
    const t = ra.trim();
    if (/^-?\d+(?:\.\d+)?$/.test(t)) {
      const v = Number(t) * 1000;
      if (v < 0) ignored.push({ header: 'retry-after', reason: `negative: ${ra}` });
      else if (v > MAX_RETRY_AFTER_MS) ignored.push({ header: 'retry-after', reason: `absurd (> 1 day): ${ra}` });
      else return { retryAfterMs: Math.ceil(v), ignored };
    } else {
      const at = Date.parse(t);
      if (t === '' || Number.isNaN(at)) ignored.push({ header: 'retry-after', reason: `neither seconds nor an HTTP-date: ${JSON.stringify(ra)}` });
      else if (at - now > MAX_RETRY_AFTER_MS) ignored.push({ header: 'retry-after', reason: `absurd (> 1 day ahead): ${ra}` });
      else return { retryAfterMs: Math.max(0, at - now), ignored };
    }
  }
  return { ignored };
}

type BucketKey = 'requests' | 'tokens' | 'inputTokens' | 'outputTokens';

interface BucketHeaders {
  key: BucketKey;
  limit: string;
  remaining: string;
  reset: string;
  resetFormat: 'duration' | 'rfc3339';
}

/**
 * OpenAI / Azure: `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`,
 * resets as Go durations. Anthropic:
 * `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}`,
 * resets as RFC 3339 timestamps.
 */
const BUCKETS: readonly BucketHeaders[] = [
  ...(['requests', 'tokens'] as const).map((dim) => ({
    key: dim,
    limit: `x-ratelimit-limit-${dim}`,
    remaining: `x-ratelimit-remaining-${dim}`,
    reset: `x-ratelimit-reset-${dim}`,
    resetFormat: 'duration' as const,
  })),
  ...([
    ['requests', 'requests'],
    ['tokens', 'tokens'],
    ['inputTokens', 'input-tokens'],
    ['outputTokens', 'output-tokens'],
  ] as const).map(([key, dim]) => ({
    key,
    limit: `anthropic-ratelimit-${dim}-limit`,
    remaining: `anthropic-ratelimit-${dim}-remaining`,
    reset: `anthropic-ratelimit-${dim}-reset`,
    resetFormat: 'rfc3339' as const,
  })),
];

/**
 * Reads every rate-limit header we know into one snapshot for the limiter's
 * `Observe`. Missing headers are simply absent; present-but-unusable ones are
 * listed in `ignored` with the reason, never guessed at. `now` is epoch ms
 * (resets are returned as absolute `resetAt` so they survive being passed
 * between processes).
 */
export function parseRateLimitHeaders(headers: HeaderSource | undefined, now: number): RateLimitSnapshot {
  const get = headerGetter(headers);
  const ignored: IgnoredHeader[] = [];
  const snapshot: RateLimitSnapshot = { ignored };

  for (const b of BUCKETS) {
    const bucket: RateLimitBucket = {};
    const limit = readCount(get, b.limit, ignored);
    if (limit !== undefined) bucket.limit = limit;
    const remaining = readCount(get, b.remaining, ignored);
    if (remaining !== undefined) {
      if (limit !== undefined && remaining > limit) {
        ignored.push({ header: b.remaining, reason: `remaining ${remaining} exceeds limit ${limit}` });
      } else bucket.remaining = remaining;
    }
    const resetRaw = get(b.reset);
    if (resetRaw !== undefined) {
      const resetAt = b.resetFormat === 'duration' ? readDurationReset(b.reset, resetRaw, now, ignored) : readDateReset(b.reset, resetRaw, now, ignored);
      if (resetAt !== undefined) bucket.resetAt = resetAt;
    }
    if (Object.keys(bucket).length > 0) snapshot[b.key] = { ...snapshot[b.key], ...bucket };
  }

  const retry = parseRetryAfter(headers, now);
  ignored.push(...retry.ignored);
  if (retry.retryAfterMs !== undefined) snapshot.retryAfterMs = retry.retryAfterMs;
  return snapshot;
}

/** True when the snapshot carries anything a limiter can act on. */
export function hasRateLimitInfo(s: RateLimitSnapshot): boolean {
  return s.requests !== undefined || s.tokens !== undefined || s.inputTokens !== undefined || s.outputTokens !== undefined || s.retryAfterMs !== undefined;
}

/**
 * The inverse of parseRateLimitHeaders: a snapshot written back as headers, so
 * the router can pass what an answer said to the limiter's Observe (which takes
 * headers). Buckets use the anthropic-ratelimit-* names because their resets
 * are absolute instants: they mean the same after crossing a process boundary,
 * where an OpenAI-style "reset in 6s" would drift by the transit time.
 */
export function rateLimitHeadersOf(s: RateLimitSnapshot): Record<string, string> {
  const out: Record<string, string> = {};
  for (const b of BUCKETS) {
    if (b.resetFormat !== 'rfc3339') continue;
    const bucket = s[b.key];
    if (!bucket) continue;
    if (bucket.limit !== undefined) out[b.limit] = String(bucket.limit);
    if (bucket.remaining !== undefined) out[b.remaining] = String(bucket.remaining);
    if (bucket.resetAt !== undefined) out[b.reset] = new Date(bucket.resetAt).toISOString();
  }
  if (s.retryAfterMs !== undefined) out['retry-after-ms'] = String(s.retryAfterMs);
  return out;
}

function readCount(get: (n: string) => string | undefined, header: string, ignored: IgnoredHeader[]): number | undefined {
  const raw = get(header);
  if (raw === undefined) return undefined;
  const t = raw.trim();
  if (!/^-?\d+$/.test(t)) {
    ignored.push({ header, reason: `not an integer: ${JSON.stringify(raw)}` });
    return undefined;
  }
  const v = Number(t);
  if (v < 0) {
    ignored.push({ header, reason: `negative: ${raw}` });
    return undefined;
  }
  if (v > MAX_COUNT) {
    ignored.push({ header, reason: `absurd (> 1e12): ${raw}` });
    return undefined;
  }
  return v;
}

function readDurationReset(header: string, raw: string, now: number, ignored: IgnoredHeader[]): number | undefined {
  const ms = parseGoDuration(raw);
  if (ms === undefined || !Number.isFinite(ms)) {
    ignored.push({ header, reason: `not a duration: ${JSON.stringify(raw)}` });
    return undefined;
  }
  if (ms < 0) {
    ignored.push({ header, reason: `negative: ${raw}` });
    return undefined;
  }
  if (ms > MAX_RESET_MS) {
    ignored.push({ header, reason: `absurd (> 31 days): ${raw}` });
    return undefined;
  }
  return Math.round(now + ms);
}

const RFC3339_RE = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;

function readDateReset(header: string, raw: string, now: number, ignored: IgnoredHeader[]): number | undefined {
  const t = raw.trim();
  const at = RFC3339_RE.test(t) ? Date.parse(t.replace(' ', 'T')) : NaN;
  if (Number.isNaN(at)) {
    ignored.push({ header, reason: `not an RFC 3339 timestamp: ${JSON.stringify(raw)}` });
    return undefined;
  }
  if (at < now - PAST_RESET_TOLERANCE_MS) {
    ignored.push({ header, reason: `in the past: ${raw}` });
    return undefined;
  }
  if (at - now > MAX_RESET_MS) {
    ignored.push({ header, reason: `absurd (> 31 days ahead): ${raw}` });
    return undefined;
  }
  return Math.max(now, at);
}

/** Upstream request id: OpenAI `x-request-id`, Anthropic `request-id`, Azure APIM `apim-request-id`. */
export function upstreamRequestIdFrom(headers: HeaderSource | undefined): string | undefined {
  const get = headerGetter(headers);
  return get('x-request-id') ?? get('request-id') ?? get('apim-request-id') ?? undefined;
}
