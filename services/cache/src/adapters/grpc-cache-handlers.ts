import { CacheService, LookupStatus } from '@switchyard/contracts';
import { type AccessTable, type ServiceImplementation, unavailable } from '@switchyard/grpc';
import { type Clock, systemClock } from '@switchyard/util';
import { type CacheMetrics, createCacheMetrics } from './cache-metrics';
import type { CacheStore, LookupStatusName } from '../domain/cache-store';
import { type CacheLog, type CacheStats, type LookupAnswer, CacheStoreUnreachable, createResponseCache } from '../domain/response-cache';

export { MAX_KEY_BYTES, MAX_LEASE_TTL_MS, MAX_WAIT_MS } from '../domain/cache-input';
export type { CacheStats } from '../domain/response-cache';
export type CacheHandlerLogger = CacheLog;

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
  /** Times the single-flight wait; default the system clock. */
  clock?: Clock;
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

/** An unreachable store as UNAVAILABLE (the caller bypasses the cache); input errors are FieldErrors, which the one mapping turns into INVALID_ARGUMENT. */
async function mapped<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof CacheStoreUnreachable) throw unavailable(err.message, err.retryAfterMs, { cause: err.cause });
    throw err;
  }
}

function lookupResponse(r: LookupAnswer) {
  const e = r.entry;
  return {
    status: STATUS[r.status],
    response: e?.value,
    ageMs: e ? Math.max(0, r.nowMs - e.storedAtMs) : 0,
    leaseId: r.leaseId ?? '',
    expiresAtUnixMs: BigInt(e?.expiresAtMs ?? 0),
    staleUntilUnixMs: BigInt(e?.staleUntilMs ?? 0),
    coalesced: r.coalesced,
  };
}

/**
 * CacheService over the domain's response cache (domain/response-cache.ts):
 * maps proto ⇄ domain, and an unreachable store to UNAVAILABLE.
 */
export function createCacheHandlers(options: CacheHandlerOptions): {
  implementation: ServiceImplementation<(typeof CacheService)['method']>;
  stats: CacheStats;
} {
  const clock = options.clock ?? systemClock;
  const cache = createResponseCache({ ...options, clock, events: options.metrics ?? createCacheMetrics() });

  const implementation: ServiceImplementation<(typeof CacheService)['method']> = {
    async lookup(req, ctx) {
      // gRPC gives the deadline as a wall-clock instant; the domain counts on its clock.
      const deadlineMs = ctx.deadline ? clock.now() + (ctx.deadline.getTime() - Date.now()) : undefined;
      const r = await mapped(() =>
        cache.lookup(
          { tenant: req.tenant, key: req.key, allowStale: req.allowStale, leaseTtlMs: req.leaseTtlMs, maxWaitMs: req.maxWaitMs },
          { signal: ctx.signal, ...(deadlineMs !== undefined ? { deadlineMs } : {}) },
        ),
      );
      return lookupResponse(r);
    },

    async store(req) {
      const saved = await mapped(() => cache.store(req));
      return { expiresAtUnixMs: BigInt(saved.expiresAtMs), staleUntilUnixMs: BigInt(saved.staleUntilMs) };
    },

    async releaseLease(req) {
      return { released: await mapped(() => cache.releaseLease(req)) };
    },

    async invalidate(req) {
      const target = req.target.case === 'key' ? { key: req.target.value } : req.target.case === 'prefix' ? { prefix: req.target.value } : undefined;
      return { removed: await mapped(() => cache.invalidate({ tenant: req.tenant, target })) };
    },
  };
  return { implementation, stats: cache.stats };
}
