import { randomUUID } from 'node:crypto';
import { type Clock, sleep, systemClock } from '@switchyard/util';
import { CacheInputError, MAX_LEASE_TTL_MS, MAX_WAIT_MS, atMost, keyOf, tenantOf } from './cache-input';
import type { CacheEntryInfo, CacheStore, InvalidateTarget, LookupResult, LookupStatusName } from './cache-store';

/** Stop waiting this long before the caller's deadline so the WAIT answer still reaches it. */
const DEADLINE_MARGIN_MS = 50;
/** What an unreachable store tells callers: try the cache again after this long. */
const BYPASS_RETRY_MS = 1_000;

/**
 * The store is unreachable: the caller should go upstream without the cache
 * (the contract's UNAVAILABLE) rather than wait for it.
 */
export class CacheStoreUnreachable extends Error {
  readonly retryAfterMs = BYPASS_RETRY_MS;
  constructor(options: { cause: unknown }) {
    super('cache store unreachable; bypass the cache', options);
    this.name = 'CacheStoreUnreachable';
  }
}

export interface CacheLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

/** Where the cache reports what it answered (OTel counters in production). */
export interface CacheEvents {
  /** `bytes`: size of the response served (hit, stale), 0 otherwise. */
  lookup(status: LookupStatusName, coalesced: boolean, bytes: number): void;
  store(outcome: 'stored' | 'too_large', bytes: number): void;
  /** A call refused because the store was unreachable (the router bypassed the cache). */
  bypass(op: string): void;
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

const COUNTER: Record<LookupStatusName, keyof CacheStats> = { hit: 'hits', stale: 'stale', miss: 'misses', leader: 'leaders', wait: 'waits' };

export interface ResponseCacheDeps {
  store: CacheStore;
  logger: CacheLog;
  events: CacheEvents;
  defaultTtlMs: number;
  defaultStaleTtlMs: number;
  maxEntryBytes: number;
  /** How often a waiter re-checks for the leader's result. */
  waitPollMs: number;
  /** Times the single-flight wait; default the system clock. */
  clock?: Clock;
  /** Injected for tests; default real sleep. */
  wait?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export interface LookupRequest {
  tenant: string;
  key: string;
  allowStale: boolean;
  leaseTtlMs: number;
  maxWaitMs: number;
}

/** A lookup's answer; `coalesced` when it is the result of another caller's single-flight lead. */
export type LookupAnswer = LookupResult & { coalesced: boolean };

export interface CallScope {
  signal: AbortSignal;
  /** The caller's deadline (ms epoch on the cache's clock); a wait never runs past it. */
  deadlineMs?: number;
}

/**
 * The cache's use cases over a CacheStore: input checks naming the proto
 * field, single-flight waiting, and the bypass policy: when the store is
 * unreachable every call fails fast with CacheStoreUnreachable instead of
 * hanging the router's fan-out.
 */
export function createResponseCache(deps: ResponseCacheDeps) {
  const { store, logger, events, waitPollMs } = deps;
  const clock = deps.clock ?? systemClock;
  const wait = deps.wait ?? sleep;
  const stats: CacheStats = { hits: 0, stale: 0, misses: 0, leaders: 0, waits: 0, coalesced: 0, bypassed: 0 };
  let storeHealthy = true;

  /** Runs a store call; an unreachable store becomes CacheStoreUnreachable (counted, logged once per outage). */
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
      events.bypass(op);
      if (storeHealthy) {
        storeHealthy = false;
        logger.warn({ event: 'cache_store_unavailable', op, err: { message: (err as Error).message } }, 'cache store unreachable; callers bypass the cache');
      }
      throw new CacheStoreUnreachable({ cause: err });
    }
  }

  function answered(r: LookupResult, coalesced = false): LookupAnswer {
    stats[COUNTER[r.status]]++;
    if (coalesced) stats.coalesced++;
    events.lookup(r.status, coalesced, r.entry?.value.byteLength ?? 0);
    return { ...r, coalesced };
  }

  async function lookup(req: LookupRequest, scope: CallScope): Promise<LookupAnswer> {
    const input = {
      tenant: tenantOf(req.tenant),
      key: keyOf('key', req.key),
      allowStale: req.allowStale,
      leaseTtlMs: atMost('lease_ttl_ms', req.leaseTtlMs, MAX_LEASE_TTL_MS),
      leaseId: randomUUID(),
    };
    const maxWaitMs = atMost('max_wait_ms', req.maxWaitMs, MAX_WAIT_MS);
    let r = await guarded('lookup', () => store.lookup(input));
    if (r.status !== 'wait' || maxWaitMs === 0) return answered(r);
    // Another caller leads: poll for its result until max_wait_ms (or just before the caller's deadline).
    const until = Math.min(clock.now() + maxWaitMs, (scope.deadlineMs ?? Infinity) - DEADLINE_MARGIN_MS);
    while (clock.now() + waitPollMs <= until && !scope.signal.aborted) {
      await wait(waitPollMs, scope.signal).catch(() => undefined);
      if (scope.signal.aborted) break;
      r = await guarded('lookup', () => store.lookup(input));
      if (r.status === 'hit') return answered(r, true);
      if (r.status !== 'wait') return answered(r);
    }
    return answered(r);
  }

  async function save(req: { tenant: string; key: string; response: Uint8Array; ttlMs: number; staleTtlMs: number; leaseId: string }): Promise<Omit<CacheEntryInfo, 'value'>> {
    const tenant = tenantOf(req.tenant);
    const key = keyOf('key', req.key);
    if (req.response.byteLength > deps.maxEntryBytes) {
      events.store('too_large', req.response.byteLength);
      throw new CacheInputError('response', `must be at most ${deps.maxEntryBytes} bytes, got ${req.response.byteLength}`);
    }
    const saved = await guarded('store', () =>
      store.store({
        tenant,
        key,
        value: req.response,
        ttlMs: req.ttlMs || deps.defaultTtlMs,
        staleTtlMs: req.staleTtlMs || deps.defaultStaleTtlMs,
        leaseId: req.leaseId || undefined,
      }),
    );
    events.store('stored', req.response.byteLength);
    return saved;
  }

  async function releaseLease(req: { tenant: string; key: string; leaseId: string }): Promise<boolean> {
    const tenant = tenantOf(req.tenant);
    const key = keyOf('key', req.key);
    if (!req.leaseId) throw new CacheInputError('lease_id', 'is required');
    return guarded('release_lease', () => store.releaseLease({ tenant, key, leaseId: req.leaseId }));
  }

  /** `target` undefined: the caller set neither a key nor a prefix. */
  async function invalidate(req: { tenant: string; target: { key: string } | { prefix: string } | undefined }): Promise<number> {
    const tenant = tenantOf(req.tenant);
    let target: InvalidateTarget;
    if (req.target && 'key' in req.target) target = { key: keyOf('key', req.target.key) };
    else if (req.target) target = { prefix: keyOf('prefix', req.target.prefix, true) };
    else throw new CacheInputError('target', 'set key (one entry) or prefix ("" = every entry of the tenant)');
    return guarded('invalidate', () => store.invalidate({ tenant, target }));
  }

  return { lookup, store: save, releaseLease, invalidate, stats };
}

export type ResponseCache = ReturnType<typeof createResponseCache>;
