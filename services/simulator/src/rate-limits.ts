import type { Clock } from '@switchyard/util';

/**
 * A true token bucket: `capacity` tokens, refilled continuously at
 * capacity per minute (so a bucket drained at 12:00:00.000 holds half its
 * capacity again at 12:00:30.000). This is how OpenAI and Anthropic describe
 * their limits, and what a client's pacing must cope with. `periodMs` shortens
 * the minute for time-scaled load tests.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly perMs: number;

  constructor(readonly capacity: number, now: number, periodMs = 60_000) {
    this.tokens = capacity;
    this.last = now;
    this.perMs = capacity / periodMs;
  }

  available(now: number): number {
    if (now > this.last) {
      this.tokens = Math.min(this.capacity, this.tokens + (now - this.last) * this.perMs);
      this.last = now;
    }
    return this.tokens;
  }

  take(amount: number, now: number): void {
    this.available(now);
    this.tokens -= amount;
  }

  /** Milliseconds until `amount` tokens are available (Infinity if it exceeds capacity). */
  waitFor(amount: number, now: number): number {
    if (amount > this.capacity) return Infinity;
    const missing = amount - this.available(now);
    return missing <= 0 ? 0 : missing / this.perMs;
  }

  /** Milliseconds until the bucket is full again: the providers' "reset". */
  untilFull(now: number): number {
    return (this.capacity - this.available(now)) / this.perMs;
  }
}

export interface LimitState {
  limit: number;
  remaining: number;
  /** Milliseconds until the bucket is full. */
  resetMs: number;
}

/** Remaining quota after an admission decision, for the rate-limit headers. */
export interface LimitSnapshot {
  requests: LimitState | null;
  tokens: LimitState | null;
}

export interface Rejection {
  dimension: 'requests' | 'tokens';
  limit: number;
  used: number;
  requested: number;
  /** Milliseconds until the request would fit; Infinity when it can never fit (larger than the bucket). */
  retryAfterMs: number;
}

export type Admission = { ok: true; snapshot: LimitSnapshot } | { ok: false; rejection: Rejection; snapshot: LimitSnapshot };

export interface Limits {
  rpm: number | null;
  tpm: number | null;
  /** The "minute" of rpm/tpm; default 60 000. */
  windowMs?: number;
}

/**
 * Per (deployment, API key) RPM and TPM buckets. A request is admitted only if
 * both have room (all-or-nothing: a rejected request consumes nothing), and is
 * charged 1 request and `tokens` (prompt + max_tokens) tokens, as the
 * providers do at admission.
 */
export function createRateLimiter(clock: Clock) {
  const buckets = new Map<string, { requests: TokenBucket | null; tokens: TokenBucket | null }>();

  function bucketsFor(deployment: string, apiKey: string, limits: Limits, now: number) {
    const key = `${deployment}\u0000${apiKey}`;
    let b = buckets.get(key);
    if (!b) {
      b = {
        requests: limits.rpm ? new TokenBucket(limits.rpm, now, limits.windowMs) : null,
        tokens: limits.tpm ? new TokenBucket(limits.tpm, now, limits.windowMs) : null,
      };
      buckets.set(key, b);
    }
    return b;
  }

  function snapshot(b: { requests: TokenBucket | null; tokens: TokenBucket | null }, now: number): LimitSnapshot {
    const state = (t: TokenBucket | null): LimitState | null =>
      t && { limit: t.capacity, remaining: Math.max(0, Math.floor(t.available(now))), resetMs: t.untilFull(now) };
    return { requests: state(b.requests), tokens: state(b.tokens) };
  }

  return {
    admit(deployment: string, apiKey: string, limits: Limits, tokens: number): Admission {
      if (!limits.rpm && !limits.tpm) return { ok: true, snapshot: { requests: null, tokens: null } };
      const now = clock.now();
      const b = bucketsFor(deployment, apiKey, limits, now);
      if (b.requests) {
        const wait = b.requests.waitFor(1, now);
        if (wait > 0) {
          const used = Math.round(b.requests.capacity - b.requests.available(now));
          return { ok: false, rejection: { dimension: 'requests', limit: b.requests.capacity, used, requested: 1, retryAfterMs: wait }, snapshot: snapshot(b, now) };
        }
      }
      if (b.tokens) {
        const wait = b.tokens.waitFor(tokens, now);
        if (wait > 0) {
          const used = Math.round(b.tokens.capacity - b.tokens.available(now));
          return { ok: false, rejection: { dimension: 'tokens', limit: b.tokens.capacity, used, requested: tokens, retryAfterMs: wait }, snapshot: snapshot(b, now) };
        }
      }
      b.requests?.take(1, now);
      b.tokens?.take(tokens, now);
      return { ok: true, snapshot: snapshot(b, now) };
    },
    /** Current state without charging anything (for answers that never reach admission). */
    peek(deployment: string, apiKey: string, limits: Limits): LimitSnapshot {
      if (!limits.rpm && !limits.tpm) return { requests: null, tokens: null };
      const now = clock.now();
      return snapshot(bucketsFor(deployment, apiKey, limits, now), now);
    },
    reset(): void {
      buckets.clear();
    },
  };
}

export type RateLimiter = ReturnType<typeof createRateLimiter>;
