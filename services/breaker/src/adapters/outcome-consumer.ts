import { fromBinary } from '@bufbuild/protobuf';
import { AttemptOutcomeSchema } from '@switchyard/contracts';
import { type Consumer, type EventBus, OUTCOMES_STREAM, OUTCOMES_SUBJECTS } from '@switchyard/nats';
import { isFieldError } from '@switchyard/util';
import type { HealthTracker, TrackerLogger } from '../domain/health-tracker';
import { parseOutcome } from './outcome-proto';

/** Durable consumer name shared by every breaker replica: JetStream hands each outcome to one of them. */
export const OUTCOME_CONSUMER = 'breaker';

/**
 * Feeds AttemptOutcome events from the SWITCHYARD_OUTCOMES stream into the
 * tracker. The bus runs each handler inside its CONSUMER span (parented by the
 * router's publish span), so the store call and any health event are in the
 * router's trace. Malformed messages are logged and acked (redelivery cannot
 * fix them); store failures throw, so the bus naks and JetStream redelivers —
 * the event_id de-duplication makes that harmless.
 */
export async function startOutcomeConsumer(options: {
  bus: EventBus;
  tracker: HealthTracker;
  logger: TrackerLogger;
  /** Redelivery delay of an outcome taken by a replica that died before acking it. */
  ackWaitMs?: number;
}): Promise<Consumer> {
  const { bus, tracker, logger } = options;
  await bus.ensureStream({ name: OUTCOMES_STREAM, subjects: [OUTCOMES_SUBJECTS] });
  return bus.consume({
    stream: OUTCOMES_STREAM,
    durable: OUTCOME_CONSUMER,
    ackWaitMs: options.ackWaitMs,
    async handler(msg) {
      let parsed: ReturnType<typeof parseOutcome>;
      try {
        parsed = parseOutcome(fromBinary(AttemptOutcomeSchema, msg.data), 'AttemptOutcome');
      } catch (err) {
        logger.warn(
          { err: { message: (err as Error).message }, subject: msg.subject, seq: msg.seq, malformed: true },
          isFieldError(err) ? 'dropping invalid outcome event' : 'dropping undecodable outcome event',
        );
        return;
      }
      await tracker.report(parsed.id, parsed.input);
    },
  });
}
