import { headerMap, parseGoDuration, parseRateLimitHeaders, parseRetryAfter, rateLimitHeadersOf, upstreamRequestIdFrom } from './rate-limit-headers';

const NOW = Date.parse('2025-03-01T12:00:00Z');

/** mulberry32: small seeded PRNG so a failing case is reproducible from the seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Formats nanoseconds the way Go's time.Duration.String() does (the format
 * OpenAI's x-ratelimit-reset-* headers use): "0s"; sub-second values in the
 * largest fitting unit with a trimmed fraction ("12ms", "1.5µs"); otherwise
 * h/m/s with fractional seconds ("23h47m36.648s", "6m0s", "0.5s" is "500ms").
 */
function formatGoDuration(ns: bigint): string {
  if (ns === 0n) return '0s';
  const frac = (v: bigint, digits: number) => {
    const s = v.toString().padStart(digits, '0').replace(/0+$/, '');
    return s ? `.${s}` : '';
  };
  if (ns < 1_000n) return `${ns}ns`;
  if (ns < 1_000_000n) return `${ns / 1_000n}${frac(ns % 1_000n, 3)}µs`;
  if (ns < 1_000_000_000n) return `${ns / 1_000_000n}${frac(ns % 1_000_000n, 6)}ms`;
  const h = ns / 3_600_000_000_000n;
  const m = (ns / 60_000_000_000n) % 60n;
  const s = (ns / 1_000_000_000n) % 60n;
  const sec = `${s}${frac(ns % 1_000_000_000n, 9)}s`;
  if (h > 0n) return `${h}h${m}m${sec}`;
  if (m > 0n) return `${m}m${sec}`;
  return sec;
}

describe('parseGoDuration', () => {
  it.each([
    ['1s', 1000],
    ['6m0s', 360_000],
    ['12ms', 12],
    ['23h47m36.648s', 85_656_648],
    ['0.5s', 500],
    ['1.5ms', 1.5],
    ['250µs', 0.25],
    ['0s', 0],
    ['20', 20_000],
  ])('%s → %s ms', (text, ms) => {
    expect(parseGoDuration(text)).toBeCloseTo(ms, 6);
  });

  it.each(['', 'soon', '1x', 's', '1h-2m', '1.2.3s'])('rejects %j', (text) => {
    expect(parseGoDuration(text)).toBeUndefined();
  });

  it('format → parse round-trips within 1 ms over 2000 generated durations (seeded)', () => {
    const seed = 20250301;
    const rand = prng(seed);
    const units = [1n, 1_000n, 1_000_000n, 1_000_000_000n, 60_000_000_000n, 3_600_000_000_000n];
    for (let i = 0; i < 2000; i++) {
      // Mix magnitudes: pick a unit scale, then a value up to ~100 of that unit, plus some sub-unit noise.
      const unit = units[Math.floor(rand() * units.length)]!;
      const ns = BigInt(Math.floor(rand() * 100)) * unit + BigInt(Math.floor(rand() * Number(unit)));
      const text = formatGoDuration(ns);
      const parsed = parseGoDuration(text);
      const expected = Number(ns) / 1e6;
      if (parsed === undefined || Math.abs(parsed - expected) > 1) {
        throw new Error(`seed ${seed} case ${i}: ${text} parsed as ${parsed}, expected ${expected} ms`);
      }
    }
  });
});

describe('parseRateLimitHeaders', () => {
  it('reads the OpenAI set, resets relative to now', () => {
    const snap = parseRateLimitHeaders(
      {
        'x-ratelimit-limit-requests': '500',
        'x-ratelimit-remaining-requests': '499',
        'x-ratelimit-reset-requests': '120ms',
        'x-ratelimit-limit-tokens': '30000',
        'x-ratelimit-remaining-tokens': '29900',
        'x-ratelimit-reset-tokens': '6m0s',
      },
      NOW,
    );
    expect(snap).toEqual({
      requests: { limit: 500, remaining: 499, resetAt: NOW + 120 },
      tokens: { limit: 30000, remaining: 29900, resetAt: NOW + 360_000 },
      ignored: [],
    });
  });

  it('reads the Anthropic set with RFC 3339 resets, from a fetch Headers (case-insensitive)', () => {
    const snap = parseRateLimitHeaders(
      new Headers({
        'Anthropic-RateLimit-Requests-Limit': '50',
        'anthropic-ratelimit-requests-remaining': '49',
        'anthropic-ratelimit-requests-reset': '2025-03-01T12:00:30Z',
        'anthropic-ratelimit-input-tokens-limit': '40000',
        'anthropic-ratelimit-input-tokens-remaining': '39000',
        'anthropic-ratelimit-input-tokens-reset': '2025-03-01T12:00:01.500+00:00',
        'anthropic-ratelimit-output-tokens-remaining': '8000',
        'anthropic-ratelimit-tokens-limit': '48000',
      }),
      NOW,
    );
    expect(snap).toEqual({
      requests: { limit: 50, remaining: 49, resetAt: NOW + 30_000 },
      inputTokens: { limit: 40000, remaining: 39000, resetAt: NOW + 1500 },
      outputTokens: { remaining: 8000 },
      tokens: { limit: 48000 },
      ignored: [],
    });
  });

  it('returns an empty snapshot when no header is present', () => {
    expect(parseRateLimitHeaders({ 'content-type': 'application/json' }, NOW)).toEqual({ ignored: [] });
    expect(parseRateLimitHeaders(undefined, NOW)).toEqual({ ignored: [] });
  });

  it('ignores negative, absurd and unparseable values, saying why, and keeps the good ones', () => {
    const snap = parseRateLimitHeaders(
      {
        'x-ratelimit-limit-requests': '-1',
        'x-ratelimit-remaining-requests': '10',
        'x-ratelimit-reset-requests': 'soon',
        'x-ratelimit-limit-tokens': '100',
        'x-ratelimit-remaining-tokens': '5000',
        'x-ratelimit-reset-tokens': '9999h',
        'anthropic-ratelimit-requests-limit': '1e99',
        'anthropic-ratelimit-requests-reset': '2020-01-01T00:00:00Z',
        'anthropic-ratelimit-tokens-reset': 'tomorrow',
        'retry-after': '-3',
      },
      NOW,
    );
    expect(snap.requests).toEqual({ remaining: 10 });
    expect(snap.tokens).toEqual({ limit: 100 });
    expect(snap.retryAfterMs).toBeUndefined();
    expect(snap.ignored).toEqual([
      { header: 'x-ratelimit-limit-requests', reason: 'negative: -1' },
      { header: 'x-ratelimit-reset-requests', reason: 'not a duration: "soon"' },
      { header: 'x-ratelimit-remaining-tokens', reason: 'remaining 5000 exceeds limit 100' },
      { header: 'x-ratelimit-reset-tokens', reason: 'absurd (> 31 days): 9999h' },
      { header: 'anthropic-ratelimit-requests-limit', reason: 'not an integer: "1e99"' },
      { header: 'anthropic-ratelimit-requests-reset', reason: 'in the past: 2020-01-01T00:00:00Z' },
      { header: 'anthropic-ratelimit-tokens-reset', reason: 'not an RFC 3339 timestamp: "tomorrow"' },
      { header: 'retry-after', reason: 'negative: -3' },
    ]);
  });

  it('reports a negative duration reset as negative', () => {
    expect(parseRateLimitHeaders({ 'x-ratelimit-reset-requests': '-5s' }, NOW).ignored).toEqual([{ header: 'x-ratelimit-reset-requests', reason: 'negative: -5s' }]);
  });

  it('clamps an Anthropic reset a few seconds in the past (clock skew) to now', () => {
    const snap = parseRateLimitHeaders({ 'anthropic-ratelimit-requests-reset': '2025-03-01T11:59:58Z' }, NOW);
    expect(snap.requests).toEqual({ resetAt: NOW });
  });

  it('includes retry-after-ms / retry-after', () => {
    expect(parseRateLimitHeaders({ 'retry-after-ms': '250' }, NOW).retryAfterMs).toBe(250);
    expect(parseRateLimitHeaders({ 'retry-after': '3' }, NOW).retryAfterMs).toBe(3000);
  });
});

describe('rateLimitHeadersOf', () => {
  it('writes a snapshot back as headers that parse to the same snapshot later, in another process (absolute resets)', () => {
    const snap = parseRateLimitHeaders(
      { 'x-ratelimit-limit-requests': '500', 'x-ratelimit-remaining-requests': '3', 'x-ratelimit-reset-requests': '6m0s', 'x-ratelimit-remaining-tokens': '120', 'retry-after-ms': '250' },
      NOW,
    );
    const headers = rateLimitHeadersOf(snap);
    expect(headers).toEqual({
      'anthropic-ratelimit-requests-limit': '500',
      'anthropic-ratelimit-requests-remaining': '3',
      'anthropic-ratelimit-requests-reset': '2025-03-01T12:06:00.000Z',
      'anthropic-ratelimit-tokens-remaining': '120',
      'retry-after-ms': '250',
    });
    // Read 800 ms later: the reset instant is unchanged (retry-after is relative by nature).
    expect(parseRateLimitHeaders(headers, NOW + 800)).toEqual(snap);
  });

  it('round-trips random snapshots of every bucket (seeded)', () => {
    const rnd = prng(42);
    const keys = ['requests', 'tokens', 'inputTokens', 'outputTokens'] as const;
    for (let i = 0; i < 300; i++) {
      const snap: ReturnType<typeof parseRateLimitHeaders> = { ignored: [] };
      for (const k of keys) {
        if (rnd() < 0.4) continue;
        const limit = 1 + Math.floor(rnd() * 1e9);
        snap[k] = { limit, remaining: Math.floor(rnd() * limit), resetAt: NOW + Math.floor(rnd() * 86_400_000) };
        if (rnd() < 0.3) delete snap[k]!.limit;
      }
      expect(parseRateLimitHeaders(rateLimitHeadersOf(snap), NOW + Math.floor(rnd() * 5000))).toEqual(snap);
    }
  });
});

describe('parseRetryAfter', () => {
  it('rejects absurd values (> 1 day) rather than parking a deployment for a week', () => {
    expect(parseRetryAfter({ 'retry-after': '864000' }, NOW)).toEqual({ ignored: [{ header: 'retry-after', reason: 'absurd (> 1 day): 864000' }] });
    expect(parseRetryAfter({ 'retry-after-ms': '1e12' }, NOW).ignored[0]!.reason).toMatch(/absurd/);
  });

  it('rejects a retry-after that is neither seconds nor a date', () => {
    expect(parseRetryAfter({ 'retry-after': 'later' }, NOW)).toEqual({ ignored: [{ header: 'retry-after', reason: 'neither seconds nor an HTTP-date: "later"' }] });
  });
});

describe('upstreamRequestIdFrom', () => {
  it('takes x-request-id (OpenAI), request-id (Anthropic) or apim-request-id (Azure)', () => {
    expect(upstreamRequestIdFrom({ 'x-request-id': 'a' })).toBe('a');
    expect(upstreamRequestIdFrom(new Headers({ 'request-id': 'b' }))).toBe('b');
    expect(upstreamRequestIdFrom({ 'apim-request-id': 'c' })).toBe('c');
    expect(upstreamRequestIdFrom({})).toBeUndefined();
  });
});

describe('headerMap', () => {
  it('reads a Headers once into what every parser reads from the Headers itself, repeated values joined', () => {
    const headers = new Headers([
      ['X-RateLimit-Limit-Requests', '100'],
      ['x-ratelimit-remaining-requests', '7'],
      ['x-ratelimit-reset-requests', '1.5s'],
      ['anthropic-ratelimit-tokens-reset', '2025-03-01T12:00:30Z'],
      ['Retry-After', '3'],
      ['x-request-id', 'a'],
      ['x-request-id', 'b'],
    ]);
    const map = headerMap(headers);
    expect(map.get('x-request-id')).toBe('a, b');
    expect(parseRateLimitHeaders(map, NOW)).toEqual(parseRateLimitHeaders(headers, NOW));
    expect(parseRateLimitHeaders(map, NOW).requests).toEqual({ limit: 100, remaining: 7, resetAt: NOW + 1500 });
    expect(parseRetryAfter(map, NOW)).toEqual(parseRetryAfter(headers, NOW));
    expect(upstreamRequestIdFrom(map)).toBe(upstreamRequestIdFrom(headers));
    expect(parseRetryAfter(map, NOW).retryAfterMs).toBe(3000);
  });
});
