import { type Clock, systemClock } from '@switchyard/util';
import type { CacheEntryInfo, CacheStore, LookupResult } from '../domain/cache-store';

interface Lease {
  id: string;
  until: number;
}

/**
 * In-process CacheStore for the embedded demo and fast tests; the same
 * contract suite as the Redis store holds it to the same behaviour.
 */
export function createMemoryCacheStore(options: { clock?: Clock } = {}): CacheStore {
  const clock = options.clock ?? systemClock;
  const entries = new Map<string, Map<string, CacheEntryInfo>>();
  const leases = new Map<string, Map<string, Lease>>();

  const bucket = <T>(all: Map<string, Map<string, T>>, tenant: string) => {
    let m = all.get(tenant);
    if (!m) all.set(tenant, (m = new Map()));
    return m;
  };
  const liveEntry = (tenant: string, key: string, now: number) => {
    const m = bucket(entries, tenant);
    const e = m.get(key);
    if (e && e.staleUntilMs <= now) {
      m.delete(key);
      return undefined;
    }
    return e;
  };
  const tryLease = (tenant: string, key: string, id: string, ttlMs: number, now: number): boolean => {
    const m = bucket(leases, tenant);
    const held = m.get(key);
    if (held && held.until > now) return false;
    m.set(key, { id, until: now + ttlMs });
    return true;
  };
  const copy = (e: CacheEntryInfo): CacheEntryInfo => ({ ...e, value: e.value.slice() });

  return {
    async lookup({ tenant, key, allowStale, leaseTtlMs, leaseId }): Promise<LookupResult> {
      const now = clock.now();
      const e = liveEntry(tenant, key, now);
      if (e && now < e.expiresAtMs) return { status: 'hit', entry: copy(e), nowMs: now };
      if (e && allowStale) {
        const leased = leaseTtlMs > 0 && tryLease(tenant, key, leaseId, leaseTtlMs, now);
        return { status: 'stale', entry: copy(e), leaseId: leased ? leaseId : undefined, nowMs: now };
      }
      if (leaseTtlMs === 0) return { status: 'miss', nowMs: now };
      if (tryLease(tenant, key, leaseId, leaseTtlMs, now)) return { status: 'leader', leaseId, nowMs: now };
      return { status: 'wait', nowMs: now };
    },

    async store({ tenant, key, value, ttlMs, staleTtlMs, leaseId }) {
      const now = clock.now();
      const info = { storedAtMs: now, expiresAtMs: now + ttlMs, staleUntilMs: now + ttlMs + staleTtlMs };
      bucket(entries, tenant).set(key, { ...info, value: value.slice() });
      const lm = bucket(leases, tenant);
      if (leaseId && lm.get(key)?.id === leaseId) lm.delete(key);
      return info;
    },

    async releaseLease({ tenant, key, leaseId }) {
      const now = clock.now();
      const lm = bucket(leases, tenant);
      const held = lm.get(key);
      if (!held || held.id !== leaseId || held.until <= now) return false;
      lm.delete(key);
      return true;
    },

    async invalidate({ tenant, target }) {
      const now = clock.now();
      const m = bucket(entries, tenant);
      let removed = 0;
      for (const [key, e] of [...m]) {
        const hit = 'key' in target ? key === target.key : key.startsWith(target.prefix);
        if (!hit) continue;
        m.delete(key);
        if (e.staleUntilMs > now) removed++;
      }
      return removed;
    },

    async close() {},
  };
}
