import { isUnreachable } from '@switchyard/redis';
import type { HealthStore } from '../domain/health-store';

export type StoreMode = 'shared' | 'local';

export interface FailoverHealthStoreOptions {
  /** The shared store (Redis). */
  shared: HealthStore;
  /** A fresh store of this replica's own (in memory) for each time the shared one is unreachable: one outage's counts are not the next one's. */
  createLocal: () => HealthStore;
  /** After a failure, skip the shared store this long before trying it again. Default 500 ms. */
  retryAfterMs?: number;
  now?: () => number;
  /** Called when the mode changes (metrics, logs, and the resync of the published health on the way back). */
  onModeChange?: (mode: StoreMode, cause?: unknown) => void;
}

export interface FailoverHealthStore extends HealthStore {
  mode(): StoreMode;
}

/**
 * DESIGN "When our own dependencies fail", for circuit state: while Redis is
 * unreachable the breaker keeps counting in this replica's memory, so a
 * failing deployment still opens its circuit and the routers (following the
 * published health) stop sending to it. Without this, outcomes could not be
 * recorded, no circuit could open, and every call paid the failing attempt.
 *
 * The local circuits start CLOSED at epoch 0, in a store of their own for
 * each outage; the health publisher lifts
 * their epoch above the published one (HealthStore.raiseEpoch), so their
 * states are heard. With several breaker replicas each counts the outcomes
 * JetStream hands it (a share of the traffic), and each may grant its own
 * half-open probe: an approximation, as the limiter's local share is. The
 * shared store is tried again every `retryAfterMs`; the first success
 * returns to it, and Redis is the truth again (the caller republishes it).
 */
export function createFailoverHealthStore(options: FailoverHealthStoreOptions): FailoverHealthStore {
  const { shared } = options;
  let local: HealthStore | undefined;
  const retryAfterMs = options.retryAfterMs ?? 500;
  const now = options.now ?? Date.now;
  let mode: StoreMode = 'shared';
  let nextTry = 0;

  async function either<T>(call: (store: HealthStore) => Promise<T>): Promise<T> {
    if (mode === 'shared' || now() >= nextTry) {
      try {
        const r = await call(shared);
        if (mode === 'local') {
          mode = 'shared';
          options.onModeChange?.('shared');
        }
        return r;
      } catch (err) {
        if (!isUnreachable(err)) throw err;
        nextTry = now() + retryAfterMs;
        if (mode === 'shared') {
          mode = 'local';
          const stale = local;
          local = options.createLocal();
          void stale?.close();
          options.onModeChange?.('local', err);
        }
      }
    }
    return call(local!);
  }

  return {
    mode: () => mode,
    record: (id, outcome) => either((s) => s.record(id, outcome)),
    recordBatch: (id, outcomes) => either((s) => s.recordBatch(id, outcomes)),
    observe: (deployment) => either((s) => s.observe(deployment)),
    force: (id, input) => either((s) => s.force(id, input)),
    acquireProbe: (deployment, holderId, ttlMs, extend) => either((s) => s.acquireProbe(deployment, holderId, ttlMs, extend)),
    raiseEpoch: (deployment, held) => either((s) => s.raiseEpoch(deployment, held)),
    deployments: () => either((s) => s.deployments()),
    openDeployments: () => either((s) => s.openDeployments()),
    async close() {
      await Promise.all([shared.close(), local?.close()]);
    },
  };
}
