import { randomUUID } from 'node:crypto';
import type { AcquireInput, LimitedKey, QuotaStore } from '../src/domain/quota-store';

/**
 * What both QuotaStore implementations must do. `advance(ms)` moves time: the
 * memory store's ManualClock, or real waiting for Redis (whose clock is Redis
 * TIME and cannot be injected), so time-dependent cases use short durations.
 */
export interface QuotaStoreHarness {
  store: QuotaStore;
  advance(ms: number): Promise<void>;
  /** Slack for assertions on durations: 0 for a manual clock, a little for real time. */
  slackMs: number;
  /**
   * The store's TPD window and bucket (store options dayWindowMs / dayBucketMs):
   * a real day on a manual clock, a day of about a second on real time.
   */
  day: { windowMs: number; bucketMs: number };
  close(): Promise<void>;
}

const dep = (id: string, limits: LimitedKey['limits']): LimitedKey => ({ kind: 'deployment', id, limits });
const tenant = (id: string, limits: LimitedKey['limits']): LimitedKey => ({ kind: 'tenant', id, limits });

function acquireInput(keys: LimitedKey[], over: Partial<AcquireInput> = {}): AcquireInput {
  return { keys, requests: 1, tokens: 0, ttlMs: 60_000, reservationId: randomUUID(), ...over };
}

export function quotaStoreContract(name: string, factory: () => Promise<QuotaStoreHarness>): void {
  describe(`QuotaStore contract: ${name}`, () => {
    let h: QuotaStoreHarness;
    beforeEach(async () => {
      h = await factory();
    });
    afterEach(async () => {
      await h.close();
    });

    it('admits exactly RPM 10 of 30 concurrent acquires and tells the others when to retry', async () => {
      const key = dep('d1', { rpm: 10 });
      const results = await Promise.all(Array.from({ length: 30 }, () => h.store.acquire(acquireInput([key]))));
      const granted = results.filter((r) => r.granted);
      expect(granted).toHaveLength(10);
      for (const r of results) {
        if (r.granted) continue;
        expect(r.blockedBy).toBe('rpm');
        expect(r.blockedIndex).toBe(0);
        // Sliding 60 s window: the first slot opens when the burst's first entry leaves it.
        expect(r.retryAfterMs).toBeGreaterThan(60_000 - 1_000);
        expect(r.retryAfterMs).toBeLessThanOrEqual(60_000);
      }
    });

    it('counts tokens against TPM and gives unused tokens back on settle', async () => {
      const key = dep('d1', { tpm: 1_000 });
      const first = await h.store.acquire(acquireInput([key], { tokens: 600 }));
      expect(first.granted).toBe(true);
      const second = await h.store.acquire(acquireInput([key], { tokens: 600 }));
      expect(second).toMatchObject({ granted: false, blockedBy: 'tpm' });
      const settled = await h.store.settle({ reservationId: first.granted ? first.reservationId : '', actualTokens: 100, cancelled: false });
      expect(settled).toEqual({ found: true, tokensReturned: 500, tokensOverrun: 0, freedSlots: [] });
      expect((await h.store.acquire(acquireInput([key], { tokens: 600 }))).granted).toBe(true);
      expect((await h.store.acquire(acquireInput([key], { tokens: 600 }))).granted).toBe(false);
    });

    it('charges an overrun on settle so later acquires wait for it', async () => {
      const key = dep('d1', { tpm: 1_000 });
      const first = await h.store.acquire(acquireInput([key], { tokens: 100 }));
      if (!first.granted) throw new Error('expected a grant');
      expect(await h.store.settle({ reservationId: first.reservationId, actualTokens: 900, cancelled: false })).toEqual({
        found: true,
        tokensReturned: 0,
        tokensOverrun: 800,
        freedSlots: [],
      });
      const state = await h.store.state(key);
      expect(state.usage[0]).toMatchObject({ dimension: 'tpm', limit: 1_000 });
      expect(state.usage[0]!.used).toBeGreaterThanOrEqual(899);
      expect((await h.store.acquire(acquireInput([key], { tokens: 200 }))).granted).toBe(false);
    });

    it('is all-or-nothing: a blocking tenant limit consumes nothing of the deployment', async () => {
      const d = dep('d1', { rpm: 3 });
      const a = tenant('a', { rpm: 1 });
      const b = tenant('b', { rpm: 10 });
      expect((await h.store.acquire(acquireInput([d, a]))).granted).toBe(true);
      for (let i = 0; i < 5; i++) {
        expect(await h.store.acquire(acquireInput([d, a]))).toMatchObject({ granted: false, blockedIndex: 1, blockedBy: 'rpm' });
      }
      expect((await h.store.state(d)).usage[0]).toMatchObject({ used: 1, remaining: 2 });
      expect((await h.store.acquire(acquireInput([d, b]))).granted).toBe(true);
      expect((await h.store.acquire(acquireInput([d, b]))).granted).toBe(true);
      expect(await h.store.acquire(acquireInput([d, b]))).toMatchObject({ granted: false, blockedIndex: 0, blockedBy: 'rpm' });
      expect((await h.store.state(b)).usage[0]).toMatchObject({ used: 2, remaining: 8 });
    });

    it('treats a dimension without a limit as unlimited', async () => {
      const key = dep('d1', {});
      const results = await Promise.all(Array.from({ length: 50 }, () => h.store.acquire(acquireInput([key], { tokens: 1e6 }))));
      expect(results.every((r) => r.granted)).toBe(true);
      expect((await h.store.state(key)).usage).toEqual([]);
    });

    it('holds a concurrency slot until settle, or until the reservation expires', async () => {
      const key = dep('d1', { concurrency: 2 });
      const a = await h.store.acquire(acquireInput([key], { ttlMs: 200 }));
      const b = await h.store.acquire(acquireInput([key], { ttlMs: 60_000 }));
      expect(a.granted && b.granted).toBe(true);
      const blocked = await h.store.acquire(acquireInput([key]));
      expect(blocked).toMatchObject({ granted: false, blockedBy: 'concurrency' });
      if (!blocked.granted) expect(blocked.retryAfterMs).toBeLessThanOrEqual(200);
      expect((await h.store.state(key)).usage[0]).toMatchObject({ dimension: 'concurrency', used: 2, remaining: 0 });

      await h.advance(250 + h.slackMs);
      const c = await h.store.acquire(acquireInput([key]));
      expect(c.granted).toBe(true);
      expect((await h.store.acquire(acquireInput([key]))).granted).toBe(false);
      // The expired reservation is gone: settling it is a no-op.
      expect(await h.store.settle({ reservationId: a.granted ? a.reservationId : '', actualTokens: 0, cancelled: false })).toMatchObject({ found: false });
      // Settling a live one frees its slot at once.
      expect((await h.store.settle({ reservationId: b.granted ? b.reservationId : '', actualTokens: 0, cancelled: false })).found).toBe(true);
      expect((await h.store.acquire(acquireInput([key]))).granted).toBe(true);
    });

    it('names the keys whose concurrency slot a settle or cancel freed, and nothing once the slot is gone', async () => {
      const d = dep('d1', { rpm: 100, concurrency: 2 });
      const t = tenant('t1', { concurrency: 5 });
      const plain = tenant('t2', { rpm: 100 });
      const a = await h.store.acquire(acquireInput([d, t, plain]));
      const b = await h.store.acquire(acquireInput([d, plain], { ttlMs: 100 }));
      if (!a.granted || !b.granted) throw new Error('expected grants');
      expect((await h.store.settle({ reservationId: a.reservationId, actualTokens: 0, cancelled: false })).freedSlots).toEqual([
        { kind: 'deployment', id: 'd1' },
        { kind: 'tenant', id: 't1' },
      ]);
      const c = await h.store.acquire(acquireInput([t]));
      if (!c.granted) throw new Error('expected a grant');
      expect((await h.store.settle({ reservationId: c.reservationId, actualTokens: 0, cancelled: true })).freedSlots).toEqual([{ kind: 'tenant', id: 't1' }]);
      // An expired reservation already gave its slot back: its settle frees nothing.
      await h.advance(150 + h.slackMs);
      expect((await h.store.settle({ reservationId: b.reservationId, actualTokens: 0, cancelled: false })).freedSlots).toEqual([]);
    });

    it('tells a concurrency-blocked acquire how many slots must free before it fits, counting the line ahead', async () => {
      const key = dep('d1', { concurrency: 2 });
      const queue = (flow: string) => ({ queue: { index: 0, flow, enqueue: true, maxWaitMs: 60_000, leaseMs: 60_000 } });
      for (let i = 0; i < 2; i++) expect((await h.store.acquire(acquireInput([key], queue('a')))).granted).toBe(true);
      expect(await h.store.acquire(acquireInput([key], queue('a')))).toMatchObject({ granted: false, blockedBy: 'concurrency', slotsShort: 1 });
      expect(await h.store.acquire(acquireInput([key], queue('a')))).toMatchObject({ granted: false, blockedBy: 'concurrency', slotsShort: 2 });
      // Not queued on this key (a tenant limit): the live holders alone.
      const t = tenant('t1', { concurrency: 1 });
      expect((await h.store.acquire(acquireInput([t]))).granted).toBe(true);
      expect(await h.store.acquire(acquireInput([t]))).toMatchObject({ granted: false, blockedBy: 'concurrency', slotsShort: 1 });
      // Other limits carry no count.
      const rated = dep('d2', { rpm: 1 });
      expect((await h.store.acquire(acquireInput([rated]))).granted).toBe(true);
      const denied = await h.store.acquire(acquireInput([rated]));
      expect(denied).toMatchObject({ granted: false, blockedBy: 'rpm' });
      expect(denied).not.toHaveProperty('slotsShort');
    });

    it('leaves the tokens of a never-settled reservation charged after it expires', async () => {
      const key = dep('d1', { tpm: 1_000 });
      const a = await h.store.acquire(acquireInput([key], { tokens: 900, ttlMs: 100 }));
      expect(a.granted).toBe(true);
      await h.advance(150 + h.slackMs);
      expect(await h.store.settle({ reservationId: a.granted ? a.reservationId : '', actualTokens: 10, cancelled: false })).toEqual({
        found: false,
        tokensReturned: 0,
        tokensOverrun: 0,
        freedSlots: [],
      });
      expect((await h.store.acquire(acquireInput([key], { tokens: 200 }))).granted).toBe(false);
    });

    it('gives back the request and all tokens of a cancelled reservation', async () => {
      const key = dep('d1', { rpm: 1, tpm: 100 });
      const a = await h.store.acquire(acquireInput([key], { tokens: 100 }));
      if (!a.granted) throw new Error('expected a grant');
      expect(await h.store.settle({ reservationId: a.reservationId, actualTokens: 50, cancelled: true })).toEqual({
        found: true,
        tokensReturned: 100,
        tokensOverrun: 0,
        freedSlots: [],
      });
      expect((await h.store.acquire(acquireInput([key], { tokens: 100 }))).granted).toBe(true);
    });

    it('settles a reservation once', async () => {
      const key = dep('d1', { tpm: 1_000 });
      const a = await h.store.acquire(acquireInput([key], { tokens: 500 }));
      if (!a.granted) throw new Error('expected a grant');
      expect((await h.store.settle({ reservationId: a.reservationId, actualTokens: 0, cancelled: false })).tokensReturned).toBe(500);
      expect(await h.store.settle({ reservationId: a.reservationId, actualTokens: 0, cancelled: false })).toEqual({
        found: false,
        tokensReturned: 0,
        tokensOverrun: 0,
        freedSlots: [],
      });
      expect(await h.store.settle({ reservationId: 'never-issued', actualTokens: 0, cancelled: false })).toMatchObject({ found: false });
    });

    it('returns the same reservation for a repeated request id without charging twice', async () => {
      const key = dep('d1', { rpm: 2 });
      const first = await h.store.acquire(acquireInput([key], { requestId: 'req-1' }));
      const again = await h.store.acquire(acquireInput([key], { requestId: 'req-1' }));
      expect(first.granted && again.granted).toBe(true);
      if (!first.granted || !again.granted) return;
      expect(again.reservationId).toBe(first.reservationId);
      expect(again.replayed).toBe(true);
      expect((await h.store.state(key)).usage[0]).toMatchObject({ used: 1 });
      // Once settled, the id is spent: a new acquire with it is a new attempt.
      expect((await h.store.settle({ reservationId: first.reservationId, actualTokens: 0, cancelled: false })).found).toBe(true);
      const next = await h.store.acquire(acquireInput([key], { requestId: 'req-1' }));
      expect(next).toMatchObject({ granted: true, replayed: false });
      if (next.granted) expect(next.reservationId).not.toBe(first.reservationId);
      expect((await h.store.state(key)).usage[0]).toMatchObject({ used: 2 });
    });

    it('blocks every acquire during a cooldown and admits again when it ends', async () => {
      const key = dep('d1', { rpm: 100 });
      const cd = await h.store.cooldown(key, 300);
      expect(cd).toMatchObject({ changed: true, epoch: 1 });
      expect(cd.cooldownUntilMs - cd.nowMs).toBe(300);
      // A shorter cooldown does not cut a longer one short.
      expect(await h.store.cooldown(key, 10)).toMatchObject({ changed: false, cooldownUntilMs: cd.cooldownUntilMs, epoch: 1 });
      const blocked = await h.store.acquire(acquireInput([tenant('t', {}), key]));
      expect(blocked).toMatchObject({ granted: false, blockedIndex: 1, blockedBy: 'cooldown' });
      if (!blocked.granted) {
        expect(blocked.retryAfterMs).toBeGreaterThan(0);
        expect(blocked.retryAfterMs).toBeLessThanOrEqual(300);
      }
      expect((await h.store.state(key)).cooldownUntilMs).toBe(cd.cooldownUntilMs);
      expect((await h.store.state(key)).usage[0]).toMatchObject({ used: 0 });
      await h.advance(350 + h.slackMs);
      expect((await h.store.acquire(acquireInput([key]))).granted).toBe(true);
      expect((await h.store.state(key)).cooldownUntilMs).toBe(0);
    });

    it('blocks an unavailable key until cleared, bumping the epoch each time', async () => {
      const key = dep('d1', {});
      expect(await h.store.setUnavailable(key, true)).toMatchObject({ changed: true, epoch: 1 });
      expect(await h.store.setUnavailable(key, true)).toMatchObject({ changed: false, epoch: 1 });
      expect(await h.store.acquire(acquireInput([key]))).toMatchObject({ granted: false, blockedBy: 'unavailable', retryAfterMs: 0 });
      expect((await h.store.state(key)).unavailable).toBe(true);
      expect(await h.store.setUnavailable(key, false)).toMatchObject({ changed: true, epoch: 2 });
      expect((await h.store.acquire(acquireInput([key]))).granted).toBe(true);
      expect(await h.store.cooldown(key, 100)).toMatchObject({ epoch: 3 });
    });

    it('counts admitted requests per key cumulatively: denials, replays and cancellations do not change it', async () => {
      const d = dep('d1', { rpm: 3 });
      const t = tenant('t', {});
      expect((await h.store.state(d)).admittedRequests).toBe(0);
      const grants: string[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await h.store.acquire(acquireInput([d, t], { requestId: `req-${i}` }));
        if (!r.granted) throw new Error(`acquire ${i} should be granted`);
        grants.push(r.reservationId);
      }
      expect(await h.store.acquire(acquireInput([d, t]))).toMatchObject({ granted: false, blockedIndex: 0, blockedBy: 'rpm' });
      expect(await h.store.acquire(acquireInput([d, t], { requestId: 'req-0' }))).toMatchObject({ granted: true, replayed: true });
      expect((await h.store.state(d)).admittedRequests).toBe(3);
      expect((await h.store.state(t)).admittedRequests).toBe(3);
      // A cancelled settle gives the RPM slot back but the admission happened.
      expect((await h.store.settle({ reservationId: grants[0]!, actualTokens: 0, cancelled: true })).found).toBe(true);
      expect((await h.store.state(d)).usage[0]).toMatchObject({ used: 2 });
      expect((await h.store.state(d)).admittedRequests).toBe(3);
      expect((await h.store.state(t)).admittedRequests).toBe(3);
      // `requests` > 1 counts as that many admissions.
      expect((await h.store.acquire(acquireInput([t], { requests: 5 }))).granted).toBe(true);
      expect((await h.store.state(t)).admittedRequests).toBe(8);
      expect((await h.store.state(d)).admittedRequests).toBe(3);
    });

    describe('wait queue (start-time fair queueing on the deployment key)', () => {
      const d = dep('shared', { concurrency: 1 });
      const q = (flow: string, ticket?: string, over: Partial<NonNullable<AcquireInput['queue']>> = {}) => ({
        queue: { index: 0, flow, enqueue: true, maxWaitMs: 60_000, leaseMs: 60_000, ...(ticket ? { ticket } : {}), ...over },
      });
      const ticketOf = (r: Awaited<ReturnType<QuotaStore['acquire']>>) => {
        if (r.granted || !r.ticket) throw new Error(`expected a queued answer, got ${JSON.stringify(r)}`);
        return r.ticket;
      };
      const release = async (r: Awaited<ReturnType<QuotaStore['acquire']>>) => {
        if (!r.granted) throw new Error('expected a grant');
        expect((await h.store.settle({ reservationId: r.reservationId, actualTokens: 0, cancelled: false })).found).toBe(true);
      };

      it('serves waiters in arrival order within a tenant and round-robin across tenants', async () => {
        const holder = await h.store.acquire(acquireInput([d], q('a')));
        expect(holder.granted).toBe(true);
        // Tenant a queues two waiters, then tenant b one: b's first waiter goes before a's second.
        const a1 = ticketOf(await h.store.acquire(acquireInput([d], q('a'))));
        const a2 = ticketOf(await h.store.acquire(acquireInput([d], q('a'))));
        const b1 = ticketOf(await h.store.acquire(acquireInput([d], q('b'))));
        await release(holder);
        // Capacity is back, but only for the head of the line.
        expect(await h.store.acquire(acquireInput([d], q('a', a2)))).toMatchObject({ granted: false, blockedBy: 'concurrency', ticket: a2 });
        expect(await h.store.acquire(acquireInput([d], q('b', b1)))).toMatchObject({ granted: false, ticket: b1 });
        // A newcomer that will not wait cannot jump the line either.
        expect(await h.store.acquire(acquireInput([d], q('c', undefined, { enqueue: false })))).toMatchObject({ granted: false, blockedBy: 'concurrency' });
        const first = await h.store.acquire(acquireInput([d], q('a', a1)));
        expect(first.granted).toBe(true);
        await release(first);
        expect((await h.store.acquire(acquireInput([d], q('a', a2)))).granted).toBe(false);
        const second = await h.store.acquire(acquireInput([d], q('b', b1)));
        expect(second.granted).toBe(true);
        await release(second);
        expect((await h.store.acquire(acquireInput([d], q('a', a2)))).granted).toBe(true);
      });

      it('drops a waiter whose deadline passed without charging it, and the next one moves up', async () => {
        const key = dep('rated', { rpm: 1, concurrency: 1 });
        const holder = await h.store.acquire(acquireInput([key], q('a')));
        const late = ticketOf(await h.store.acquire(acquireInput([key], q('a', undefined, { maxWaitMs: 100 }))));
        const next = ticketOf(await h.store.acquire(acquireInput([tenant('b', {}), key], { queue: { index: 1, flow: 'b', enqueue: true, maxWaitMs: 60_000, leaseMs: 60_000 } })));
        expect(late < next).toBe(true);
        await h.advance(150 + h.slackMs);
        if (holder.granted) await h.store.settle({ reservationId: holder.reservationId, actualTokens: 0, cancelled: true });
        // The expired ticket is gone: the one behind it is served, and the expired one
        // never took an RPM unit (rpm 1 admits exactly this one).
        const served = await h.store.acquire(acquireInput([tenant('b', {}), key], { queue: { index: 1, flow: 'b', ticket: next, enqueue: true, maxWaitMs: 60_000, leaseMs: 60_000 } }));
        expect(served.granted).toBe(true);
        expect((await h.store.state(key)).usage.find((u) => u.dimension === 'rpm')).toMatchObject({ used: 1 });
        // Polling with the expired ticket is a new arrival at the back, not a grant.
        expect((await h.store.acquire(acquireInput([key], q('a', late)))).granted).toBe(false);
      });

      it('drops a waiter that stops polling (lease) and one that leaves', async () => {
        expect((await h.store.acquire(acquireInput([d], { ...q('a'), ttlMs: 100 }))).granted).toBe(true);
        const quiet = await h.store.acquire(acquireInput([d], q('a', undefined, { leaseMs: 50 })));
        ticketOf(quiet);
        if (!quiet.granted) expect(quiet.retryAfterMs).toBeLessThanOrEqual(100);
        const gone = ticketOf(await h.store.acquire(acquireInput([d], q('b'))));
        await h.store.leaveQueue(d, gone);
        // The holder expires at 100 ms; the quiet waiter's lease (its told wait + 50 ms)
        // lapses without a poll, so a newcomer is served.
        await h.advance(200 + h.slackMs);
        expect((await h.store.acquire(acquireInput([d], q('c', undefined, { enqueue: false })))).granted).toBe(true);
      });

      it('admits a newcomer when capacity covers everyone ahead of it too', async () => {
        const key = dep('roomy', { concurrency: 3 });
        const hold = [await h.store.acquire(acquireInput([key], q('a'))), await h.store.acquire(acquireInput([key], q('a'))), await h.store.acquire(acquireInput([key], q('a')))];
        const w = ticketOf(await h.store.acquire(acquireInput([key], q('a'))));
        await release(hold[0]!);
        await release(hold[1]!);
        // Two slots free, one waiter ahead: a newcomer fits beside it.
        expect((await h.store.acquire(acquireInput([key], q('b', undefined, { enqueue: false })))).granted).toBe(true);
        expect((await h.store.acquire(acquireInput([key], q('a', w)))).granted).toBe(true);
      });
    });

    describe('tokens per day (bucketed sliding day)', () => {
      const bucket = (nowMs: number) => Math.floor(nowMs / h.day.bucketMs);
      /** When a bucket stops counting: its end + the day window. */
      const expiry = (b: number) => (b + 1) * h.day.bucketMs + h.day.windowMs;
      const grant = async (keys: LimitedKey[], over: Partial<AcquireInput> = {}) => {
        const r = await h.store.acquire(acquireInput(keys, over));
        if (!r.granted) throw new Error(`expected a grant, got ${JSON.stringify(r)}`);
        return r;
      };
      const tpdUsed = async (key: LimitedKey) => (await h.store.state(key)).usage.find((u) => u.dimension === 'tpd')?.used;

      it('admits up to the limit across many acquires, then blocks until enough old buckets expire', async () => {
        const key = dep('d1', { tpd: 1_000 });
        // 60 concurrent acquires of 25 in one bucket: exactly 40 fit.
        const burst = await Promise.all(Array.from({ length: 60 }, () => h.store.acquire(acquireInput([key], { tokens: 25 }))));
        expect(burst.filter((r) => r.granted)).toHaveLength(40);
        for (const r of burst) if (!r.granted) expect(r).toMatchObject({ blockedBy: 'tpd', blockedIndex: 0 });
        expect(await tpdUsed(key)).toBe(1_000);

        // A second key filled over three buckets: 400, 300, 300.
        const spread = dep('d2', { tpd: 1_000 });
        const grants: Array<{ at: number; tokens: number }> = [];
        for (const tokens of [400, 300, 300]) {
          grants.push({ at: (await grant([spread], { tokens })).nowMs, tokens });
          await h.advance(h.day.bucketMs);
        }
        expect(new Set(grants.map((g) => bucket(g.at))).size).toBe(3);
        // 1..400 tokens need the oldest bucket gone, 401..700 the two oldest, more all three: the bucket's end + a day.
        for (const [need, oldest] of [[1, 0], [400, 0], [401, 1], [700, 1], [701, 2]] as const) {
          const denied = await h.store.acquire(acquireInput([spread], { tokens: need }));
          if (denied.granted) throw new Error(`${need} tokens should not fit`);
          expect(denied).toMatchObject({ blockedBy: 'tpd', blockedIndex: 0 });
          expect(denied.retryAfterMs).toBe(expiry(bucket(grants[oldest]!.at)) - denied.nowMs);
          // Never sooner than a day after the admission, at most a bucket later.
          expect(denied.retryAfterMs + denied.nowMs - grants[oldest]!.at).toBeGreaterThan(h.day.windowMs);
          expect(denied.retryAfterMs + denied.nowMs - grants[oldest]!.at).toBeLessThanOrEqual(h.day.windowMs + h.day.bucketMs);
        }
        const state = await h.store.state(spread);
        expect(state.usage).toEqual([
          { dimension: 'tpd', limit: 1_000, used: 1_000, remaining: 0, resetsAtMs: expiry(bucket(grants[2]!.at)) },
        ]);
      });

      it('gives tokens back when their bucket ages out of the day, not before', async () => {
        const key = dep('d1', { tpd: 1_000 });
        const first = await grant([key], { tokens: 600 });
        await h.advance(h.day.bucketMs);
        const second = await grant([key], { tokens: 400 });
        expect(bucket(second.nowMs)).toBeGreaterThan(bucket(first.nowMs));
        const denied = await h.store.acquire(acquireInput([key], { tokens: 1 }));
        if (denied.granted) throw new Error('the day is full');
        // Just before the first bucket's expiry: still full.
        await h.advance(denied.retryAfterMs - 50);
        expect(await h.store.acquire(acquireInput([key], { tokens: 1 }))).toMatchObject({ granted: false, blockedBy: 'tpd' });
        // Past it: the first bucket's 600 are back, the second's 400 still count.
        await h.advance(50 + h.slackMs);
        expect(await tpdUsed(key)).toBe(400);
        await grant([key], { tokens: 600 });
        expect(await h.store.acquire(acquireInput([key], { tokens: 1 }))).toMatchObject({ granted: false, blockedBy: 'tpd' });
      });

      it('settles into the bucket the reservation charged: unused tokens back, an overrun charged there', async () => {
        const key = dep('d1', { tpd: 1_000 });
        // Settled a bucket later: they must outlive it (a real bucket is a minute).
        const a = await grant([key], { tokens: 600, ttlMs: 3_600_000 });
        const e = await grant([key], { tokens: 100, ttlMs: 3_600_000 });
        await h.advance(h.day.bucketMs);
        const c = await grant([key], { tokens: 200 });
        expect(bucket(a.nowMs)).toBe(bucket(e.nowMs));
        expect(bucket(c.nowMs)).toBeGreaterThan(bucket(a.nowMs));
        expect(await h.store.settle({ reservationId: a.reservationId, actualTokens: 100, cancelled: false })).toMatchObject({ found: true, tokensReturned: 500 });
        expect(await h.store.settle({ reservationId: e.reservationId, actualTokens: 300, cancelled: false })).toMatchObject({ found: true, tokensOverrun: 200 });
        expect(await tpdUsed(key)).toBe(100 + 300 + 200);
        // Both corrections were in the first bucket: when it expires, only the second's 200 remain.
        const state = await h.store.state(key);
        await h.advance(expiry(bucket(a.nowMs)) - state.nowMs + h.slackMs);
        expect(await tpdUsed(key)).toBe(200);
        // A cancelled reservation gives all its tokens back.
        const d = await grant([key], { tokens: 800 });
        expect(await h.store.acquire(acquireInput([key], { tokens: 1 }))).toMatchObject({ granted: false, blockedBy: 'tpd' });
        expect(await h.store.settle({ reservationId: d.reservationId, actualTokens: 500, cancelled: true })).toMatchObject({ tokensReturned: 800 });
        expect(await tpdUsed(key)).toBe(200);
      });

      it('leaves the tokens of a never-settled reservation charged after it expires', async () => {
        const key = dep('d1', { tpd: 1_000 });
        const a = await grant([key], { tokens: 900, ttlMs: 100 });
        await h.advance(150 + h.slackMs);
        expect(await h.store.settle({ reservationId: a.reservationId, actualTokens: 10, cancelled: false })).toMatchObject({ found: false });
        expect(await tpdUsed(key)).toBe(900);
        expect(await h.store.acquire(acquireInput([key], { tokens: 200 }))).toMatchObject({ granted: false, blockedBy: 'tpd' });
      });

      it('is all-or-nothing with RPM, TPM and a tenant key', async () => {
        const d = dep('d1', { rpm: 100, tpm: 10_000, tpd: 1_000 });
        const small = tenant('small', { rpm: 2 });
        const roomy = tenant('roomy', { rpm: 10 });
        await grant([d, small], { tokens: 400 });
        await grant([d, small], { tokens: 400 });
        // The tenant blocks: the deployment's day is not charged.
        expect(await h.store.acquire(acquireInput([d, small], { tokens: 100 }))).toMatchObject({ granted: false, blockedIndex: 1, blockedBy: 'rpm' });
        expect(await tpdUsed(d)).toBe(800);
        // The deployment's day blocks: neither its RPM/TPM nor the tenant is charged.
        expect(await h.store.acquire(acquireInput([roomy, d], { tokens: 300 }))).toMatchObject({ granted: false, blockedIndex: 1, blockedBy: 'tpd' });
        expect((await h.store.state(roomy)).usage[0]).toMatchObject({ dimension: 'rpm', used: 0 });
        expect((await h.store.state(d)).usage.slice(0, 2)).toMatchObject([
          { dimension: 'rpm', used: 2 },
          { dimension: 'tpm', used: 800 },
        ]);
        // A TPM block charges nothing of the day either.
        const tight = dep('d2', { tpm: 500, tpd: 10_000 });
        await grant([tight], { tokens: 400 });
        expect(await h.store.acquire(acquireInput([tight], { tokens: 400 }))).toMatchObject({ granted: false, blockedBy: 'tpm' });
        expect(await tpdUsed(tight)).toBe(400);
        // What is left of the day still fits exactly.
        await grant([roomy, d], { tokens: 200 });
        expect(await tpdUsed(d)).toBe(1_000);
      });

      it('counts the tokens of waiters ahead in the queue against the day: a newcomer cannot overtake', async () => {
        const key = dep('d1', { tpd: 1_000 });
        const q = (flow: string, enqueue = true) => ({ queue: { index: 0, flow, enqueue, maxWaitMs: 60_000, leaseMs: 60_000 } });
        await grant([key], { tokens: 800, ...q('a') });
        expect(await h.store.acquire(acquireInput([key], { tokens: 500, ...q('a') }))).toMatchObject({ granted: false, blockedBy: 'tpd', ticket: expect.any(String) });
        // 100 fit the day on their own, but not behind the 500 waiting ahead.
        expect(await h.store.acquire(acquireInput([key], { tokens: 100, ...q('b', false) }))).toMatchObject({ granted: false, blockedBy: 'tpd' });
        expect(await tpdUsed(key)).toBe(800);
      });
    });

    describe('leases (one reservation a router admits several calls from)', () => {
      it('grants a lease only while it leaves at least its own cost free; single acquires take the rest', async () => {
        const key = dep('d1', { rpm: 10, tpm: 1_000 });
        expect((await h.store.acquire(acquireInput([key], { requests: 4, tokens: 400, leaseMs: 500 }))).granted).toBe(true);
        // 4 leased + 4 more + a margin of 4 > 10: refused, and nothing charged.
        expect(await h.store.acquire(acquireInput([key], { requests: 4, tokens: 40, leaseMs: 500 }))).toMatchObject({ granted: false, blockedBy: 'rpm' });
        expect(await h.store.acquire(acquireInput([key], { requests: 2, tokens: 500, leaseMs: 500 }))).toMatchObject({ granted: false, blockedBy: 'tpm' });
        let singles = 0;
        while ((await h.store.acquire(acquireInput([key], { tokens: 10 }))).granted) singles++;
        expect(singles).toBe(6);
      });

      it('settles a lease to the requests and tokens used: the rest is free again and never counted as admitted', async () => {
        const key = dep('d1', { rpm: 10, tpm: 1_000 });
        const lease = await h.store.acquire(acquireInput([key], { requests: 4, tokens: 400, leaseMs: 500 }));
        if (!lease.granted) throw new Error('expected a grant');
        expect((await h.store.state(key)).usage).toMatchObject([{ used: 4 }, { used: 400 }]);
        expect(await h.store.settle({ reservationId: lease.reservationId, actualTokens: 50, cancelled: false, leaseUsedRequests: 1, leaseLastUseMs: 100 })).toEqual({
          found: true,
          tokensReturned: 350,
          tokensOverrun: 0,
          freedSlots: [],
        });
        const state = await h.store.state(key);
        expect(state.usage).toMatchObject([{ dimension: 'rpm', used: 1 }, { dimension: 'tpm', used: 50 }]);
        expect(state.admittedRequests).toBe(1);
      });

      it("stamps a lease's units at grant + lease_ms, and re-stamps the used ones at the last use on settle", async () => {
        const key = dep('d1', { rpm: 10 });
        const lease = await h.store.acquire(acquireInput([key], { requests: 3, leaseMs: 5_000 }));
        if (!lease.granted) throw new Error('expected a grant');
        const held = (await h.store.state(key)).usage[0]!;
        // Its calls run until grant + 5 s: the window forgets them no earlier than 60 s after that.
        expect(held.resetsAtMs - lease.nowMs).toBeGreaterThanOrEqual(65_000);
        expect(held.resetsAtMs - lease.nowMs).toBeLessThanOrEqual(65_000 + h.slackMs);
        await h.store.settle({ reservationId: lease.reservationId, actualTokens: 0, cancelled: false, leaseUsedRequests: 2, leaseLastUseMs: 1_200 });
        const settled = (await h.store.state(key)).usage[0]!;
        expect(settled.used).toBe(2);
        expect(settled.resetsAtMs - lease.nowMs).toBe(61_200);
      });
    });

    it('reports usage, remaining and reset time from the sliding window', async () => {
      const key = dep('d1', { rpm: 10, tpm: 1_000 });
      for (let i = 0; i < 4; i++) expect((await h.store.acquire(acquireInput([key], { tokens: 100 }))).granted).toBe(true);
      const state = await h.store.state(key);
      const [rpm, tpm] = state.usage;
      expect(rpm).toMatchObject({ dimension: 'rpm', limit: 10, used: 4, remaining: 6 });
      expect(tpm).toMatchObject({ dimension: 'tpm', limit: 1_000, used: 400, remaining: 600 });
      // The window is empty again 60 s after the newest entry.
      expect(rpm!.resetsAtMs - state.nowMs).toBeGreaterThan(60_000 - 1_000);
      expect(rpm!.resetsAtMs - state.nowMs).toBeLessThanOrEqual(60_000);
      expect(state).toMatchObject({ cooldownUntilMs: 0, unavailable: false, epoch: 0, admittedRequests: 4 });
    });
  });
}
