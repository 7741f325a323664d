import { randomUUID } from 'node:crypto';
import { CacheService, LookupStatus } from '@switchyard/contracts';
import { type AccessTable, type ServiceImplementation, unavailable } from '@switchyard/grpc';
import { FieldError, sleep } from '@switchyard/util';
import { type CacheMetrics, createCacheMetrics } from './cache-metrics';
import type { CacheStore, InvalidateTarget, LookupResult, LookupStatusName } from '../domain/cache-store';

/** Tenant ids as the config allows them (`NAME_PATTERN`); they become a Redis hash tag. */
const TENANT = /^[A-Za-z0-9_-]{1,64}$/;
export const MAX_KEY_BYTES = 512;
export const MAX_LEASE_TTL_MS = 300_000;
export const MAX_WAIT_MS = 60_000;
/** Stop waiting this long before the caller's deadline so the WAIT answer still reaches it. */
const DEADLINE_MARGIN_MS = 50;

export interface CacheHandlerLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface CacheHandlerOptions {
  store: CacheStore;
  logger: CacheHandlerLogger;
  defaultTtlMs: number;
  defaultStaleTtlMs: number;
  maxEntryBytes: number;
  /** How often a waiter re-checks for the leader's result. */
  waitPollMs: number;
  /** Default: OTel counters on the global meter (no-ops until telemetry starts). */
  metrics?: CacheMetrics;
}

/** Counters of what the cache answered; `bypassed` counts calls refused because the store was unreachable. */
export interface CacheStats {
  hits: number;
  stale: number;
  misses: number;
  leaders: number;
  waits: number;
  coalesced: number;
  bypassed: number;
}

const STATUS: Record<LookupStatusName, LookupStatus> = {
  hit: LookupStatus.HIT,
  stale: LookupStatus.STALE,
  miss: LookupStatus.MISS,
  leader: LookupStatus.LEADER,
  wait: LookupStatus.WAIT,
};
/** Who may call what (checked by createGrpcServer): wiping entries is an operator's call; the rest are the router's. */
export const CACHE_ACCESS: AccessTable<(typeof CacheService)['method']> = { invalidate: 'operator' };

const COUNTER: Record<LookupStatusName, keyof CacheStats> = { hit: 'hits', stale: 'stale', miss: 'misses', leader: 'leaders', wait: 'waits' };

/**
 * CacheService over a CacheStore: validation naming the proto field, single-flight
 * waiting, and the bypass policy: when the store is unreachable every call fails
 * fast with UNAVAILABLE (the contract's signal for "call upstream without the
 * cache") instead of hanging the router's fan-out.
 */
export function createCacheHandlers(options: CacheHandlerOptions): {
  implementation: ServiceImplementation<(typeof CacheService)['method']>;
  stats: CacheStats;
} {
  const { store, logger, defaultTtlMs, defaultStaleTtlMs, maxEntryBytes, waitPollMs } = options;
  const metrics = options.metrics ?? createCacheMetrics();
  const stats: CacheStats = { hits: 0, stale: 0, misses: 0, leaders: 0, waits: 0, coalesced: 0, bypassed: 0 };
  let storeHealthy = true;

  function tenantOf(tenant: string): string {
    if (!tenant) throw new FieldError('tenant', 'is required');
    if (!TENANT.test(tenant)) throw new FieldError('tenant', 'must be 1-64 characters of A-Z a-z 0-9 _ -');
    return tenant;
  }
  function keyOf(field: string, key: string, allowEmpty = false): string {
    if (!key && !allowEmpty) throw new FieldError(field, 'is required');
    if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw new FieldError(field, `must be at most ${MAX_KEY_BYTES} bytes`);
    return key;
  }
  function atMost(field: string, value: number, max: number): number {
    if (value > max) throw new FieldError(field, `must be at most ${max}, got ${value}`);
    return value;
  }

  /** Runs a store call; an unreachable store becomes UNAVAILABLE (counted, logged once per outage). */
  async function guarded<T>(op: string, fn: () => Promise<T>): Promise<T> {
    try {
      const result = await fn();
      if (!storeHealthy) {
        storeHealthy = true;
        logger.info({ event: 'cache_store_recovered' }, 'cache store reachable again');
      }
      return result;
    } catch (err) {
      stats.bypassed++;
      metrics.bypass(op);
      if (storeHealthy) {
        storeHealthy = false;
        logger.warn({ event: 'cache_store_unavailable', op, err: { message: (err as Error).message } }, 'cache store unreachable; callers bypass the cache');
      }
      throw unavailable('cache store unreachable; bypass the cache', 1_000, { cause: err });
    }
  }

  function answer(r: LookupResult, coalesced = false) {
    stats[COUNTER[r.status]]++;
    if (coalesced) stats.coalesced++;
    const e = r.entry;
    metrics.lookup(r.status, coalesced, e?.value.byteLength ?? 0);
    return {
      status: STATUS[r.status],
      response: e?.value,
      ageMs: e ? Math.max(0, r.nowMs - e.storedAtMs) : 0,
      leaseId: r.leaseId ?? '',
      expiresAtUnixMs: BigInt(e?.expiresAtMs ?? 0),
      staleUntilUnixMs: BigInt(e?.staleUntilMs ?? 0),
      coalesced,
    };
  }

  const implementation: ServiceImplementation<(typeof CacheService)['method']> = {
    async lookup(req, ctx) {
      const input = {
        tenant: tenantOf(req.tenant),
        key: keyOf('key', req.key),
        allowStale: req.allowStale,
        leaseTtlMs: atMost('lease_ttl_ms', req.leaseTtlMs, MAX_LEASE_TTL_MS),
        leaseId: randomUUID(),
      };
      const maxWaitMs = atMost('max_wait_ms', req.maxWaitMs, MAX_WAIT_MS);
      let r = await guarded('lookup', () => store.lookup(input));
      if (r.status !== 'wait' || maxWaitMs === 0) return answer(r);
      // Another caller leads: poll for its result until max_wait_ms (or just before the caller's deadline).
      const until = Math.min(Date.now() + maxWaitMs, (ctx.deadline?.getTime() ?? Infinity) - DEADLINE_MARGIN_MS);
      while (Date.now() + waitPollMs <= until && !ctx.signal.aborted) {
        await sleep(waitPollMs, ctx.signal).catch(() => undefined);
        if (ctx.signal.aborted) break;
        r = await guarded('lookup', () => store.lookup(input));
        if (r.status === 'hit') return answer(r, true);
        if (r.status !== 'wait') return answer(r);
      }
      return answer(r);
    },

    async store(req) {
      const tenant = tenantOf(req.tenant);
      const key = keyOf('key', req.key);
      if (req.response.byteLength > maxEntryBytes) {
        metrics.store('too_large', req.response.byteLength);
        throw new FieldError('response', `must be at most ${maxEntryBytes} bytes, got ${req.response.byteLength}`);
      }
      const saved = await guarded('store', () =>
        store.store({
          tenant,
          key,
          value: req.response,
          ttlMs: req.ttlMs || defaultTtlMs,
          staleTtlMs: req.staleTtlMs || defaultStaleTtlMs,
          leaseId: req.leaseId || undefined,
        }),
      );
      metrics.store('stored', req.response.byteLength);
      return { expiresAtUnixMs: BigInt(saved.expiresAtMs), staleUntilUnixMs: BigInt(saved.staleUntilMs) };
    },

    async releaseLease(req) {
      const tenant = tenantOf(req.tenant);
      const key = keyOf('key', req.key);
      if (!req.leaseId) throw new FieldError('lease_id', 'is required');
      return { released: await guarded('release_lease', () => store.releaseLease({ tenant, key, leaseId: req.leaseId })) };
    },

    async invalidate(req) {
      const tenant = tenantOf(req.tenant);
      let target: InvalidateTarget;
      if (req.target.case === 'key') target = { key: keyOf('key', req.target.value) };
      else if (req.target.case === 'prefix') target = { prefix: keyOf('prefix', req.target.value, true) };
      else throw new FieldError('target', 'set key (one entry) or prefix ("" = every entry of the tenant)');
      return { removed: await guarded('invalidate', () => store.invalidate({ tenant, target })) };
    },
  };
  return { implementation, stats };
}
