import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { LimitKind, QuotaEventKind, QuotaEventSchema, QuotaStateSchema } from '@switchyard/contracts';
import { type EventBus, type KvStore, KV_BUCKETS, deploymentKey, isKvConflictError, subjects } from '@switchyard/nats';
import type { QuotaChange, QuotaPublisher } from '../domain/quota-changes';
import { limitKeyToProto, limitKindToProto, quotaStateToProto } from './quota-proto';

const EVENT_KIND: Record<QuotaChange['kind'], QuotaEventKind> = {
  exhausted: QuotaEventKind.EXHAUSTED,
  cooldown_started: QuotaEventKind.COOLDOWN_STARTED,
  recovered: QuotaEventKind.RECOVERED,
  unavailable: QuotaEventKind.UNAVAILABLE,
};

const EVENT_LIMIT = (change: QuotaChange): LimitKind => {
  if (change.kind === 'exhausted') return change.limit ? limitKindToProto(change.limit) : LimitKind.UNSPECIFIED;
  if (change.kind === 'cooldown_started') return LimitKind.COOLDOWN;
  if (change.kind === 'unavailable') return LimitKind.UNAVAILABLE;
  return LimitKind.UNSPECIFIED;
};

/**
 * Publishes a QuotaEvent on `switchyard.quota.<provider>.<deployment>` and
 * writes the deployment's QuotaState into the `sy_quota` KV bucket (key
 * `<provider>.<deployment>`, the shared deploymentKey helper) so routers can skip
 * cooled-down or exhausted deployments and new replicas start from the truth.
 * The KV write is compare-and-set on the epoch: two limiter replicas racing can
 * never put an older state over a newer one.
 */
export function createQuotaPublisher(bus: EventBus): QuotaPublisher {
  let kv: Promise<KvStore> | undefined;
  const bucket = () => (kv ??= bus.kv(KV_BUCKETS.quota).catch((err) => {
    kv = undefined;
    throw err;
  }));

  async function putIfNewer(key: string, data: Uint8Array, epoch: bigint) {
    const store = await bucket();
    for (let attempt = 0; attempt < 5; attempt++) {
      const current = await store.get(key);
      try {
        if (!current) {
          await store.create(key, data);
          return;
        }
        const stored = fromBinary(QuotaStateSchema, current.value);
        if (stored.epoch >= epoch) return;
        await store.update(key, data, current.revision);
        return;
      } catch (err) {
        if (!isKvConflictError(err)) throw err;
      }
    }
    throw new Error(`${KV_BUCKETS.quota}/${key}: gave up after 5 conflicting writes`);
  }

  return {
    async publish(change) {
      const event = create(QuotaEventSchema, {
        key: limitKeyToProto(change.key),
        deployment: { provider: change.provider, deployment: change.key.id },
        kind: EVENT_KIND[change.kind],
        limit: EVENT_LIMIT(change),
        untilUnixMs: BigInt(change.untilMs),
        epoch: BigInt(change.epoch),
        timeUnixMs: BigInt(change.timeMs),
        reason: change.reason,
      });
      const state = quotaStateToProto(change.key, change.state);
      await Promise.all([
        bus.publish(subjects.quota(change.provider, change.key.id), toBinary(QuotaEventSchema, event)),
        putIfNewer(deploymentKey(change.provider, change.key.id), toBinary(QuotaStateSchema, state), state.epoch),
      ]);
    },
  };
}
