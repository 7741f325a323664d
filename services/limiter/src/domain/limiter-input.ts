import { FieldError } from '@switchyard/util';
import type { LimitResolver, ResolvedKey } from './limits';
import type { KeyKind } from './quota-store';

/** A caller mistake; `field` is the proto field path, so the gRPC error (INVALID_ARGUMENT) names it. */
export class LimiterInputError extends FieldError {
  override readonly name = 'LimiterInputError';
}

/** Beyond any real request (the largest context windows are ~2M tokens). */
export const MAX_TOKENS = 10_000_000;
export const MAX_REQUESTS = 1_000;
export const MAX_KEYS = 8;
/** A lease admits for at most this long: its unused part must come back soon. */
export const MAX_LEASE_MS = 10_000;

export interface KeyRef {
  kind: KeyKind | undefined;
  id: string;
}

export interface AcquireRequest {
  keys: KeyRef[];
  requests: number;
  tokens: number;
  reservationTtlMs: number;
  maxWaitMs: number;
  requestId: string;
  /** > 0: a lease for this long (proto lease_ms); absent or 0: one call. */
  leaseMs?: number;
}

export interface SettleRequest {
  reservationId: string;
  actualTokens: number;
  cancelled: boolean;
  /** Settling a lease: requests used, and ms from its Acquire being sent until the last use. */
  leaseUsedRequests?: number;
  leaseLastUseMs?: number;
}

/** The bounds a request is checked against (from LimiterSettings). */
export interface InputBounds {
  maxReservationTtlMs: number;
  maxWaitMs: number;
}

/**
 * Every check of a caller's input against the config, before any store call:
 * each failure names the proto field it is about.
 */
export function createLimiterInput(resolver: LimitResolver, bounds: InputBounds) {
  function resolveKey(ref: KeyRef, field: string): ResolvedKey {
    if (ref.kind === undefined) throw new LimiterInputError(`${field}.kind`, 'must be KEY_KIND_DEPLOYMENT or KEY_KIND_TENANT');
    if (!ref.id) throw new LimiterInputError(`${field}.id`, 'is required');
    const key = resolver.resolve(ref.kind, ref.id);
    if (!key) throw new LimiterInputError(`${field}.id`, `unknown ${ref.kind} ${JSON.stringify(ref.id)}`);
    return key;
  }

  /** The keys an Acquire names, resolved, and its request count (0 means 1). */
  function acquire(req: AcquireRequest): { keys: ResolvedKey[]; requests: number } {
    if (req.keys.length === 0) throw new LimiterInputError('keys', 'must name at least one key');
    if (req.keys.length > MAX_KEYS) throw new LimiterInputError('keys', `at most ${MAX_KEYS} keys, got ${req.keys.length}`);
    const keys = req.keys.map((ref, i) => resolveKey(ref, `keys[${i}]`));
    const seen = new Set<string>();
    keys.forEach((k, i) => {
      const name = `${k.kind}:${k.id}`;
      if (seen.has(name)) throw new LimiterInputError(`keys[${i}]`, `duplicate key ${k.kind} ${JSON.stringify(k.id)}`);
      seen.add(name);
    });
    const requests = req.requests === 0 ? 1 : req.requests;
    integerIn('requests', requests, 1, MAX_REQUESTS);
    integerIn('tokens', req.tokens, 0, MAX_TOKENS);
    integerIn('reservation_ttl_ms', req.reservationTtlMs, 0, bounds.maxReservationTtlMs);
    integerIn('max_wait_ms', req.maxWaitMs, 0, bounds.maxWaitMs);
    if (req.requestId.length > 128) throw new LimiterInputError('request_id', 'at most 128 characters');
    const leaseMs = req.leaseMs ?? 0;
    integerIn('lease_ms', leaseMs, 0, MAX_LEASE_MS);
    if (leaseMs > 0) {
      // A lease is refused at once or granted; waiting is the per-call path's.
      if (req.maxWaitMs > 0) throw new LimiterInputError('max_wait_ms', 'must be 0 for a lease');
      // A concurrency slot is per call, and a TPD bucket is a minute: neither can be leased exactly.
      for (const [i, k] of keys.entries()) {
        if (k.limits.concurrency !== undefined || k.limits.tpd !== undefined) {
          throw new LimiterInputError('lease_ms', `keys[${i}] (${k.kind} ${JSON.stringify(k.id)}) has a concurrency or TPD limit: no lease`);
        }
      }
    }
    // A cost above a key's whole per-minute (or per-day) limit could never be
    // admitted: say so instead of answering "retry later" forever.
    for (const [i, k] of keys.entries()) {
      for (const dim of ['tpm', 'tpd'] as const) {
        const limit = k.limits[dim];
        if (limit !== undefined && req.tokens > limit) {
          throw new LimiterInputError('tokens', `${req.tokens} exceeds the whole ${dim} limit ${limit} of keys[${i}] (${k.kind} ${JSON.stringify(k.id)}); it can never be admitted there`);
        }
      }
      if (k.limits.rpm !== undefined && requests > k.limits.rpm) {
        throw new LimiterInputError('requests', `${requests} exceeds the whole rpm limit ${k.limits.rpm} of keys[${i}] (${k.kind} ${JSON.stringify(k.id)})`);
      }
    }
    return { keys, requests };
  }

  function settle(req: SettleRequest): void {
    if (!req.reservationId) throw new LimiterInputError('reservation_id', 'is required');
    if (req.reservationId.length > 128) throw new LimiterInputError('reservation_id', 'at most 128 characters');
    integerIn('actual_tokens', req.actualTokens, 0, MAX_TOKENS);
    integerIn('lease_used_requests', req.leaseUsedRequests ?? 0, 0, MAX_REQUESTS);
    integerIn('lease_last_use_ms', req.leaseLastUseMs ?? 0, 0, MAX_LEASE_MS);
  }

  /** The deployment an Observe or ClearUnavailable names; a provider given must be the deployment's. */
  function deployment(provider: string, deployment: string): ResolvedKey {
    if (!deployment) throw new LimiterInputError('deployment.deployment', 'is required');
    const key = resolver.resolve('deployment', deployment);
    if (!key) throw new LimiterInputError('deployment.deployment', `unknown deployment ${JSON.stringify(deployment)}`);
    if (provider && provider !== key.provider) {
      throw new LimiterInputError('deployment.provider', `deployment ${JSON.stringify(deployment)} is a ${key.provider} deployment, not ${JSON.stringify(provider)}`);
    }
    return key;
  }

  function httpStatus(status: number): void {
    if (status !== 0 && (status < 100 || status > 599)) {
      throw new LimiterInputError('http_status', `must be an HTTP status 100..599 or 0, got ${status}`);
    }
  }

  return { resolveKey, acquire, settle, deployment, httpStatus };
}

export type LimiterInput = ReturnType<typeof createLimiterInput>;

function integerIn(field: string, value: number, min: number, max: number) {
  if (!Number.isInteger(value)) throw new LimiterInputError(field, `must be an integer, got ${value}`);
  if (value < min || value > max) throw new LimiterInputError(field, `must be between ${min} and ${max}, got ${value}`);
}
