import { isUnreachable } from '@switchyard/redis';
import type { AcquireInput, AcquireResult, KeyLimits, LimitedKey, QuotaStore } from '../domain/quota-store';

/** Reservations issued by the local fallback carry this prefix, so Settle finds them after Redis is back. */
export const LOCAL_RESERVATION_PREFIX = 'local-';

export interface FailoverQuotaStoreOptions {
  /** The shared store (Redis). */
  shared: QuotaStore;
  /** This replica's own store (in-memory) for when the shared one is unreachable. */
  local: QuotaStore;
  /** Live limiter replicas (≥ 1); each holds 1/live of every limit while Redis is away. */
  liveReplicas: () => number;
  /** After a failure, skip the shared store this long before trying it again. Default 500 ms. */
  retryAfterMs?: number;
  now?: () => number;
  /** Called when the mode changes (metrics, logs). */
  onModeChange?: (mode: 'shared' | 'local', cause?: unknown) => void;
}

export interface FailoverQuotaStore extends QuotaStore {
  mode(): 'shared' | 'local';
}

/** Each key's limits divided among the live replicas (floor: the shares never add up to more than the limit). */
export function shareOf(limits: KeyLimits, replicas: number): KeyLimits {
  const out: KeyLimits = {};
  for (const dim of ['rpm', 'tpm', 'tpd', 'concurrency'] as const) {
    const v = limits[dim];
    if (v !== undefined) out[dim] = Math.floor(v / replicas);
  }
  return out;
}

/**
 * DESIGN "When our own dependencies fail": Redis unreachable → this replica
 * limits alone with its share of every limit (limit ÷ live replicas), so the
 * cluster as a whole still admits at most the limit per period (plus one burst
 * of the shares at the start of the outage: the local state starts empty). The
 * shared store is tried again every `retryAfterMs`; the first success returns
 * to shared accounting. Results decided locally carry `localFallback`.
 */
export function createFailoverQuotaStore(options: FailoverQuotaStoreOptions): FailoverQuotaStore {
  const { shared, local } = options;
  const retryAfterMs = options.retryAfterMs ?? 500;
  const now = options.now ?? Date.now;
  let mode: 'shared' | 'local' = 'shared';
  let nextTry = 0;

  const fail = (err: unknown) => {
    nextTry = now() + retryAfterMs;
    if (mode === 'shared') {
      mode = 'local';
      options.onModeChange?.('local', err);
    }
  };
  const ok = () => {
    if (mode === 'local') {
      mode = 'shared';
      options.onModeChange?.('shared');
    }
  };

  /** Runs on the shared store unless it is known down; falls back to the local one when unreachable. */
  async function either<T>(onShared: () => Promise<T>, onLocal: () => Promise<T>): Promise<T> {
    if (mode === 'shared' || now() >= nextTry) {
      try {
        const r = await onShared();
        ok();
        return r;
      } catch (err) {
        if (!isUnreachable(err)) throw err;
        fail(err);
      }
    }
    return onLocal();
  }

  const localKeys = (keys: LimitedKey[]): LimitedKey[] => {
    const replicas = Math.max(1, options.liveReplicas());
    return keys.map((k) => ({ ...k, limits: shareOf(k.limits, replicas) }));
  };

  async function acquireLocally(input: AcquireInput): Promise<AcquireResult> {
    const keys = localKeys(input.keys);
    // A share of 0 (limit below the replica count) admits nothing here: a 0 limit
    // would read as "unlimited" to the store.
    for (const [index, k] of keys.entries()) {
      for (const dim of ['rpm', 'tpm', 'tpd', 'concurrency'] as const) {
        if (k.limits[dim] === 0) return { granted: false, blockedIndex: index, blockedBy: dim, retryAfterMs: 1_000, nowMs: now(), localFallback: true };
      }
    }
    const r = await local.acquire({ ...input, keys, reservationId: `${LOCAL_RESERVATION_PREFIX}${input.reservationId}` });
    return { ...r, localFallback: true };
  }

  return {
    mode: () => mode,
    acquire: (input) => either(() => shared.acquire(input), () => acquireLocally(input)),
    settle: (input) =>
      input.reservationId.startsWith(LOCAL_RESERVATION_PREFIX) ? local.settle(input) : either(() => shared.settle(input), () => local.settle(input)),
    cooldown: (key, ms) => either(() => shared.cooldown(key, ms), () => local.cooldown(key, ms)),
    setUnavailable: (key, value) => either(() => shared.setUnavailable(key, value), () => local.setUnavailable(key, value)),
    markExhausted: (key, until) => either(() => shared.markExhausted(key, until), () => local.markExhausted(key, until)),
    recover: (key) => either(() => shared.recover(key), () => local.recover(key)),
    tighten: (key, remaining) => either(() => shared.tighten(key, remaining), () => local.tighten({ ...key, limits: localKeys([key])[0]!.limits }, remaining)),
    state: (key) =>
      either(
        () => shared.state(key),
        async () => ({ ...(await local.state({ ...key, limits: localKeys([key])[0]!.limits })), localFallback: true }),
      ),
    leaveQueue: (key, ticket) => either(() => shared.leaveQueue(key, ticket), () => local.leaveQueue(key, ticket)),
    async close() {
      await Promise.all([shared.close(), local.close()]);
    },
  };
}
