import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { CompleteResponseSchema, LookupStatus, type CompleteResponse } from '@switchyard/contracts';
import { AppError, status } from '@switchyard/grpc';
import type { RouterContext } from '../router-context';
import type { PreparedCall } from './pipeline';

/**
 * Idempotency keys ride on the cache service's single-flight lease instead of
 * a router-owned Redis key: the lease is already one atomic Lua script with
 * TTL, tenant isolation and waiter wake-up, it has an in-memory twin for the
 * embedded demo, and the router stays free of its own Redis connection. The
 * key lives in its own namespace (`idem:<key>`), never the response cache's
 * `<route>:<hash>` keys, so cacheable:false routes and cache invalidation do
 * not touch it.
 *
 * - first caller: LEADER → executes; success → Store (TTL = the window);
 *   failure → ReleaseLease, so the caller may retry with the same key.
 * - concurrent duplicates: wait inside Lookup for the leader's result; when the
 *   leader failed, the next waiter becomes leader (a retry with the same key).
 * - later duplicates within the window: HIT → the stored answer, unchanged.
 * - cache unreachable: the call runs (fail open) and the answer says the
 *   at-most-once guarantee was not available (degraded).
 *
 * Complete and StreamComplete share the namespace on purpose: both store the
 * same shape, a whole CompleteResponse (a stream keeps its assembled content
 * and only when it ended cleanly). So a key first used by Complete replays to
 * StreamComplete as one delta plus the Final, and a key first used by a
 * stream answers Complete with the full content; a duplicate of either RPC
 * waits for a leader of the other.
 */
export type IdempotencyClaim =
  | { kind: 'none' }
  | { kind: 'leader'; key: string; leaseId: string }
  | { kind: 'done'; response: CompleteResponse }
  | { kind: 'unavailable'; note: string };

const NAMESPACE = 'idem:';
/** Lease lifetime when the caller set no deadline (a crashed leader frees the key after this). */
const DEFAULT_LEASE_MS = 60_000;
const MAX_LEASE_MS = 300_000;
/** Kept back from the caller's deadline so a waiter still gets an answer. */
const WAIT_MARGIN_MS = 20;

export function idempotencyKeyFor(key: string): string {
  return `${NAMESPACE}${key}`;
}

export async function claimIdempotency(ctx: RouterContext, p: PreparedCall): Promise<IdempotencyClaim> {
  if (!p.call.idempotencyKey) return { kind: 'none' };
  const key = idempotencyKeyFor(p.call.idempotencyKey);
  const left = p.deadlineAt - ctx.clock.now();
  const leaseTtlMs = Math.min(MAX_LEASE_MS, Number.isFinite(left) ? Math.max(1, Math.ceil(left)) : DEFAULT_LEASE_MS);
  const maxWaitMs = Math.max(0, Math.min(leaseTtlMs, (Number.isFinite(left) ? left : DEFAULT_LEASE_MS) - WAIT_MARGIN_MS));
  try {
    const res = await ctx.peers.cache.lookup(
      { tenant: p.owner.tenantId, key, leaseTtlMs, maxWaitMs: Math.floor(maxWaitMs) },
      { deadlineMs: Math.max(1, Math.floor(maxWaitMs) + ctx.peerDeadlineMs) },
    );
    switch (res.status) {
      case LookupStatus.LEADER:
        return { kind: 'leader', key, leaseId: res.leaseId };
      case LookupStatus.HIT:
        return { kind: 'done', response: fromBinary(CompleteResponseSchema, res.response) };
      case LookupStatus.WAIT:
        throw new AppError(status.ABORTED, `idempotency_key: a call with this key is still in progress; retry with the same key`, {
          retryDelayMs: 1000,
          errorInfo: { reason: 'IDEMPOTENCY_IN_PROGRESS', domain: 'switchyard.router', metadata: { request_id: p.requestId } },
        });
      default:
        return { kind: 'unavailable', note: `idempotency not guaranteed: unexpected cache status ${LookupStatus[res.status] ?? res.status}` };
    }
  } catch (err) {
    if (err instanceof AppError) throw err;
    ctx.logger.warn({ request_id: p.requestId, peer: 'cache', err: { message: (err as Error).message } }, 'idempotency lease unavailable; executing without it');
    return { kind: 'unavailable', note: 'idempotency not guaranteed: cache unavailable' };
  }
}

/** The leader succeeded: keep its answer for the window (waiters are woken by the Store). */
export function completeIdempotency(ctx: RouterContext, p: PreparedCall, claim: IdempotencyClaim, response: CompleteResponse): void {
  if (claim.kind !== 'leader') return;
  const bytes = toBinary(CompleteResponseSchema, create(CompleteResponseSchema, response));
  ctx.tasks.run('idempotency store', { request_id: p.requestId }, () =>
    ctx.peers.cache.store({ tenant: p.owner.tenantId, key: claim.key, response: bytes, ttlMs: ctx.idempotencyWindowMs, staleTtlMs: 1, leaseId: claim.leaseId }),
  );
}

/** The leader failed: give the key back so a retry with it runs again. */
export function abandonIdempotency(ctx: RouterContext, p: PreparedCall, claim: IdempotencyClaim): void {
  if (claim.kind !== 'leader') return;
  ctx.tasks.run('idempotency release', { request_id: p.requestId }, () =>
    ctx.peers.cache.releaseLease({ tenant: p.owner.tenantId, key: claim.key, leaseId: claim.leaseId }),
  );
}

/**
 * The same claim/complete/abandon for a handler with many ways out (a stream
 * may throw, end INCOMPLETE, lose its caller): claim() first, keep() the whole
 * answer once there is one, and releaseUnlessKept() when the handler is done,
 * however it ended, so a leader that kept nothing gives the key back.
 */
export class IdempotencyHold {
  private held: { p: PreparedCall; claim: IdempotencyClaim } | undefined;
  private kept = false;

  constructor(private readonly ctx: RouterContext) {}

  async claim(p: PreparedCall): Promise<IdempotencyClaim> {
    const claim = await claimIdempotency(this.ctx, p);
    this.held = { p, claim };
    return claim;
  }

  keep(response: CompleteResponse): void {
    if (!this.held || this.kept) return;
    this.kept = true;
    completeIdempotency(this.ctx, this.held.p, this.held.claim, response);
  }

  releaseUnlessKept(): void {
    if (this.held && !this.kept) abandonIdempotency(this.ctx, this.held.p, this.held.claim);
  }
}
