import { randomUUID } from 'node:crypto';
import type { SwitchyardConfig } from '@switchyard/config';
import { parseRateLimitHeaders } from '@switchyard/providers';
import { type Clock, FieldError, sleep, systemClock } from '@switchyard/util';
import { type LimitResolver, type ResolvedKey, createLimitResolver } from './limits';
import type { AcquireResult, BlockReason, KeyKind, KeyState, QuotaStore, SettleResult } from './quota-store';
import { createSlotWakeups, slotKeyName } from './slot-wakeups';

/** A caller mistake; `field` is the proto field path, so the gRPC error (INVALID_ARGUMENT) names it. */
export class LimiterInputError extends FieldError {
  override readonly name = 'LimiterInputError';
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
  /**
   * Poll interval of a waiter blocked on concurrency (slots free on Settle,
   * earlier than their expiry). With wake-ups on it is only the fallback for a
   * wake-up that got lost or a free nobody announced.
   */
  concurrencyPollMs: number;
  /** Wake waiters blocked on concurrency when a Settle frees a slot of their key (here, or on another replica via the slot feed). */
  concurrencyWakeup: boolean;
}

export const DEFAULT_LIMITER_SETTINGS: LimiterSettings = {
  defaultReservationTtlMs: 60_000,
  maxReservationTtlMs: 3_600_000,
  maxWaitMs: 60_000,
  defaultCooldownMs: 1_000,
  queueLeaseMs: 2_000,
  concurrencyPollMs: 50,
  concurrencyWakeup: true,
};

/** Recovery checks run this long after the until they wait for (timer vs Redis clock). */
const RECOVERY_SLACK_MS = 5;

/** An Observe's observed_at may run this far ahead of our clock (clock skew) before it is ignored. */
const OBSERVED_AT_FUTURE_SLACK_MS = 1_000;
/** An observed_at older than this is ignored (the caller's clock is off, or the Observe sat in a queue). */
const OBSERVED_AT_MAX_AGE_MS = 60_000;

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
  | { granted: true; reservationId: string; waitedMs: number; localFallback: boolean; grantedAtMs: number }
  | {
      localFallback: boolean;
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
  /** When the caller received the response (epoch ms); relative headers count from then. 0 = now. */
  observedAtMs?: number;
}

export interface ObserveOutcome {
  cooldownUntilMs: number;
  unavailable: boolean;
  /** Our view of remaining quota was lowered to what the provider reported. */
  tightened: { rpm: boolean; tpm: boolean };
}

/** A change of a deployment's quota state other replicas and routers must learn about. */
export interface QuotaChange {
  key: { kind: KeyKind; id: string };
  provider: string;
  kind: 'exhausted' | 'cooldown_started' | 'recovered' | 'unavailable';
  /** Which limit, for 'exhausted' (rpm / tpm / tpd). */
  limit?: BlockReason;
  untilMs: number;
  epoch: number;
  timeMs: number;
  reason: string;
  state: KeyState & { limits: ResolvedKey['limits'] };
}

/** Tells the other limiter replicas which keys' concurrency slots were freed here (NATS in production; see adapters/slot-feed.ts). */
export interface SlotFeed {
  announce(keyNames: string[]): Promise<void>;
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
  /** A background step (exhaustion mark, recovery check) failed; the next one retries. */
  onBackgroundError?: (err: unknown, what: string) => void;
  /** Local clock (header parsing, recovery timers); store decisions use the store's clock. */
  clock?: Clock;
  /** Timer for recovery checks; default setTimeout (unref'd). Returns a cancel function. */
  schedule?: (ms: number, fn: () => void) => () => void;
  /** Other replicas' waiters learn of slots freed here through it (absent: this replica's waiters only). */
  slotFeed?: SlotFeed;
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
  const clock = deps.clock ?? systemClock;
  const wakeups = settings.concurrencyWakeup ? createSlotWakeups() : undefined;

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
    // Frees of the keys that can block on concurrency, counted while this call waits.
    const limited = keys.filter((k) => k.limits.concurrency !== undefined).map(slotKeyName);
    const slots = waiting && limited.length > 0 ? wakeups?.watch(limited) : undefined;
    /** After a denial: sleeps until capacity may be back (or a wake-up), or says the wait is over. */
    const napAfter = async (result: Extract<AcquireResult, { granted: false }>): Promise<'again' | 'done'> => {
      ticket = result.ticket;
      noteExhaustion(keys[result.blockedIndex]!, result.blockedBy, result.nowMs + result.retryAfterMs);
      const t = now();
      // A concurrency wait is an upper bound (the holders' expiry; they usually
      // settle sooner): keep polling while the deadline allows.
      const untilCapacity = result.blockedBy === 'concurrency' ? Math.min(result.retryAfterMs, settings.concurrencyPollMs) : result.retryAfterMs;
      const fits = waiting && result.blockedBy !== 'unavailable' && t + untilCapacity <= waitUntil && !scope.signal?.aborted;
      if (!fits) return 'done';
      // Window and cooldown waits are exact (poll then; the ticket's lease runs
      // past them); a concurrency slot may free early on Settle, so poll sooner,
      // and wake as soon as enough slots of the key were freed.
      const cap = result.blockedBy === 'concurrency' ? settings.concurrencyPollMs : Infinity;
      const nap = new AbortController();
      let woken = false;
      if (result.blockedBy === 'concurrency' && slots) {
        const blocked = slotKeyName(keys[result.blockedIndex]!);
        const armed = slots.arm(blocked, result.slotsShort ?? 1, () => {
          woken = true;
          nap.abort();
        });
        // Enough slots were freed while the store was deciding: ask again now.
        if (!armed) return 'again';
      }
      const forward = () => nap.abort(scope.signal?.reason);
      scope.signal?.addEventListener('abort', forward, { once: true });
      const before = now();
      try {
        await wait(Math.max(1, Math.min(result.retryAfterMs, cap)), nap.signal);
      } catch (err) {
        if (!woken) {
          await leave();
          throw err;
        }
      } finally {
        scope.signal?.removeEventListener('abort', forward);
        slots?.disarm();
        waitedMs += Math.max(0, Math.round(now() - before));
      }
      return 'again';
    };
    try {
      for (;;) {
        slots?.restart();
        const result = await attempt();
        if (result.granted) return { granted: true, reservationId: result.reservationId, waitedMs, localFallback: result.localFallback === true, grantedAtMs: result.nowMs };
        const slept = await napAfter(result);
        if (slept === 'done') {
          await leave();
          const blocked = keys[result.blockedIndex]!;
          return {
            granted: false,
            retryAfterMs: result.retryAfterMs,
            retryAtMs: result.retryAfterMs > 0 ? result.nowMs + result.retryAfterMs : 0,
            blockedKey: { kind: blocked.kind, id: blocked.id },
            blockedBy: result.blockedBy,
            waitedMs,
            localFallback: result.localFallback === true,
          };
        }
      }
    } finally {
      slots?.close();
    }
  }

  async function settle(req: { reservationId: string; actualTokens: number; cancelled: boolean }): Promise<SettleResult> {
    if (!req.reservationId) throw new LimiterInputError('reservation_id', 'is required');
    if (req.reservationId.length > 128) throw new LimiterInputError('reservation_id', 'at most 128 characters');
    integerIn('actual_tokens', req.actualTokens, 0, MAX_TOKENS);
    const r = await deps.store.settle(req);
    if (r.freedSlots.length > 0) slotsFreed(r.freedSlots.map(slotKeyName), 'here');
    return r;
  }

  /**
   * Slots of these keys were freed (a Settle here, or one another replica
   * announced): wake the waiters that may fit now. The store's queue still
   * decides who gets a slot; this only makes them ask sooner than their poll.
   */
  function slotsFreed(keyNames: string[], where: 'here' | 'elsewhere' = 'elsewhere') {
    if (!wakeups) return;
    wakeups.freed(keyNames);
    const feed = deps.slotFeed;
    if (where === 'here' && feed) background('announce freed slots', () => feed.announce(keyNames));
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

  async function announce(key: ResolvedKey, kind: QuotaChange['kind'], r: { epoch: number; nowMs: number }, untilMs: number, reason: string, limit?: BlockReason) {
    if (key.kind !== 'deployment') return;
    const state = await deps.store.state(key);
    await publish({
      key: { kind: key.kind, id: key.id }, provider: key.provider!, kind, untilMs, epoch: r.epoch, timeMs: r.nowMs, reason,
      state: { ...state, limits: key.limits }, ...(limit ? { limit } : {}),
    });
  }

  const background = (what: string, fn: () => Promise<unknown>) => {
    void fn().catch((err) => deps.onBackgroundError?.(err, what));
  };

  /** Per deployment: the until of the exhaustion this replica already reported (saves a script per denial). */
  const markedUntil = new Map<string, number>();
  function noteExhaustion(key: ResolvedKey, by: BlockReason, untilMs: number) {
    if (key.kind !== 'deployment' || (by !== 'rpm' && by !== 'tpm' && by !== 'tpd')) return;
    if ((markedUntil.get(key.id) ?? 0) >= untilMs - 50) return;
    markedUntil.set(key.id, untilMs);
    background('mark exhausted', async () => {
      const r = await deps.store.markExhausted(key, untilMs);
      if (r.changed) await announce(key, 'exhausted', r, r.untilMs, `${by} limit ${key.limits[by]} reached; capacity again at ${new Date(r.untilMs).toISOString()}`, by);
      watchRecovery(key.id, r.untilMs);
    });
  }

  /** deployment → pending recovery check. */
  const recoveries = new Map<string, { untilMs: number; cancel: () => void }>();
  const schedule =
    deps.schedule ??
    ((ms: number, fn: () => void) => {
      const t = setTimeout(fn, ms);
      t.unref?.();
      return () => clearTimeout(t);
    });
  let closed = false;

  /**
   * Checks a deployment for recovery at `untilMs` (store time; the local timer
   * may be a little early or late, and the script decides). Every replica that
   * saw the exhaustion or cooldown (itself, or via the quota event) watches;
   * exactly one wins the RECOVER script and publishes RECOVERED.
   */
  function watchRecovery(deployment: string, untilMs: number) {
    if (closed || untilMs <= 0) return;
    const key = resolver.resolve('deployment', deployment);
    if (!key) return;
    const pending = recoveries.get(deployment);
    if (pending && pending.untilMs >= untilMs) return;
    pending?.cancel();
    const cancel = schedule(Math.max(0, untilMs - clock.now()) + RECOVERY_SLACK_MS, () => {
      recoveries.delete(deployment);
      background('recover', async () => {
        const r = await deps.store.recover(key);
        if (r.recovered) {
          markedUntil.delete(deployment);
          await announce(key, 'recovered', r, 0, 'capacity available again');
        } else if (r.pendingUntilMs > 0) watchRecovery(deployment, r.pendingUntilMs);
      });
    });
    recoveries.set(deployment, { untilMs, cancel });
  }

  async function observe(req: ObserveRequest): Promise<ObserveOutcome> {
    const key = deploymentOf(req.provider, req.deployment);
    if (req.httpStatus !== 0 && (req.httpStatus < 100 || req.httpStatus > 599)) {
      throw new LimiterInputError('http_status', `must be an HTTP status 100..599 or 0, got ${req.httpStatus}`);
    }
    const ref = { kind: key.kind, id: key.id };
    const noTightening = { rpm: false, tpm: false };
    if (req.errorClass === 'QUOTA_EXHAUSTED') {
      const r = await deps.store.setUnavailable(ref, true);
      if (r.changed) await announce(key, 'unavailable', r, 0, `upstream quota exhausted (HTTP ${req.httpStatus}); until an operator calls ClearUnavailable`);
      const state = await deps.store.state(key);
      return { cooldownUntilMs: state.cooldownUntilMs, unavailable: true, tightened: noTightening };
    }
    const localNow = clock.now();
    // Relative headers count from when the caller received them, so the
    // cooldown ends when the provider said, not one hop (or a stall) later.
    const observedAt = req.observedAtMs && req.observedAtMs <= localNow + OBSERVED_AT_FUTURE_SLACK_MS && req.observedAtMs >= localNow - OBSERVED_AT_MAX_AGE_MS ? Math.min(req.observedAtMs, localNow) : localNow;
    const snapshot = parseRateLimitHeaders(req.headers, observedAt);
    const tokens = snapshot.tokens ?? snapshot.inputTokens;
    if (req.errorClass === 'RATE_LIMITED' || req.httpStatus === 429) {
      // retry-after(-ms) wins; else the reset of a bucket the provider says is empty; else the default.
      const emptyReset = [snapshot.requests, tokens].filter((b) => b?.remaining === 0 && b.resetAt !== undefined).map((b) => b!.resetAt! - localNow);
      const fromHeaders = snapshot.retryAfterMs !== undefined ? snapshot.retryAfterMs - (localNow - observedAt) : emptyReset.length > 0 ? Math.max(...emptyReset) : undefined;
      if (fromHeaders !== undefined && fromHeaders <= 0 && localNow > observedAt) {
        // The provider's wait was over before this Observe arrived: nothing to cool down.
        const state = await deps.store.state(key);
        return { cooldownUntilMs: state.cooldownUntilMs, unavailable: state.unavailable, tightened: noTightening };
      }
      const ms = fromHeaders !== undefined && fromHeaders > 0 ? fromHeaders : settings.defaultCooldownMs;
      const r = await deps.store.cooldown(ref, ms);
      if (r.changed) {
        await announce(key, 'cooldown_started', r, r.cooldownUntilMs,
          fromHeaders !== undefined ? `upstream 429, retry after ${ms} ms` : `upstream 429 without retry-after; default cooldown ${ms} ms`);
      }
      watchRecovery(key.id, r.cooldownUntilMs);
      const state = await deps.store.state(key);
      return { cooldownUntilMs: r.cooldownUntilMs, unavailable: state.unavailable, tightened: noTightening };
    }
    // A success (or another error) carrying rate-limit headers: the provider's
    // remaining quota caps ours. Provider units are absolute, ours are scaled by
    // headroom, so "remaining" caps ours directly (never raises it).
    const remaining = { rpm: snapshot.requests?.remaining, tpm: tokens?.remaining };
    let tightened = noTightening;
    if (remaining.rpm !== undefined || remaining.tpm !== undefined) {
      // Provider resets are local-clock instants; the store's clock is Redis, close enough for a cap that only tightens.
      const t = await deps.store.tighten(key, {
        ...(remaining.rpm !== undefined ? { rpm: remaining.rpm, rpmResetAt: snapshot.requests?.resetAt ?? 0 } : {}),
        ...(remaining.tpm !== undefined ? { tpm: remaining.tpm, tpmResetAt: tokens?.resetAt ?? 0 } : {}),
      });
      tightened = { rpm: t.rpm, tpm: t.tpm };
      // The provider is at zero: nothing fits until its reset, so cool down until then.
      const emptyUntil = [snapshot.requests, tokens].filter((b) => b?.remaining === 0 && b.resetAt !== undefined).map((b) => b!.resetAt! - localNow);
      if (emptyUntil.length > 0 && Math.max(...emptyUntil) > 0) {
        const r = await deps.store.cooldown(ref, Math.max(...emptyUntil));
        if (r.changed) await announce(key, 'cooldown_started', r, r.cooldownUntilMs, `provider reports no quota left until its reset`);
        watchRecovery(key.id, r.cooldownUntilMs);
      }
    }
    const state = await deps.store.state(key);
    return { cooldownUntilMs: state.cooldownUntilMs, unavailable: state.unavailable, tightened };
  }

  async function clearUnavailable(provider: string, deployment: string): Promise<{ cleared: boolean; epoch: number }> {
    const key = deploymentOf(provider, deployment);
    const r = await deps.store.setUnavailable({ kind: key.kind, id: key.id }, false);
    if (r.changed) await announce(key, 'recovered', r, 0, 'unavailable mark cleared by an operator');
    return { cleared: r.changed, epoch: r.epoch };
  }

  /** Stops pending recovery timers (shutdown). */
  function close() {
    closed = true;
    for (const r of recoveries.values()) r.cancel();
    recoveries.clear();
  }

  async function getQuota(ref: KeyRef): Promise<{ key: ResolvedKey; state: KeyState }> {
    const key = resolveKey(ref, 'key');
    return { key, state: await deps.store.state(key) };
  }

  return { acquire, settle, observe, getQuota, clearUnavailable, watchRecovery, slotsFreed: (keyNames: string[]) => slotsFreed(keyNames), close };
}

export type Limiter = ReturnType<typeof createLimiter>;

function integerIn(field: string, value: number, min: number, max: number) {
  if (!Number.isInteger(value)) throw new LimiterInputError(field, `must be an integer, got ${value}`);
  if (value < min || value > max) throw new LimiterInputError(field, `must be between ${min} and ${max}, got ${value}`);
}
