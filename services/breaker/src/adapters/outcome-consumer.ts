import { fromBinary } from '@bufbuild/protobuf';
import { AttemptOutcomeBatchSchema, AttemptOutcomeSchema, type BatchedOutcome } from '@switchyard/contracts';
import { type Consumer, type DurableMessage, type EventBus, OUTCOMES_STREAM, OUTCOMES_SUBJECTS, subjects } from '@switchyard/nats';
import { withConsumerSpan } from '@switchyard/telemetry';
import { isFieldError } from '@switchyard/util';
import type { DeploymentIdentity, OutcomeInput } from '../domain/circuit';
import type { HealthTracker, TrackerLogger } from '../domain/health-tracker';
import { parseOutcome } from './outcome-proto';

/** Durable consumer name shared by every breaker replica: JetStream hands each outcome to one of them. */
export const OUTCOME_CONSUMER = 'breaker';

const BATCH_SUBJECT = subjects.outcomeBatch();

/**
 * Feeds AttemptOutcome events from the SWITCHYARD_OUTCOMES stream into the
 * tracker: single outcomes on `switchyard.outcome.<provider>.<deployment>`
 * (routers with OUTCOME_BATCH_MS=0, or older ones during a rolling upgrade)
 * and batches on `switchyard.outcome.batch`. The bus runs each handler inside
 * its CONSUMER span (parented by the router's publish span), so the store call
 * and any health event are in the router's trace; each outcome of a batch gets
 * its own CONSUMER span parented by its own call's trace context. Malformed
 * messages (or outcomes of a batch) are logged and acked (redelivery cannot
 * fix them); store failures throw, so the bus naks and JetStream redelivers —
 * the event_id de-duplication makes that harmless, for a batch too.
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
  const dropped = (msg: DurableMessage, err: unknown, index?: number) =>
    logger.warn(
      { err: { message: (err as Error).message }, subject: msg.subject, seq: msg.seq, ...(index !== undefined ? { index } : {}), malformed: true },
      isFieldError(err) ? 'dropping invalid outcome event' : 'dropping undecodable outcome event',
    );
  return bus.consume({
    stream: OUTCOMES_STREAM,
    durable: OUTCOME_CONSUMER,
    ackWaitMs: options.ackWaitMs,
    async handler(msg) {
      if (msg.subject === BATCH_SUBJECT) return applyBatch(msg);
      let parsed: ReturnType<typeof parseOutcome>;
      try {
        parsed = parseOutcome(fromBinary(AttemptOutcomeSchema, msg.data), 'AttemptOutcome');
      } catch (err) {
        dropped(msg, err);
        return;
      }
      await tracker.report(parsed.id, parsed.input);
    },
  });

  async function applyBatch(msg: DurableMessage): Promise<void> {
    let entries: BatchedOutcome[];
    try {
      entries = fromBinary(AttemptOutcomeBatchSchema, msg.data).outcomes;
    } catch (err) {
      dropped(msg, err);
      return;
    }
    // Per deployment, in the order published: one store call each, deployments in parallel.
    const groups = new Map<string, { id: DeploymentIdentity; inputs: Array<OutcomeInput & { eventId?: string }>; entries: BatchedOutcome[] }>();
    entries.forEach((entry, index) => {
      let parsed: ReturnType<typeof parseOutcome>;
      try {
        parsed = parseOutcome(entry.outcome, `AttemptOutcomeBatch.outcomes[${index}].outcome`);
      } catch (err) {
        dropped(msg, err, index);
        return;
      }
      const group = groups.get(parsed.id.deployment) ?? { id: parsed.id, inputs: [], entries: [] };
      groups.set(parsed.id.deployment, group);
      group.inputs.push(parsed.input);
      group.entries.push(entry);
    });
    await Promise.all(
      [...groups.values()].map((group) => {
        // Every outcome's span is open while its group's one store call runs (started from the first's span).
        let applied: Promise<unknown> | undefined;
        const apply = () => (applied ??= tracker.reportBatch(group.id, group.inputs));
        return Promise.all(
          group.entries.map((entry) =>
            // An outcome of an untraced call (its router exports no spans) would only
            // start an unsampled root span here: skip the span and its context work.
            entry.traceContext.traceparent === undefined
              ? apply()
              : withConsumerSpan(
                  subjects.outcome(group.id.provider, group.id.deployment),
                  (key) => entry.traceContext[key],
                  apply,
                  { attributes: { 'messaging.batch.message_count': group.entries.length } },
                ),
          ),
        );
      }),
    );
  }
}
