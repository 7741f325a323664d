import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { DeploymentHealthSchema, HealthTransitionSchema } from '@switchyard/contracts';
import { type EventBus, type KvStore, isKvConflictError, subjects } from '@switchyard/nats';
import type { HealthStore, StoreStep } from '../domain/health-store';
import type { HealthPublisher } from '../domain/health-tracker';
import { toDeploymentHealth, toHealthTransition } from './proto-mapping';

export interface PublisherLogger {
  warn(obj: object, msg?: string): void;
}

/**
 * KV value format: the binary DeploymentHealth (events.v1) of the deployment,
 * key = deployment id. Writes are compare-and-set on the KV revision and skip
 * when the bucket already holds an epoch at least as new, so two replicas
 * publishing consecutive transitions out of order never leave the older state
 * in the bucket.
 */
export function createHealthPublisher(options: {
  bus: EventBus;
  kv: KvStore;
  logger: PublisherLogger;
  /** The deployment's slow-call threshold, so the KV value carries `degraded` (0 / absent = never). */
  slowCallMs?: (deployment: string) => number;
  /** The store's HealthStore.raiseEpoch: lets a store that lost its records (and counts epochs from 0 again) be heard. */
  raiseEpoch?: HealthStore['raiseEpoch'];
}): HealthPublisher {
  const { bus, kv, logger, raiseEpoch } = options;
  const slowCallMs = options.slowCallMs ?? (() => 0);

  async function putNewest(first: StoreStep): Promise<void> {
    let step = first;
    let health = toDeploymentHealth(step.record, step.now, slowCallMs(step.record.deployment));
    const key = step.record.deployment;
    let bytes = toBinary(DeploymentHealthSchema, health);
    for (let attempt = 0; attempt < 10; attempt++) {
      const current = await kv.get(key);
      try {
        if (!current || current.value.length === 0) {
          await kv.create(key, bytes);
          return;
        }
        let held = -1n;
        try {
          held = fromBinary(DeploymentHealthSchema, current.value).epoch;
        } catch {
          // Unreadable value: overwrite it.
        }
        if (held >= health.epoch) {
          // Usually a newer state is already there. But when the store itself is
          // behind the bucket (its records were lost), every state it makes would
          // be ignored by consumers until its epochs caught up: lift its epoch
          // above the bucket's and publish the store's state as the newest.
          const lifted = held > health.epoch ? await raiseEpoch?.(key, Number(held)) : undefined;
          if (!lifted || BigInt(lifted.record.epoch) <= held) return;
          logger.warn({ deployment: key, held: String(held), epoch: lifted.record.epoch }, 'breaker store was behind the published health (its records were lost): epoch lifted');
          step = lifted;
          health = toDeploymentHealth(step.record, step.now, slowCallMs(key));
          bytes = toBinary(DeploymentHealthSchema, health);
        }
        await kv.update(key, bytes, current.revision);
        return;
      } catch (err) {
        if (!isKvConflictError(err)) throw err;
      }
    }
    logger.warn({ deployment: key, epoch: String(health.epoch) }, 'kv health write lost the race 10 times; a newer writer holds the key');
  }

  return {
    async transition(step) {
      if (!step.transition) return;
      const event = toHealthTransition(step.record, step.transition);
      // Event first: subscribers react to it; the KV write is the catch-up path for
      // new replicas, so it is attempted even when the publish failed.
      const results = await Promise.allSettled([
        bus.publish(subjects.health(step.record.provider, step.record.deployment), toBinary(HealthTransitionSchema, event)),
      ]);
      results.push(...(await Promise.allSettled([putNewest(step)])));
      const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed.length > 0) throw new AggregateError(failed.map((f) => f.reason as unknown), `health ${step.record.deployment}: ${failed.length} of 2 writes failed`);
    },
    state: putNewest,
  };
}
