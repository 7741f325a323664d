import { parseConfig } from '@switchyard/config';
import { ManualClock } from '@switchyard/util';
import { createMemoryQuotaStore } from '../adapters/memory-quota-store';
import { type QuotaChange, LimiterInputError, createLimiter } from './limiter';

const config = parseConfig(`
deployments:
  d1:
    provider: openai
    baseUrl: http://127.0.0.1:9/v1
    model: gpt-4o
    apiKey: env:OPENAI_API_KEY
    limits: { rpm: 10, tpm: 1000, concurrency: 20 }
    price: { inputPerMillionUsd: 1, outputPerMillionUsd: 1 }
  daily:
    provider: openai
    baseUrl: http://127.0.0.1:9/v1
    model: gpt-4o
    apiKey: env:OPENAI_API_KEY
    limits: { tpm: 100000, tpd: 5000 }
    price: { inputPerMillionUsd: 1, outputPerMillionUsd: 1 }
routes: {}
tenants:
  t1:
    apiKeys: [{ id: k1, sha256: "${'c'.repeat(64)}" }]
    limits: { rpm: 3 }
`);

function setup(options: { publishFails?: boolean } = {}) {
  const clock = new ManualClock(1_700_000_000_000);
  const store = createMemoryQuotaStore({ clock });
  const changes: QuotaChange[] = [];
  const publishErrors: unknown[] = [];
  const waits: number[] = [];
  const timers: Array<{ at: number; fn: () => void }> = [];
  const limiter = createLimiter({
    clock,
    schedule: (ms, fn) => {
      const timer = { at: clock.now() + ms, fn };
      timers.push(timer);
      return () => timers.splice(timers.indexOf(timer), 1);
    },
    store,
    config,
    publisher: {
      publish: async (c) => {
        if (options.publishFails) throw new Error('nats down');
        changes.push(c);
      },
    },
    // Waiting moves the manual clock instead of sleeping.
    wait: async (ms) => {
      waits.push(ms);
      clock.advance(ms);
    },
    onPublishError: (err) => publishErrors.push(err),
  });
  const acquire = (over: Partial<Parameters<typeof limiter.acquire>[0]> = {}, scope = {}) =>
    limiter.acquire(
      { keys: [{ kind: 'deployment', id: 'd1' }], requests: 0, tokens: 0, reservationTtlMs: 0, maxWaitMs: 0, requestId: '', ...over },
      { now: () => clock.now(), ...scope },
    );
  /** Advances the clock, runs due timers, lets background steps finish. */
  const tick = async (ms = 0) => {
    clock.advance(ms);
    await flush();
    for (const t of timers.filter((x) => x.at <= clock.now())) {
      timers.splice(timers.indexOf(t), 1);
      t.fn();
    }
    await flush();
  };
  return { clock, store, limiter, changes, publishErrors, waits, acquire, tick, timers };
}

async function flush() {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
}

async function inputError(p: Promise<unknown>): Promise<LimiterInputError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(LimiterInputError);
  return err as LimiterInputError;
}

describe('limiter', () => {
  it('applies the default 0.8 headroom to deployment limits but not to tenant limits', async () => {
    const { limiter } = setup();
    const d = await limiter.getQuota({ kind: 'deployment', id: 'd1' });
    expect(d.key.limits).toEqual({ rpm: 8, tpm: 800, concurrency: 16 });
    expect((await limiter.getQuota({ kind: 'deployment', id: 'daily' })).key.limits).toEqual({ tpm: 80_000, tpd: 4_000 });
    expect((await limiter.getQuota({ kind: 'tenant', id: 't1' })).key.limits).toEqual({ rpm: 3 });
  });

  it('admits exactly the effective RPM (10 × 0.8 = 8), then tells when to retry', async () => {
    const { acquire } = setup();
    for (let i = 0; i < 8; i++) expect((await acquire()).granted).toBe(true);
    expect(await acquire()).toMatchObject({ granted: false, blockedBy: 'rpm', retryAfterMs: 60_000, blockedKey: { id: 'd1' } });
  });

  it('waits once, inside max_wait_ms and the deadline, then answers', async () => {
    const { acquire, clock, waits } = setup();
    for (let i = 0; i < 8; i++) await acquire();
    const denied = await acquire({ maxWaitMs: 59_999 });
    expect(denied).toMatchObject({ granted: false, retryAfterMs: 60_000, waitedMs: 0 });
    const tooShortDeadline = await acquire({ maxWaitMs: 60_000 }, { deadlineMs: clock.now() + 50_000 });
    expect(tooShortDeadline).toMatchObject({ granted: false, waitedMs: 0 });
    expect(waits).toEqual([]);
    const waited = await acquire({ maxWaitMs: 60_000 }, { deadlineMs: clock.now() + 70_000 });
    expect(waited).toMatchObject({ granted: true, waitedMs: 60_000 });
    expect(waits).toEqual([60_000]);
  });

  it('never waits on an unavailable deployment', async () => {
    const { acquire, limiter, waits } = setup();
    await limiter.observe({ provider: 'openai', deployment: 'd1', httpStatus: 429, headers: {}, errorClass: 'QUOTA_EXHAUSTED' });
    expect(await acquire({ maxWaitMs: 60_000 })).toMatchObject({ granted: false, blockedBy: 'unavailable', retryAfterMs: 0, retryAtMs: 0 });
    expect(waits).toEqual([]);
  });

  it('cools a deployment down for retry-after-ms and publishes the change once', async () => {
    const { limiter, acquire, changes, clock } = setup();
    const now = clock.now();
    const first = await limiter.observe({ provider: '', deployment: 'd1', httpStatus: 429, headers: { 'retry-after-ms': '1500' }, errorClass: 'RATE_LIMITED' });
    expect(first).toMatchObject({ cooldownUntilMs: now + 1_500, unavailable: false });
    // The same 429 seen again by another router changes nothing and publishes nothing.
    await limiter.observe({ provider: 'openai', deployment: 'd1', httpStatus: 429, headers: { 'retry-after-ms': '1500' }, errorClass: 'RATE_LIMITED' });
    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatchObject({ kind: 'cooldown_started', provider: 'openai', untilMs: now + 1_500, epoch: 1 });
    expect(await acquire()).toMatchObject({ granted: false, blockedBy: 'cooldown', retryAfterMs: 1_500, retryAtMs: now + 1_500 });
    clock.advance(1_500);
    expect((await acquire()).granted).toBe(true);
  });

  it('counts retry-after from when the caller received the 429 (observed_at), not from when the Observe arrived', async () => {
    const { limiter, acquire, clock } = setup();
    const receivedAt = clock.now();
    clock.advance(120); // the Observe's hop (or a stall) took 120 ms
    const r = await limiter.observe({ provider: 'openai', deployment: 'd1', httpStatus: 429, headers: { 'retry-after-ms': '1500' }, errorClass: 'RATE_LIMITED', observedAtMs: receivedAt });
    expect(r.cooldownUntilMs).toBe(receivedAt + 1_500);
    clock.advance(1_380);
    expect((await acquire()).granted).toBe(true);
  });

  it('cools nothing down when the provider\'s wait was over before the Observe arrived; ignores an absurd observed_at', async () => {
    const { limiter, clock, changes } = setup();
    const receivedAt = clock.now();
    clock.advance(2_000);
    expect((await limiter.observe({ provider: 'openai', deployment: 'd1', httpStatus: 429, headers: { 'retry-after-ms': '1500' }, errorClass: 'RATE_LIMITED', observedAtMs: receivedAt })).cooldownUntilMs).toBe(0);
    expect(changes).toEqual([]);
    const future = await limiter.observe({ provider: 'openai', deployment: 'd1', httpStatus: 429, headers: { 'retry-after-ms': '1500' }, errorClass: 'RATE_LIMITED', observedAtMs: clock.now() + 3_600_000 });
    expect(future.cooldownUntilMs).toBe(clock.now() + 1_500);
  });

  it('uses the default cooldown on a 429 without retry-after', async () => {
    const { limiter, clock } = setup();
    const r = await limiter.observe({ provider: 'openai', deployment: 'd1', httpStatus: 429, headers: {}, errorClass: undefined });
    expect(r.cooldownUntilMs).toBe(clock.now() + 1_000);
  });

  it('ignores successes and other errors', async () => {
    const { limiter, changes } = setup();
    expect(await limiter.observe({ provider: 'openai', deployment: 'd1', httpStatus: 200, headers: {}, errorClass: undefined })).toMatchObject({
      cooldownUntilMs: 0,
      unavailable: false,
    });
    await limiter.observe({ provider: 'openai', deployment: 'd1', httpStatus: 503, headers: {}, errorClass: 'OVERLOADED' });
    expect(changes).toEqual([]);
  });

  it('keeps the cooldown when publishing fails, and reports the failure', async () => {
    const { limiter, acquire, publishErrors } = setup({ publishFails: true });
    await limiter.observe({ provider: 'openai', deployment: 'd1', httpStatus: 429, headers: { 'retry-after': '3' }, errorClass: 'RATE_LIMITED' });
    expect(publishErrors).toHaveLength(1);
    expect(await acquire()).toMatchObject({ granted: false, blockedBy: 'cooldown', retryAfterMs: 3_000 });
  });

  it.each([
    [{ keys: [{ kind: 'deployment' as const, id: 'd1' }], tokens: -1 }, 'tokens'],
    [{ keys: [{ kind: 'deployment' as const, id: 'd1' }], tokens: 10_000_001 }, 'tokens'],
    [{ keys: [{ kind: 'deployment' as const, id: 'd1' }], tokens: 801 }, 'tokens'],
    [{ keys: [{ kind: 'tenant' as const, id: 't1' }, { kind: 'deployment' as const, id: 'daily' }], tokens: 4_001 }, 'tokens'],
    [{ keys: [{ kind: 'tenant' as const, id: 't1' }], requests: 4 }, 'requests'],
    [{ keys: [{ kind: 'deployment' as const, id: 'd1' }], reservationTtlMs: 3_600_001 }, 'reservation_ttl_ms'],
    [{ keys: [{ kind: 'deployment' as const, id: 'd1' }], maxWaitMs: 60_001 }, 'max_wait_ms'],
    [{ keys: [{ kind: undefined, id: 'd1' }] }, 'keys[0].kind'],
    [{ keys: [{ kind: 'deployment' as const, id: '' }] }, 'keys[0].id'],
    [{ keys: Array.from({ length: 9 }, () => ({ kind: 'deployment' as const, id: 'd1' })) }, 'keys'],
  ])('rejects bad Acquire input %j naming %s', async (over, field) => {
    const { acquire } = setup();
    expect((await inputError(acquire(over))).field).toBe(field);
  });

  it('rejects bad Observe and Settle input naming the field', async () => {
    const { limiter } = setup();
    const observe = (over: object) =>
      limiter.observe({ provider: 'openai', deployment: 'd1', httpStatus: 429, headers: {}, errorClass: undefined, ...over });
    expect((await inputError(observe({ deployment: '' }))).field).toBe('deployment.deployment');
    expect((await inputError(observe({ deployment: 'nope' }))).field).toBe('deployment.deployment');
    expect((await inputError(observe({ provider: 'anthropic' }))).field).toBe('deployment.provider');
    expect((await inputError(observe({ httpStatus: 42 }))).field).toBe('http_status');
    expect((await inputError(limiter.settle({ reservationId: 'r', actualTokens: -5, cancelled: false }))).field).toBe('actual_tokens');
    expect((await inputError(limiter.getQuota({ kind: 'tenant', id: 'nobody' }))).field).toBe('key.id');
  });

  it('publishes EXHAUSTED once when a deployment limit blocks, then RECOVERED when capacity returns', async () => {
    const { acquire, changes, tick } = setup();
    for (let i = 0; i < 8; i++) expect((await acquire()).granted).toBe(true);
    const denied = await acquire();
    expect(denied).toMatchObject({ granted: false, blockedBy: 'rpm', retryAfterMs: 60_000 });
    await acquire();
    await tick();
    expect(changes.map((c) => c.kind)).toEqual(['exhausted']);
    expect(changes[0]).toMatchObject({ limit: 'rpm', epoch: 1, provider: 'openai' });
    await tick(59_000);
    expect(changes).toHaveLength(1);
    await tick(1_100);
    expect(changes.map((c) => [c.kind, c.epoch])).toEqual([['exhausted', 1], ['recovered', 2]]);
    expect((await acquire()).granted).toBe(true);
  });

  it('says why tokens above the whole tpd limit can never be admitted', async () => {
    const { acquire } = setup();
    const err = await inputError(acquire({ keys: [{ kind: 'deployment', id: 'daily' }], tokens: 4_001 }));
    expect(err.message).toBe('tokens: 4001 exceeds the whole tpd limit 4000 of keys[0] (deployment "daily"); it can never be admitted there');
    expect((await acquire({ keys: [{ kind: 'deployment', id: 'daily' }], tokens: 4_000 })).granted).toBe(true);
  });

  it('publishes EXHAUSTED naming tpd when the day is spent, then RECOVERED when its oldest minute leaves the day', async () => {
    const { acquire, changes, tick, clock } = setup();
    const daily = { keys: [{ kind: 'deployment' as const, id: 'daily' }] };
    const first = await acquire({ ...daily, tokens: 3_000 });
    if (!first.granted) throw new Error('expected a grant');
    const admittedAt = clock.now();
    await tick(3_600_000);
    expect((await acquire({ ...daily, tokens: 1_000 })).granted).toBe(true);
    // The first minute's 3 000 come back at the end of that minute + 24 h.
    const backAt = (Math.floor(admittedAt / 60_000) + 1) * 60_000 + 86_400_000;
    const denied = await acquire({ ...daily, tokens: 500, maxWaitMs: 60_000 });
    expect(denied).toMatchObject({ granted: false, blockedBy: 'tpd', blockedKey: { id: 'daily' }, retryAtMs: backAt, waitedMs: 0 });
    await tick();
    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatchObject({ kind: 'exhausted', limit: 'tpd', untilMs: backAt, provider: 'openai' });
    expect(changes[0]!.reason).toMatch(/^tpd limit 4000 reached/);
    expect(changes[0]!.state.usage).toEqual(expect.arrayContaining([{ dimension: 'tpd', limit: 4_000, used: 4_000, remaining: 0, resetsAtMs: expect.any(Number) }]));
    await tick(backAt - clock.now() - 1_000);
    expect(changes).toHaveLength(1);
    await tick(1_010);
    expect(changes.map((c) => c.kind)).toEqual(['exhausted', 'recovered']);
    expect((await acquire({ ...daily, tokens: 3_000 })).granted).toBe(true);
  });

  it('publishes RECOVERED when a cooldown ends', async () => {
    const { limiter, changes, tick } = setup();
    await limiter.observe({ provider: 'openai', deployment: 'd1', httpStatus: 429, headers: { 'retry-after': '7' }, errorClass: 'RATE_LIMITED' });
    await tick(6_990);
    expect(changes.map((c) => c.kind)).toEqual(['cooldown_started']);
    await tick(20);
    expect(changes.map((c) => [c.kind, c.epoch])).toEqual([['cooldown_started', 1], ['recovered', 2]]);
    expect(changes[1]!.state.cooldownUntilMs).toBe(0);
  });

  it('tightens remaining quota to what the provider reports (OpenAI x-ratelimit-*), never loosens it', async () => {
    const { limiter, acquire } = setup();
    const r = await limiter.observe({
      provider: 'openai', deployment: 'd1', httpStatus: 200, errorClass: undefined,
      headers: { 'x-ratelimit-remaining-requests': '2', 'x-ratelimit-reset-requests': '6s', 'x-ratelimit-remaining-tokens': '900' },
    });
    expect(r.tightened).toEqual({ rpm: true, tpm: false });
    expect((await acquire()).granted).toBe(true);
    expect((await acquire()).granted).toBe(true);
    expect(await acquire()).toMatchObject({ granted: false, blockedBy: 'rpm' });
    // A provider reporting more than we think changes nothing.
    const looser = await limiter.observe({ provider: 'openai', deployment: 'd1', httpStatus: 200, errorClass: undefined, headers: { 'x-ratelimit-remaining-requests': '9' } });
    expect(looser.tightened).toEqual({ rpm: false, tpm: false });
  });

  it('tightens TPM from anthropic-ratelimit-* headers and cools down when the provider is at zero until its reset', async () => {
    const { limiter, acquire, clock, changes } = setup();
    const t = await limiter.observe({
      provider: 'openai', deployment: 'd1', httpStatus: 200, errorClass: undefined,
      headers: { 'anthropic-ratelimit-tokens-remaining': '100', 'anthropic-ratelimit-tokens-limit': '1000' },
    });
    expect(t.tightened).toEqual({ rpm: false, tpm: true });
    expect(await acquire({ tokens: 200 })).toMatchObject({ granted: false, blockedBy: 'tpm' });
    const reset = new Date(clock.now() + 4_000).toISOString();
    const zero = await limiter.observe({
      provider: 'openai', deployment: 'd1', httpStatus: 200, errorClass: undefined,
      headers: { 'anthropic-ratelimit-requests-remaining': '0', 'anthropic-ratelimit-requests-reset': reset },
    });
    expect(zero.cooldownUntilMs).toBe(clock.now() + 4_000);
    expect(changes.at(-1)).toMatchObject({ kind: 'cooldown_started', untilMs: clock.now() + 4_000 });
  });

  it('clears an unavailable deployment on operator request and publishes RECOVERED', async () => {
    const { limiter, acquire, changes } = setup();
    await limiter.observe({ provider: 'openai', deployment: 'd1', httpStatus: 429, headers: {}, errorClass: 'QUOTA_EXHAUSTED' });
    expect(await acquire()).toMatchObject({ granted: false, blockedBy: 'unavailable' });
    expect(await limiter.clearUnavailable('openai', 'd1')).toEqual({ cleared: true, epoch: 2 });
    expect(await limiter.clearUnavailable('', 'd1')).toEqual({ cleared: false, epoch: 2 });
    expect(changes.map((c) => c.kind)).toEqual(['unavailable', 'recovered']);
    expect((await acquire()).granted).toBe(true);
    expect((await inputError(limiter.clearUnavailable('openai', 'nope'))).field).toBe('deployment.deployment');
  });
});

describe('leases (Acquire with lease_ms)', () => {
  const t1 = [{ kind: 'tenant' as const, id: 't1' }];

  it('refuses a lease that would leave less than itself free, at once (no wait), where a single call still fits', async () => {
    const { acquire, waits, tick } = setup();
    // t1 allows 3 requests: a lease of 2 would leave less than itself free.
    expect(await acquire({ keys: t1, requests: 2, leaseMs: 500 })).toMatchObject({ granted: false, blockedBy: 'rpm' });
    await tick();
    expect(waits).toEqual([]);
    expect(await acquire({ keys: t1, requests: 1 })).toMatchObject({ granted: true });
  });

  it('takes no lease on a key with a concurrency or TPD limit, nor one that would wait', async () => {
    const { acquire } = setup();
    expect((await inputError(acquire({ requests: 2, leaseMs: 500 }))).field).toBe('lease_ms');
    expect((await inputError(acquire({ keys: [{ kind: 'deployment', id: 'daily' }], requests: 2, leaseMs: 500 }))).field).toBe('lease_ms');
    expect((await inputError(acquire({ keys: t1, requests: 1, leaseMs: 500, maxWaitMs: 100 }))).field).toBe('max_wait_ms');
    expect((await inputError(acquire({ keys: t1, requests: 1, leaseMs: 60_000 }))).field).toBe('lease_ms');
  });
});
