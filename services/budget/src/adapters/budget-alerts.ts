import { create, toBinary } from '@bufbuild/protobuf';
import { BudgetEventSchema } from '@switchyard/contracts';
import { type EventBus, subjects } from '@switchyard/nats';
import type { AlertPublisher } from '../domain/budget';
import { capMessage } from './budget-proto';

/** Threshold alerts as BudgetEvents on `switchyard.budget.<tenant>`. */
export function createBudgetAlerts(bus: EventBus): AlertPublisher {
  return {
    publish(tenant, c) {
      const event = create(BudgetEventSchema, {
        tenant,
        cap: capMessage(tenant, c.cap),
        thresholdPercent: c.thresholdPercent,
        spentMicros: BigInt(c.spentMicros),
        limitMicros: BigInt(c.cap.limitMicros),
        periodStartUnixMs: BigInt(c.periodStartMs),
        epoch: BigInt(c.epoch),
        timeUnixMs: BigInt(c.atMs),
      });
      return bus.publish(subjects.budget(tenant), toBinary(BudgetEventSchema, event));
    },
  };
}
