import { randomUUID } from 'node:crypto';
import type { SwitchyardConfig } from '@switchyard/config';
import { type Clock, sleep, systemClock } from '@switchyard/util';
import { type AcquireRequest, type KeyRef, type SettleRequest, createLimiterInput } from './limiter-input';
import { type LimitResolver, type ResolvedKey, createLimitResolver } from './limits';
import { createObserve } from './observe';
import { type QuotaChange, type QuotaPublisher, createQuotaAnnouncer } from './quota-changes';
import type { AcquireResult, BlockReason, KeyKind, KeyState, QuotaStore, SettleResult } from './quota-store';
import { createRecoveryWatch } from './recovery-watch';
import { createSlotWakeups, slotKeyName } from './slot-wakeups';

export { LimiterInputError, MAX_KEYS, MAX_REQUESTS, MAX_TOKENS, type AcquireRequest, type KeyRef, type SettleRequest } from './limiter-input';
export type { ObserveOutcome, ObserveRequest } from './observe';
export type { QuotaChange, QuotaPublisher } from './quota-changes';

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

/** A wait ends this long before the caller's deadline so the answer still reaches it. */
const DEADLINE_MARGIN_MS = 50;

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

/** Tells the other limiter replicas which keys' concurrency slots were freed here (NATS in production; see adapters/slot-feed.ts). */
export interface SlotFeed {
  announce(keyNames: string[]): Promise<void>;
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
  /** The caller's deadline (ms epoch on the limiter's clock); a wait never runs past it. */
  deadlineMs?: number;
  /** This call's clock, when not the limiter's. */
  now?: () => number;
}

/**
 * The limiter's use cases over a QuotaStore: Acquire (one bounded internal
 * wait on denial) and Settle here; input checks in limiter-input.ts, Observe
 * in observe.ts, exhaustion and recovery in recovery-watch.ts.
 */
export function createLimiter(deps: LimiterDeps) {
  const settings = { ...DEFAULT_LIMITER_SETTINGS, ...deps.settings };
  const resolver: LimitResolver = createLimitResolver(deps.config);
  const input = createLimiterInput(resolver, settings);
  const wait = deps.wait ?? sleep;
  const clock = deps.clock ?? systemClock;
  const wakeups = settings.concurrencyWakeup ? createSlotWakeups() : undefined;
  const background = (what: string, fn: () => Promise<unknown>) => {
    void fn().catch((err) => deps.onBackgroundError?.(err, what));
  };
  const announce = createQuotaAnnouncer({ store: deps.store, publisher: deps.publisher, ...(deps.onPublishError ? { onPublishError: deps.onPublishError } : {}) });
  const recovery = createRecoveryWatch({
    resolver,
    store: deps.store,
    clock,
    announce,
    background,
    schedule:
      deps.schedule ??
      ((ms: number, fn: () => void) => {
        const t = setTimeout(fn, ms);
        t.unref?.();
        return () => clearTimeout(t);
      }),
  });
  const { observe, clearUnavailable } = createObserve({ input, store: deps.store, announce, recovery, clock, defaultCooldownMs: settings.defaultCooldownMs });

  async function acquire(req: AcquireRequest, scope: CallScope = {}): Promise<AcquireOutcome> {
    const { keys, requests } = input.acquire(req);
    const now = scope.now ?? (() => clock.now());
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
        ...(req.leaseMs ? { leaseMs: req.leaseMs } : {}),
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
      // A refused lease says the keys are near their limit, not that they are
      // spent: the per-call Acquire that follows decides about exhaustion.
      if (!req.leaseMs) recovery.noteExhaustion(keys[result.blockedIndex]!, result.blockedBy, result.nowMs + result.retryAfterMs);
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

  async function settle(req: SettleRequest): Promise<SettleResult> {
    input.settle(req);
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

  async function getQuota(ref: KeyRef): Promise<{ key: ResolvedKey; state: KeyState }> {
    const key = input.resolveKey(ref, 'key');
    return { key, state: await deps.store.state(key) };
  }

  return { acquire, settle, observe, getQuota, clearUnavailable, watchRecovery: recovery.watch, slotsFreed: (keyNames: string[]) => slotsFreed(keyNames), close: recovery.close };
}

export type Limiter = ReturnType<typeof createLimiter>;
