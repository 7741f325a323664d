import { fromBinary } from '@bufbuild/protobuf';
import { KeyKind, LimitKind, QuotaStateSchema, type QuotaState } from '@switchyard/contracts';
import type { EventBus, KvWatcher } from '@switchyard/nats';
import { KV_BUCKETS } from '@switchyard/nats';
import type { ReplicaLogger } from './health-replica';

/** What the router needs to know about a deployment's quota, decoded from the limiter's KV value. */
export interface QuotaEntry {
  unavailable: boolean;
  /** Cooling down (upstream 429) until this instant; 0 when not. */
  cooldownUntil: number;
  /** An RPM/TPM/TPD window is used up until this instant; 0 when not. */
  exhaustedUntil: number;
  exhaustedLimit?: 'RPM' | 'TPM' | 'TPD';
  epoch: bigint;
}

export interface QuotaReplica {
  get(deployment: string): QuotaEntry | undefined;
  stop(): Promise<void>;
}

function toEntry(state: QuotaState): QuotaEntry {
  let exhaustedUntil = 0;
  let exhaustedLimit: QuotaEntry['exhaustedLimit'];
  for (const l of state.limits) {
    if ((l.kind === LimitKind.RPM || l.kind === LimitKind.TPM || l.kind === LimitKind.TPD) && l.limit > 0 && l.remaining === 0) {
      const until = Number(l.resetsAtUnixMs);
      if (until > exhaustedUntil) {
        exhaustedUntil = until;
        exhaustedLimit = l.kind === LimitKind.RPM ? 'RPM' : l.kind === LimitKind.TPM ? 'TPM' : 'TPD';
      }
    }
  }
  const entry: QuotaEntry = { unavailable: state.unavailable, cooldownUntil: Number(state.cooldownUntilUnixMs), exhaustedUntil, epoch: state.epoch };
  if (exhaustedLimit) entry.exhaustedLimit = exhaustedLimit;
  return entry;
}

/**
 * Local replica of the limiter's `sy_quota` bucket, deployment keys only
 * (tenant limits are enforced by Acquire; skipping a deployment because of a
 * tenant key would be wrong). Same defensive decoding and epoch rule as the
 * health replica.
 */
export async function startQuotaReplica(
  bus: EventBus,
  logger: ReplicaLogger,
  /** Every newer state of a deployment key, as it arrives (quota leases are revoked on a cooldown or exhaustion). */
  onChange?: (deployment: string, entry: QuotaEntry) => void,
): Promise<QuotaReplica> {
  const entries = new Map<string, QuotaEntry>();
  const kv = await bus.kv(KV_BUCKETS.quota);
  const watcher: KvWatcher = await kv.watch({
    onEntry(key, value) {
      if (value === null || value.length === 0) {
        // Keys are "<kind>.<id>"; a deleted deployment key means nothing is known about it any more.
        const dot = key.lastIndexOf('.');
        entries.delete(dot >= 0 ? key.slice(dot + 1) : key);
        return;
      }
      let state: QuotaState;
      try {
        state = fromBinary(QuotaStateSchema, value);
      } catch (err) {
        logger.warn({ bucket: KV_BUCKETS.quota, key, err: (err as Error).message }, 'undecodable quota value ignored');
        return;
      }
      if (state.key?.kind !== KeyKind.DEPLOYMENT || !state.key.id) return;
      const held = entries.get(state.key.id);
      if (held && held.epoch >= state.epoch && state.epoch !== 0n) return;
      const entry = toEntry(state);
      entries.set(state.key.id, entry);
      onChange?.(state.key.id, entry);
    },
  });
  return { get: (deployment) => entries.get(deployment), stop: () => watcher.stop() };
}
