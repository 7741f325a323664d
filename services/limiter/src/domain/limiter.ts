import { randomUUID } from 'node:crypto';
import type { SwitchyardConfig } from '@switchyard/config';
import { parseRetryAfter } from '@switchyard/providers';
import { sleep } from '@switchyard/util';
import { type LimitResolver, type ResolvedKey, createLimitResolver } from './limits';
import type { BlockReason, KeyKind, KeyState, QuotaStore, SettleResult } from './quota-store';

/** A caller mistake; `field` is the proto field path, so the gRPC error names it. */
export class LimiterInputError extends Error {
  constructor(
    readonly field: string,
    readonly problem: string,
  ) {
    super(`${field}: ${problem}`);
    this.name = 'LimiterInputError';
  }
}

/** Beyond any real request (the largest context windows are ~2M tokens). */
export const MAX_TOKENS = 10_000_000;
export const MAX_REQUESTS = 1_000;
export const MAX_KEYS = 8;

export interface LimiterSettings {
  /** Reservation lifetime when the request sets none. */
  defaultReservationTtlMs: number;
  maxReservationTtlMs: number;
  /** Longest wait a caller may ask for. */
  maxWaitMs: number;
  /** Cooldown after a 429 that carried no usable Retry-After. */
  defaultCooldownMs: number;
  /** A waiter's ticket lapses unless it polls again within this long after its told wait (a dead waiter frees its place). */
  queueLeaseMs: number;
  /** Poll interval of a waiter blocked on concurrency (slots free on Settle, earlier than their expiry). */
  concurrencyPollMs: number;
}

export const DEFAULT_LIMITER_SETTINGS: LimiterSettings = {
  defaultReservationTtlMs: 60_000,
  maxReservationTtlMs: 3_600_000,
  maxWaitMs: 60_000,
  defaultCooldownMs: 1_000,
  queueLeaseMs: 2_000,
  concurrencyPollMs: 50,
};

/** A wait ends this long before the caller's deadline so the answer still reaches it. */
const DEADLINE_MARGIN_MS = 50;

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
}

export type AcquireOutcome =
  | { granted: true; reservationId: string; waitedMs: number }
  | {
      granted: false;
      retryAfterMs: number;
      retryAtMs: number;
      blockedKey: { kind: KeyKind; id: string };
      blockedBy: BlockReason;
      waitedMs: number;
    };

export interface ObserveRequest {
  provider: string;
  deployment: string;
  httpStatus: number;
  headers: Record<string, string>;
  /** Error class name as in @switchyard/providers ('RATE_LIMITED', …); undefined for success. */
  errorClass: string | undefined;
}

export interface ObserveOutcome {
  cooldownUntilMs: number;
  unavailable: boolean;
}

/** A change of a deployment's quota state other replicas and routers must learn about. */
export interface QuotaChange {
  key: { kind: KeyKind; id: string };
  provider: string;
  kind: 'cooldown_started' | 'unavailable';
  untilMs: number;
  epoch: number;
  timeMs: number;
  reason: string;
  state: KeyState & { limits: ResolvedKey['limits'] };
}

/** Where quota changes go (NATS subject + KV bucket in production; see adapters/quota-publisher.ts). */
export interface QuotaPublisher {
  publish(change: QuotaChange): Promise<void>;
}

export interface LimiterDeps {
  store: QuotaStore;
  config: SwitchyardConfig;
  publisher: QuotaPublisher;
  settings?: Partial<LimiterSettings>;
  /** Injected for tests; default real sleep. */
  wait?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Publishing is best effort (the state is already in Redis); failures are reported here. */
  onPublishError?: (err: unknown, change: QuotaChange) => void;
}

export interface CallScope {
  signal?: AbortSignal;
  /** The caller's deadline (ms epoch, local clock); a wait never runs past it. */
  deadlineMs?: number;
  now?: () => number;
}

/**
 * The limiter's use cases over a QuotaStore: validation against the config,
 * one bounded internal wait on denial, and quota-change publication.
 */
export function createLimiter(deps: LimiterDeps) {
  const settings = { ...DEFAULT_LIMITER_SETTINGS, ...deps.settings };
  const resolver: LimitResolver = createLimitResolver(deps.config);
  const wait = deps.wait ?? sleep;

  function resolveKey(ref: KeyRef, field: string): ResolvedKey {
    if (ref.kind === undefined) throw new LimiterInputError(`${field}.kind`, 'must be KEY_KIND_DEPLOYMENT or KEY_KIND_TENANT');
    if (!ref.id) throw new LimiterInputError(`${field}.id`, 'is required');
    const key = resolver.resolve(ref.kind, ref.id);
    if (!key) throw new LimiterInputError(`${field}.id`, `unknown ${ref.kind} ${JSON.stringify(ref.id)}`);
    return key;
  }

  function validateAcquire(req: AcquireRequest) {
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
    integerIn('reservation_ttl_ms', req.reservationTtlMs, 0, settings.maxReservationTtlMs);
    integerIn('max_wait_ms', req.maxWaitMs, 0, settings.maxWaitMs);
    if (req.requestId.length > 128) throw new LimiterInputError('request_id', 'at most 128 characters');
    // A cost above a key's whole per-minute limit could never be admitted: say so
    // instead of answering "retry later" forever.
    for (const [i, k] of keys.entries()) {
      if (k.limits.tpm !== undefined && req.tokens > k.limits.tpm) {
        throw new LimiterInputError('tokens', `${req.tokens} exceeds the whole tpm limit ${k.limits.tpm} of keys[${i}] (${k.kind} ${JSON.stringify(k.id)}); it can never be admitted there`);
      }
      if (k.limits.rpm !== undefined && requests > k.limits.rpm) {
        throw new LimiterInputError('requests', `${requests} exceeds the whole rpm limit ${k.limits.rpm} of keys[${i}] (${k.kind} ${JSON.stringify(k.id)})`);
      }
    }
    return { keys, requests };
  }

  async function acquire(req: AcquireRequest, scope: CallScope = {}): Promise<AcquireOutcome> {
    const { keys, requests } = validateAcquire(req);
    const now = scope.now ?? Date.now;
    const ttlMs = req.reservationTtlMs || settings.defaultReservationTtlMs;
    const started = now();
    // Wait at most max_wait_ms, and never past the caller's deadline (minus a
    // margin for the answer to travel back).
    const waitUntil = Math.min(started + req.maxWaitMs, scope.deadlineMs !== undefined ? scope.deadlineMs - DEADLINE_MARGIN_MS : Infinity);
    const waiting = req.maxWaitMs > 0 && waitUntil > started;
    // Tenants share a deployment: its key carries the wait queue, the tenant is the fairness class.
    const queueIndex = keys.findIndex((k) => k.kind === 'deployment');
    const queueKey = queueIndex >= 0 ? keys[queueIndex]! : undefined;
    const flow = keys.find((k) => k.kind === 'tenant')?.id ?? '';
    let ticket: string | undefined;
    /** Time spent asleep waiting for capacity (not the Redis round trips). */
    let waitedMs = 0;
    const leave = async () => {
      if (ticket === undefined || !queueKey) return;
      const t = ticket;
      ticket = undefined;
      await deps.store.leaveQueue(queueKey, t).catch(() => undefined);
    };
    const attempt = () =>
      deps.store.acquire({
        keys,
        requests,
        tokens: req.tokens,
        ttlMs,
        reservationId: randomUUID(),
        requestId: req.requestId || undefined,
        ...(queueKey
          ? {
              queue: {
                index: queueIndex,
                flow,
                ...(ticket !== undefined ? { ticket } : {}),
                enqueue: waiting,
                maxWaitMs: Math.max(1, Math.ceil(waitUntil - started)),
                leaseMs: settings.queueLeaseMs,
              },
            }
          : {}),
      });
    for (;;) {
      const result = await attempt();
      if (result.granted) return { granted: true, reservationId: result.reservationId, waitedMs };
      ticket = result.ticket;
      const t = now();
      const fits = waiting && result.blockedBy !== 'unavailable' && t + result.retryAfterMs <= waitUntil && !scope.signal?.aborted;
      if (!fits) {
        await leave();
        const blocked = keys[result.blockedIndex]!;
        return {
          granted: false,
          retryAfterMs: result.retryAfterMs,
          retryAtMs: result.retryAfterMs > 0 ? result.nowMs + result.retryAfterMs : 0,
          blockedKey: { kind: blocked.kind, id: blocked.id },
          blockedBy: result.blockedBy,
          waitedMs,
        };
      }
      // GCRA and cooldown waits are exact (poll then; the ticket's lease runs
      // past them); a concurrency slot may free early on Settle, so poll sooner.
      const cap = result.blockedBy === 'concurrency' ? settings.concurrencyPollMs : Infinity;
      try {
        const before = now();
        await wait(Math.max(1, Math.min(result.retryAfterMs, cap)), scope.signal);
        waitedMs += Math.max(0, Math.round(now() - before));
      } catch (err) {
        await leave();
        throw err;
      }
    }
  }

  async function settle(req: { reservationId: string; actualTokens: number; cancelled: boolean }): Promise<SettleResult> {
    if (!req.reservationId) throw new LimiterInputError('reservation_id', 'is required');
    if (req.reservationId.length > 128) throw new LimiterInputError('reservation_id', 'at most 128 characters');
    integerIn('actual_tokens', req.actualTokens, 0, MAX_TOKENS);
    return deps.store.settle(req);
  }

  function deploymentOf(provider: string, deployment: string): ResolvedKey {
    if (!deployment) throw new LimiterInputError('deployment.deployment', 'is required');
    const key = resolver.resolve('deployment', deployment);
    if (!key) throw new LimiterInputError('deployment.deployment', `unknown deployment ${JSON.stringify(deployment)}`);
    if (provider && provider !== key.provider) {
      throw new LimiterInputError('deployment.provider', `deployment ${JSON.stringify(deployment)} is a ${key.provider} deployment, not ${JSON.stringify(provider)}`);
    }
    return key;
  }

  async function publish(change: QuotaChange) {
    try {
      await deps.publisher.publish(change);
    } catch (err) {
      deps.onPublishError?.(err, change);
    }
  }

  async function observe(req: ObserveRequest): Promise<ObserveOutcome> {
    const key = deploymentOf(req.provider, req.deployment);
    if (req.httpStatus !== 0 && (req.httpStatus < 100 || req.httpStatus > 599)) {
      throw new LimiterInputError('http_status', `must be an HTTP status 100..599 or 0, got ${req.httpStatus}`);
    }
    const ref = { kind: key.kind, id: key.id };
    if (req.errorClass === 'QUOTA_EXHAUSTED') {
      const r = await deps.store.setUnavailable(ref, true);
      const state = await deps.store.state(key);
      if (r.changed) {
        await publish({
          key: ref, provider: key.provider!, kind: 'unavailable', untilMs: 0, epoch: r.epoch, timeMs: r.nowMs,
          reason: `upstream quota exhausted (HTTP ${req.httpStatus})`, state: { ...state, limits: key.limits },
        });
      }
      return { cooldownUntilMs: state.cooldownUntilMs, unavailable: true };
    }
    if (req.errorClass === 'RATE_LIMITED' || req.httpStatus === 429) {
      const parsed = parseRetryAfter(req.headers, Date.now());
      const ms = parsed.retryAfterMs !== undefined && parsed.retryAfterMs > 0 ? parsed.retryAfterMs : settings.defaultCooldownMs;
      const r = await deps.store.cooldown(ref, ms);
      const state = await deps.store.state(key);
      if (r.changed) {
        await publish({
          key: ref, provider: key.provider!, kind: 'cooldown_started', untilMs: r.cooldownUntilMs, epoch: r.epoch, timeMs: r.nowMs,
          reason: parsed.retryAfterMs !== undefined ? `upstream 429, retry after ${ms} ms` : `upstream 429 without retry-after; default cooldown ${ms} ms`,
          state: { ...state, limits: key.limits },
        });
      }
      return { cooldownUntilMs: r.cooldownUntilMs, unavailable: state.unavailable };
    }
    const state = await deps.store.state(key);
    return { cooldownUntilMs: state.cooldownUntilMs, unavailable: state.unavailable };
  }

  async function getQuota(ref: KeyRef): Promise<{ key: ResolvedKey; state: KeyState }> {
    const key = resolveKey(ref, 'key');
    return { key, state: await deps.store.state(key) };
  }

  return { acquire, settle, observe, getQuota };
}

export type Limiter = ReturnType<typeof createLimiter>;

function integerIn(field: string, value: number, min: number, max: number) {
  if (!Number.isInteger(value)) throw new LimiterInputError(field, `must be an integer, got ${value}`);
  if (value < min || value > max) throw new LimiterInputError(field, `must be between ${min} and ${max}, got ${value}`);
}
