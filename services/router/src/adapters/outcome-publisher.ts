import { toBinary } from '@bufbuild/protobuf';
import { AttemptOutcomeSchema, type AttemptOutcome, type DeploymentHealth } from '@switchyard/contracts';
import { OUTCOMES_STREAM, OUTCOMES_SUBJECTS, subjects, type EventBus } from '@switchyard/nats';
import type { BackgroundTasks } from '../background-tasks';
import type { BreakerClient } from './peers';

export interface OutcomePublisher {
  /** Fire-and-forget: never awaited on the response path. */
  publish(outcome: AttemptOutcome): void;
}

export interface OutcomeLogger {
  warn(obj: object, msg?: string): void;
}

/** Makes sure the outcomes stream exists (idempotent; the breaker may create it first). */
export async function ensureOutcomeStream(bus: EventBus): Promise<void> {
  await bus.ensureStream({ name: OUTCOMES_STREAM, subjects: [OUTCOMES_SUBJECTS] });
}

/**
 * Publishes each attempt's outcome durably on `switchyard.outcome.<provider>.<deployment>`
 * (msgId = event id, so a retried publish is stored once). When NATS is not
 * connected, or the durable publish fails, the outcome goes to the breaker's
 * Report RPC instead (DESIGN.md "When our own dependencies fail"); the breaker
 * de-duplicates by event_id, so an outcome that made it both ways counts once.
 */
export function createOutcomePublisher(options: {
  bus: EventBus;
  breaker: BreakerClient;
  tasks: BackgroundTasks;
  logger: OutcomeLogger;
  /** Receives the breaker's answer to a Report: while NATS is down it is how this replica learns transitions. */
  onHealth?: (health: DeploymentHealth) => void;
}): OutcomePublisher {
  const { bus, breaker, tasks, logger, onHealth } = options;
  const report = async (outcome: AttemptOutcome) => {
    const res = await breaker.report({ outcome });
    if (res.health) onHealth?.(res.health);
  };
  return {
    publish(outcome) {
      const ref = outcome.deployment;
      const fields = { event_id: outcome.eventId, deployment: ref?.deployment, request_id: outcome.requestId };
      tasks.run('outcome publish', fields, async () => {
        if (bus.status() !== 'connected') return report(outcome);
        try {
          await bus.publishDurable(subjects.outcome(ref?.provider ?? 'unknown', ref?.deployment ?? 'unknown'), toBinary(AttemptOutcomeSchema, outcome), {
            msgId: outcome.eventId,
          });
        } catch (err) {
          logger.warn({ ...fields, err: { message: (err as Error).message } }, 'durable outcome publish failed; reporting to the breaker over gRPC');
          await report(outcome);
        }
      });
    },
  };
}
