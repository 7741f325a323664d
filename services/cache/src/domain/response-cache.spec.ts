import { ManualClock } from '@switchyard/util';
import { createMemoryCacheStore } from '../adapters/memory-cache-store';
import { CacheInputError } from './cache-input';
import type { CacheStore } from './cache-store';
import { CacheStoreUnreachable, createResponseCache } from './response-cache';

function setup(store?: CacheStore) {
  const clock = new ManualClock(1_000_000);
  const waits: number[] = [];
  const logs: string[] = [];
  const cache = createResponseCache({
    store: store ?? createMemoryCacheStore({ clock }),
    logger: { info: (o) => logs.push((o as { event: string }).event), warn: (o) => logs.push((o as { event: string }).event) },
    events: { lookup() {}, store() {}, bypass() {} },
    defaultTtlMs: 60_000,
    defaultStaleTtlMs: 0,
    maxEntryBytes: 1024,
    waitPollMs: 10,
    clock,
    // Waiting moves the manual clock instead of sleeping.
    wait: async (ms) => {
      waits.push(ms);
      clock.advance(ms);
    },
  });
  const signal = new AbortController().signal;
  const lookup = (over: { maxWaitMs?: number; leaseTtlMs?: number } = {}, deadlineMs?: number) =>
    cache.lookup({ tenant: 'acme', key: 'k', allowStale: false, leaseTtlMs: 5_000, maxWaitMs: 0, ...over }, { signal, ...(deadlineMs !== undefined ? { deadlineMs } : {}) });
  return { cache, clock, waits, logs, lookup };
}

describe('response cache single-flight wait', () => {
  it('polls for the leader’s result for max_wait_ms on the injected clock, then answers WAIT', async () => {
    const { lookup, waits } = setup();
    expect((await lookup()).status).toBe('leader');
    const r = await lookup({ maxWaitMs: 100 });
    expect(r.status).toBe('wait');
    expect(waits).toEqual(Array(10).fill(10));
  });

  it('stops polling before the caller’s deadline on the same clock', async () => {
    const { lookup, waits, clock } = setup();
    await lookup();
    await lookup({ maxWaitMs: 1_000 }, clock.now() + 100);
    // 100 ms deadline less the 50 ms margin for the answer to travel back.
    expect(waits).toEqual(Array(5).fill(10));
  });

  it('answers the leader’s stored result as a coalesced hit', async () => {
    const { cache, lookup, clock } = setup();
    const lead = await lookup();
    const waiting = lookup({ maxWaitMs: 1_000 });
    clock.advance(0);
    await cache.store({ tenant: 'acme', key: 'k', response: new Uint8Array([7]), ttlMs: 0, staleTtlMs: 0, leaseId: lead.leaseId! });
    const r = await waiting;
    expect(r).toMatchObject({ status: 'hit', coalesced: true });
    expect(cache.stats).toMatchObject({ leaders: 1, hits: 1, coalesced: 1 });
  });
});

describe('response cache input and bypass', () => {
  it('names the field of a bad input', async () => {
    const { cache } = setup();
    await expect(cache.lookup({ tenant: 'no spaces', key: 'k', allowStale: false, leaseTtlMs: 0, maxWaitMs: 0 }, { signal: new AbortController().signal })).rejects.toEqual(
      new CacheInputError('tenant', 'must be 1-64 characters of A-Z a-z 0-9 _ -'),
    );
    await expect(cache.invalidate({ tenant: 'acme', target: undefined })).rejects.toMatchObject({ field: 'target' });
  });

  it('fails fast when the store is unreachable, logging once per outage', async () => {
    const broken: CacheStore = {
      lookup: () => Promise.reject(new Error('ECONNREFUSED')),
      store: () => Promise.reject(new Error('ECONNREFUSED')),
      releaseLease: () => Promise.reject(new Error('ECONNREFUSED')),
      invalidate: () => Promise.reject(new Error('ECONNREFUSED')),
      close: async () => undefined,
    };
    const { lookup, logs, cache } = setup(broken);
    await expect(lookup()).rejects.toBeInstanceOf(CacheStoreUnreachable);
    await expect(lookup()).rejects.toMatchObject({ retryAfterMs: 1_000 });
    expect(logs).toEqual(['cache_store_unavailable']);
    expect(cache.stats.bypassed).toBe(2);
  });
});
