import type { CacheStore, LookupInput } from '../src/domain/cache-store';

export interface CacheStoreFixture {
  store: CacheStore;
  /** Moves the store's time forward (ManualClock in memory, a TIME shift in Redis). */
  advance(ms: number): void;
}

const MIN = 60_000;
let seq = 0;
const freshTenant = () => `c${process.pid}-${Date.now().toString(36)}-${++seq}`;
const bytes = (...b: number[]) => new Uint8Array(b);

/** The one behaviour suite every CacheStore must pass (memory and Redis). */
export function cacheStoreContract(name: string, factory: () => Promise<CacheStoreFixture>): void {
  describe(`CacheStore contract: ${name}`, () => {
    let f: CacheStoreFixture;
    let tenant: string;
    beforeEach(async () => {
      f = await factory();
      tenant = freshTenant();
    });

    const lookup = (key: string, over: Partial<LookupInput> = {}) =>
      f.store.lookup({ tenant, key, allowStale: false, leaseTtlMs: 0, leaseId: `lease-${++seq}`, ...over });
    const put = (key: string, value: Uint8Array, over: { ttlMs?: number; staleTtlMs?: number; leaseId?: string; tenant?: string } = {}) =>
      f.store.store({ tenant: over.tenant ?? tenant, key, value, ttlMs: over.ttlMs ?? 10 * MIN, staleTtlMs: over.staleTtlMs ?? 10 * MIN, leaseId: over.leaseId });

    it('misses an unknown key, then hits with the exact stored bytes and their age', async () => {
      expect((await lookup('chat:abc')).status).toBe('miss');
      const value = bytes(0, 255, 10, 13, 0xc3, 0x28, 1, 2);
      const saved = await put('chat:abc', value);
      expect(saved.expiresAtMs - saved.storedAtMs).toBe(10 * MIN);
      expect(saved.staleUntilMs - saved.expiresAtMs).toBe(10 * MIN);
      f.advance(1_500);
      const hit = await lookup('chat:abc');
      expect(hit.status).toBe('hit');
      expect(Buffer.from(hit.entry!.value).equals(Buffer.from(value))).toBe(true);
      expect(hit.nowMs - hit.entry!.storedAtMs).toBeGreaterThanOrEqual(1_500);
      expect(hit.entry!.expiresAtMs).toBe(saved.expiresAtMs);
    });

    it('never shows one tenant an entry of another, and invalidation stays inside the tenant', async () => {
      const other = freshTenant();
      await put('chat:same', bytes(1), { tenant: other });
      expect((await lookup('chat:same')).status).toBe('miss');
      await put('chat:same', bytes(2));
      expect(await f.store.invalidate({ tenant, target: { prefix: '' } })).toBe(1);
      const theirs = await f.store.lookup({ tenant: other, key: 'chat:same', allowStale: false, leaseTtlMs: 0, leaseId: 'x' });
      expect(theirs.status).toBe('hit');
      expect([...theirs.entry!.value]).toEqual([1]);
    });

    it('serves fresh entries as hit, then stale only when allowed, then nothing', async () => {
      await put('k', bytes(7), { ttlMs: MIN, staleTtlMs: 2 * MIN });
      // Redis time also moves while the test runs: keep a margin before the boundary.
      f.advance(MIN - 1_000);
      expect((await lookup('k')).status).toBe('hit');
      f.advance(1_000);
      expect((await lookup('k')).status).toBe('miss');
      const stale = await lookup('k', { allowStale: true });
      expect(stale.status).toBe('stale');
      expect([...stale.entry!.value]).toEqual([7]);
      f.advance(2 * MIN);
      expect((await lookup('k', { allowStale: true })).status).toBe('miss');
    });

    it('replaces an entry on store, with the new ttl', async () => {
      await put('k', bytes(1), { ttlMs: MIN });
      await put('k', bytes(2), { ttlMs: 5 * MIN });
      f.advance(2 * MIN);
      const hit = await lookup('k');
      expect(hit.status).toBe('hit');
      expect([...hit.entry!.value]).toEqual([2]);
    });

    it('makes exactly one concurrent caller the leader; the others wait until it stores', async () => {
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => lookup('k', { leaseTtlMs: 5_000, leaseId: `L${i}` })));
      const leaders = results.filter((r) => r.status === 'leader');
      expect(leaders).toHaveLength(1);
      expect(results.filter((r) => r.status === 'wait')).toHaveLength(9);
      await put('k', bytes(9), { leaseId: leaders[0]!.leaseId });
      expect((await lookup('k', { leaseTtlMs: 5_000 })).status).toBe('hit');
    });

    it('hands the lease on when the leader releases it or lets it expire', async () => {
      const first = await lookup('k', { leaseTtlMs: 1_000, leaseId: 'A' });
      expect(first).toMatchObject({ status: 'leader', leaseId: 'A' });
      expect(await f.store.releaseLease({ tenant, key: 'k', leaseId: 'B' })).toBe(false);
      expect(await f.store.releaseLease({ tenant, key: 'k', leaseId: 'A' })).toBe(true);
      expect(await f.store.releaseLease({ tenant, key: 'k', leaseId: 'A' })).toBe(false);
      expect(await lookup('k', { leaseTtlMs: 1_000, leaseId: 'B' })).toMatchObject({ status: 'leader', leaseId: 'B' });
      expect((await lookup('k', { leaseTtlMs: 1_000, leaseId: 'C' })).status).toBe('wait');
      f.advance(1_001);
      expect(await lookup('k', { leaseTtlMs: 1_000, leaseId: 'C' })).toMatchObject({ status: 'leader', leaseId: 'C' });
    });

    it('gives the refresh lease of a stale entry to one caller only', async () => {
      await put('k', bytes(3), { ttlMs: MIN, staleTtlMs: MIN });
      f.advance(MIN);
      const a = await lookup('k', { allowStale: true, leaseTtlMs: 5_000, leaseId: 'A' });
      const b = await lookup('k', { allowStale: true, leaseTtlMs: 5_000, leaseId: 'B' });
      expect(a).toMatchObject({ status: 'stale', leaseId: 'A' });
      expect(b.status).toBe('stale');
      expect(b.leaseId).toBeUndefined();
    });

    it('a store without the lease leaves the leader holding it', async () => {
      await lookup('k', { leaseTtlMs: 5_000, leaseId: 'A' });
      await put('k', bytes(1));
      expect(await f.store.releaseLease({ tenant, key: 'k', leaseId: 'A' })).toBe(true);
    });

    it('invalidates one key, a prefix, or the whole tenant, counting live entries removed', async () => {
      await put('chat:1', bytes(1));
      await put('chat:2', bytes(2));
      await put('claude:1', bytes(3));
      await put('chatty:1', bytes(4));
      expect(await f.store.invalidate({ tenant, target: { key: 'chat:1' } })).toBe(1);
      expect(await f.store.invalidate({ tenant, target: { key: 'chat:1' } })).toBe(0);
      expect(await f.store.invalidate({ tenant, target: { prefix: 'chat:' } })).toBe(1);
      expect((await lookup('chatty:1')).status).toBe('hit');
      expect((await lookup('chat:2')).status).toBe('miss');
      expect(await f.store.invalidate({ tenant, target: { prefix: '' } })).toBe(2);
      expect((await lookup('claude:1')).status).toBe('miss');
    });
  });
}
