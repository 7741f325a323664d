import { fromBinary } from '@bufbuild/protobuf';
import { BudgetEventSchema } from '@switchyard/contracts';
import { type EventBus, type Subscription, subjects } from '@switchyard/nats';
import type { ReplicaLogger } from './health-replica';

/**
 * Calls `onEvent(tenant)` for every budget threshold event (the budget
 * service's `switchyard.budget.<tenant>`): the budget leases of that tenant
 * end, so spend near a threshold is committed at once rather than within a lease.
 */
export async function watchBudgetEvents(bus: EventBus, logger: ReplicaLogger, onEvent: (tenant: string) => void): Promise<Subscription> {
  return bus.subscribe(subjects.all('budget'), (msg) => {
    try {
      onEvent(fromBinary(BudgetEventSchema, msg.data).tenant);
    } catch (err) {
      logger.warn({ subject: msg.subject, err: { message: (err as Error).message } }, 'undecodable budget event ignored');
    }
  });
}
