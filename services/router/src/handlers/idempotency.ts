import { createHash } from 'node:crypto';
import { fromBinary } from '@bufbuild/protobuf';
import { CompleteResponseSchema, type CompleteResponse } from '@switchyard/contracts';
import type { CachePeer } from '../adapters/cache-peer';
import type { DegradedReason } from '../domain/degraded';
import { idempotencyInProgress, idempotencyKeyReused } from './caller-errors';
import { cacheKeyFor, type PreparedCall } from './prepare-call';

/**
 * What binds an idempotency key to its request: a hash of exactly the fields
 * that change the answer (route, messages, parameters), as the cache key uses.
 * The RPC is not part of it: Complete and StreamComplete share keys on purpose.
 */
export function requestFingerprint(call: PreparedCall['call']): string {
  return createHash('sha256').update(cacheKeyFor(call), 'utf8').digest('hex');
}

/**
 * Idempotency keys ride on the cache service's single-flight lease instead of
 * a router-owned Redis key: the lease is already one atomic Lua script with
 * TTL, tenant isolation and waiter wake-up, it has an in-memory twin for the
 * embedded demo, and the router stays free of its own Redis connection (see
 * adapters/cache-peer.ts claimIdempotency).
 *
 * - first caller: leader → executes; a whole answer → kept (TTL = the window);
 *   anything else → the key is given back, so the caller may retry with it.
 * - concurrent duplicates: wait inside Lookup for the leader's result; when the
 *   leader failed, the next waiter becomes leader (a retry with the same key).
 * - later duplicates within the window: the kept answer, unchanged; the same
 *   key with a different request (another fingerprint): FAILED_PRECONDITION.
 * - cache unreachable: the call runs (fail open) and the answer says the
 *   at-most-once guarantee was not available (degraded).
 *
 * Complete and StreamComplete share the namespace on purpose: both keep the
 * same shape, a whole CompleteResponse (a stream keeps its assembled content
 * and only when it ended cleanly). So a key first used by Complete replays to
 * StreamComplete as one delta plus the Final, and a key first used by a
 * stream answers Complete with the full content; a duplicate of either RPC
 * waits for a leader of the other.
 */
export interface IdempotencyClaim {
  /** The answer an earlier call with this key gave: replay it, run nothing. */
  replay?: CompleteResponse;
  /** Set when the call runs without the at-most-once guarantee. */
  degraded?: DegradedReason;
  /** Keep this call's whole answer for the key's window (the first keep wins; no-op without a lease). */
  keep(response: CompleteResponse): void;
  /** The handler is done, however it ended: a leader that kept nothing gives the key back. */
  finish(): void;
}

const NO_KEY: IdempotencyClaim = { keep() {}, finish() {} };

/** Claims the call's idempotency key (if it has one). Throws ABORTED while another call with the key is still running. */
export type ClaimIdempotency = (p: PreparedCall) => Promise<IdempotencyClaim>;

export function createIdempotency(cache: CachePeer): ClaimIdempotency {
  return async (p) => {
    if (!p.call.idempotencyKey) return NO_KEY;
    const key = p.call.idempotencyKey;
    const fingerprint = requestFingerprint(p.call);
    const lease = await cache.claimIdempotency({ tenant: p.owner.tenantId, key, fingerprint, requestId: p.requestId, deadlineAt: p.deadlineAt });
    switch (lease.kind) {
      case 'in-progress':
        throw idempotencyInProgress(p.requestId);
      case 'unavailable':
        return { ...NO_KEY, degraded: { kind: 'idempotency-unavailable', detail: lease.detail } };
      case 'answered':
        // The same key with a different request is a caller bug: answering it
        // with the first request's answer would hand back the wrong answer.
        if (lease.fingerprint !== undefined && lease.fingerprint !== fingerprint) throw idempotencyKeyReused(key, p.requestId);
        try {
          return { ...NO_KEY, replay: fromBinary(CompleteResponseSchema, lease.response) };
        } catch {
          return { ...NO_KEY, degraded: { kind: 'idempotency-unavailable', detail: 'cache unavailable' } };
        }
      case 'leader': {
        let kept = false;
        let finished = false;
        return {
          keep(response) {
            if (kept || finished) return;
            kept = true;
            lease.keep(response);
          },
          finish() {
            if (finished) return;
            finished = true;
            if (!kept) lease.release();
          },
        };
      }
    }
  };
}
