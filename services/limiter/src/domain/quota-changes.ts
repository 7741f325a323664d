import type { ResolvedKey } from './limits';
import type { BlockReason, KeyKind, KeyState, QuotaStore } from './quota-store';

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

/** Where quota changes go (NATS subject + KV bucket in production; see adapters/quota-publisher.ts). */
export interface QuotaPublisher {
  publish(change: QuotaChange): Promise<void>;
}

/** Publishes a deployment's quota change with its current state; tenants' changes stay local. */
export type Announce = (key: ResolvedKey, kind: QuotaChange['kind'], r: { epoch: number; nowMs: number }, untilMs: number, reason: string, limit?: BlockReason) => Promise<void>;

/**
 * Publishing is best effort (the state is already in the store): a failure is
 * reported to `onPublishError`, never to the caller.
 */
export function createQuotaAnnouncer(deps: { store: QuotaStore; publisher: QuotaPublisher; onPublishError?: (err: unknown, change: QuotaChange) => void }): Announce {
  async function publish(change: QuotaChange) {
    try {
      await deps.publisher.publish(change);
    } catch (err) {
      deps.onPublishError?.(err, change);
    }
  }
  return async (key, kind, r, untilMs, reason, limit) => {
    if (key.kind !== 'deployment') return;
    const state = await deps.store.state(key);
    await publish({
      key: { kind: key.kind, id: key.id }, provider: key.provider!, kind, untilMs, epoch: r.epoch, timeMs: r.nowMs, reason,
      state: { ...state, limits: key.limits }, ...(limit ? { limit } : {}),
    });
  };
}
