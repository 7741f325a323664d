import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { CacheStatus, CompleteResponseSchema, LookupStatus, type CompleteResponse } from '@switchyard/contracts';
import { hopDeadline, peerErrorText, type PeerDeps } from './peer-call';
import type { CacheClient } from './peers';

/**
 * Outcome of the response-cache Lookup in the fan-out. `leaseId`: this call
 * holds the key's single-flight lease, so identical calls wait for its answer;
 * it must Store with it (success) or release it (anything else).
 */
export type CacheLookup =
  | { kind: 'bypass' }
  | { kind: 'unavailable' }
  | { kind: 'miss'; leaseId?: string }
  /** `coalesced`: the answer of an identical call that was in flight while this one waited. */
  | { kind: 'hit'; response: CompleteResponse; ageMs: number; coalesced: boolean }
  | { kind: 'stale'; response: CompleteResponse; ageMs: number; leaseId?: string };

/** Outcome of claiming an idempotency key (the cache service's single-flight lease under `idem:<key>`). */
export type IdempotencyLease =
  /** This call runs; `keep` stores its whole answer for the window, `release` gives the key back. */
  | { kind: 'leader'; keep(response: CompleteResponse): void; release(): void }
  /**
   * An earlier call with this key answered: its answer's bytes, and the
   * fingerprint of the request it answered (undefined for an entry kept
   * before keys were bound to requests).
   */
  | { kind: 'answered'; response: Uint8Array; fingerprint: string | undefined }
  /** Another call with this key is still running and did not finish while we waited. */
  | { kind: 'in-progress' }
  /** No guarantee could be had (cache unreachable or an unexpected status): the call runs without it. */
  | { kind: 'unavailable'; detail: string };

export interface CacheSettings {
  ttlMs: number;
  staleTtlMs: number;
  /** How long an idempotency key's answer is kept (IDEMPOTENCY_WINDOW_MS). */
  idempotencyWindowMs: number;
}

/** The cache service as the router uses it: Lookup, Store and the idempotency lease; bypassed when unreachable. */
export interface CachePeer {
  /**
   * Never throws: an unreachable cache or an undecodable entry is a miss the
   * answer reports. With `coalesce`, a miss takes the key's single-flight
   * lease, or, when an identical call holds it, waits for that call's answer
   * (a hit marked coalesced); a leader that gives up hands the lease to a waiter.
   */
  lookup(r: { tenant: string; key: string; allowStale: boolean; coalesce: boolean; requestId: string; deadlineAt: number }): Promise<CacheLookup>;
  /** Keeps a whole answer under `key`, stripped of what belongs to one call, releasing `leaseId` (off the response path). */
  store(r: { tenant: string; key: string; response: CompleteResponse; leaseId?: string; requestId: string }): void;
  /** Gives a lease back without an answer, so a waiting identical call runs itself at once (off the response path). */
  releaseLease(r: { tenant: string; key: string; leaseId: string; requestId: string }): void;
  /**
   * Claims `idem:<key>`, waiting for a running leader up to the caller's
   * deadline; a kept answer is stored with `fingerprint` (the request it
   * answers). Never throws.
   */
  claimIdempotency(r: { tenant: string; key: string; fingerprint: string; requestId: string; deadlineAt: number }): Promise<IdempotencyLease>;
}

/** Idempotency keys live in their own namespace, never the response cache's `<route>:<hash>` keys. */
const IDEMPOTENCY_NAMESPACE = 'idem:';
/** Lease lifetime when the caller set no deadline (a crashed leader frees the key after this). */
const DEFAULT_LEASE_MS = 60_000;
const MAX_LEASE_MS = 300_000;
/** Kept back from the caller's deadline so a waiter still gets an answer. */
const WAIT_MARGIN_MS = 20;
/** Longest an identical call waits for the leader's answer; it then calls upstream itself. */
const MAX_COALESCE_WAIT_MS = 30_000;
/**
 * Longest a Lookup may ask the cache to wait (the cache refuses more: its
 * MAX_WAIT_MS). A duplicate of an idempotent call with a longer deadline
 * waits this long, then hears the first is still in progress; asking for
 * more was refused, read as "cache unavailable", and every duplicate of a
 * call with a deadline over a minute (every job) ran upstream again.
 */
const MAX_LOOKUP_WAIT_MS = 60_000;

/**
 * Lease and wait of a coalescing Lookup: the lease lives as long as the
 * leader's own deadline; a follower waits at most half of its time left, so
 * if the leader fails it still has time to call upstream itself.
 */
function coalesceWindow(left: number): { leaseTtlMs: number; maxWaitMs: number } {
  const leaseTtlMs = Math.min(MAX_LEASE_MS, Number.isFinite(left) ? Math.max(1, Math.ceil(left)) : DEFAULT_LEASE_MS);
  const maxWaitMs = Math.floor(Math.max(0, Math.min(MAX_COALESCE_WAIT_MS, Number.isFinite(left) ? left / 2 : MAX_COALESCE_WAIT_MS)));
  return { leaseTtlMs, maxWaitMs };
}

export function idempotencyKeyFor(key: string): string {
  return `${IDEMPOTENCY_NAMESPACE}${key}`;
}

/**
 * A kept idempotent answer is stored as MAGIC, one length byte, the request
 * fingerprint (ASCII), then the CompleteResponse bytes: the key is bound to
 * the request it answered. Bytes without MAGIC are an answer kept before
 * that, replayed unchecked.
 */
const MAGIC = new TextEncoder().encode('SYI1');

export function encodeKeptAnswer(fingerprint: string, response: Uint8Array): Uint8Array {
  const fp = new TextEncoder().encode(fingerprint);
  if (fp.length > 255) throw new Error('idempotency fingerprint longer than 255 bytes');
  const out = new Uint8Array(MAGIC.length + 1 + fp.length + response.length);
  out.set(MAGIC, 0);
  out[MAGIC.length] = fp.length;
  out.set(fp, MAGIC.length + 1);
  out.set(response, MAGIC.length + 1 + fp.length);
  return out;
}

export function decodeKeptAnswer(stored: Uint8Array): { fingerprint: string | undefined; response: Uint8Array } {
  const tagged = stored.length > MAGIC.length && MAGIC.every((b, i) => stored[i] === b);
  if (!tagged) return { fingerprint: undefined, response: stored };
  const n = stored[MAGIC.length]!;
  const start = MAGIC.length + 1;
  return { fingerprint: new TextDecoder().decode(stored.subarray(start, start + n)), response: stored.subarray(start + n) };
}

export function createCachePeer({ client, clock, logger, tasks, peerDeadlineMs, settings }: PeerDeps<CacheClient> & { settings: CacheSettings }): CachePeer {
  return {
    async lookup(r) {
      try {
        const now = clock.now();
        const window = r.coalesce ? coalesceWindow(r.deadlineAt - now) : undefined;
        const res = await client.lookup(
          { tenant: r.tenant, key: r.key, allowStale: r.allowStale, ...window },
          hopDeadline({ now, deadlineAt: r.deadlineAt, peerDeadlineMs, waitMs: window?.maxWaitMs ?? 0 }),
        );
        const lease = res.leaseId ? { leaseId: res.leaseId } : {};
        if (res.status !== LookupStatus.HIT && res.status !== LookupStatus.STALE) return { kind: 'miss', ...lease };
        let response: CompleteResponse;
        try {
          response = fromBinary(CompleteResponseSchema, res.response);
        } catch (err) {
          logger.warn({ request_id: r.requestId, err: { message: (err as Error).message } }, 'undecodable cache entry treated as a miss');
          return { kind: 'miss', ...lease };
        }
        return res.status === LookupStatus.HIT ? { kind: 'hit', response, ageMs: res.ageMs, coalesced: res.coalesced } : { kind: 'stale', response, ageMs: res.ageMs, ...lease };
      } catch (err) {
        logger.warn({ request_id: r.requestId, peer: 'cache', err: { message: peerErrorText(err) } }, 'cache unreachable; bypassing');
        return { kind: 'unavailable' };
      }
    },

    store(r) {
      const stored = create(CompleteResponseSchema, { ...r.response, attempts: [], requestId: '', cacheStatus: CacheStatus.UNSPECIFIED, degraded: false, degradedReason: '', cacheAgeMs: 0 });
      const bytes = toBinary(CompleteResponseSchema, stored);
      tasks.run('cache store', { request_id: r.requestId }, () =>
        client.store({ tenant: r.tenant, key: r.key, response: bytes, ttlMs: settings.ttlMs, staleTtlMs: settings.staleTtlMs, ...(r.leaseId ? { leaseId: r.leaseId } : {}) }),
      );
    },

    releaseLease(r) {
      tasks.run('cache lease release', { request_id: r.requestId }, () => client.releaseLease({ tenant: r.tenant, key: r.key, leaseId: r.leaseId }));
    },

    async claimIdempotency(r) {
      const key = idempotencyKeyFor(r.key);
      const left = r.deadlineAt - clock.now();
      const leaseTtlMs = Math.min(MAX_LEASE_MS, Number.isFinite(left) ? Math.max(1, Math.ceil(left)) : DEFAULT_LEASE_MS);
      const maxWaitMs = Math.floor(Math.max(0, Math.min(leaseTtlMs, MAX_LOOKUP_WAIT_MS, (Number.isFinite(left) ? left : DEFAULT_LEASE_MS) - WAIT_MARGIN_MS)));
      try {
        const res = await client.lookup({ tenant: r.tenant, key, leaseTtlMs, maxWaitMs }, { deadlineMs: Math.max(1, maxWaitMs + peerDeadlineMs) });
        switch (res.status) {
          case LookupStatus.LEADER: {
            const leaseId = res.leaseId;
            return {
              kind: 'leader',
              keep(response) {
                const bytes = encodeKeptAnswer(r.fingerprint, toBinary(CompleteResponseSchema, create(CompleteResponseSchema, response)));
                tasks.run('idempotency store', { request_id: r.requestId }, () =>
                  client.store({ tenant: r.tenant, key, response: bytes, ttlMs: settings.idempotencyWindowMs, staleTtlMs: 1, leaseId }),
                );
              },
              release() {
                tasks.run('idempotency release', { request_id: r.requestId }, () => client.releaseLease({ tenant: r.tenant, key, leaseId }));
              },
            };
          }
          case LookupStatus.HIT:
            return { kind: 'answered', ...decodeKeptAnswer(res.response) };
          case LookupStatus.WAIT:
            return { kind: 'in-progress' };
          default:
            return { kind: 'unavailable', detail: `unexpected cache status ${LookupStatus[res.status] ?? res.status}` };
        }
      } catch (err) {
        logger.warn({ request_id: r.requestId, peer: 'cache', err: { message: peerErrorText(err) } }, 'idempotency lease unavailable; executing without it');
        return { kind: 'unavailable', detail: 'cache unavailable' };
      }
    },
  };
}
