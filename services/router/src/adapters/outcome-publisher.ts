import { toBinary } from '@bufbuild/protobuf';
import { AttemptOutcomeSchema, type AttemptOutcome, type DeploymentHealth } from '@switchyard/contracts';
import { OUTCOMES_STREAM, OUTCOMES_SUBJECTS, subjects, type EventBus } from '@switchyard/nats';
import type { BackgroundTasks } from '../background-tasks';
import type { BreakerClient } from './peers';

export interface OutcomePublisher {
  /** Fire-and-forget: never awaited on the response path. */
  publish(outcome: AttemptOutcome): void;
  /**
   * False while the last outcome reached neither NATS nor the breaker's Report
   * RPC: the shared health view is out of reach and the local breaker decides.
   */
  sharedHealthReachable(): boolean;
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
  /** Every outcome, as it is published (feeds the local breaker). */
  onOutcome?: (outcome: AttemptOutcome) => void;
}): OutcomePublisher {
  const { bus, breaker, tasks, logger, onHealth, onOutcome } = options;
  let reachable = true;
  const report = async (outcome: AttemptOutcome) => {
    try {
      const res = await breaker.report({ outcome });
      reachable = true;
      if (res.health) onHealth?.(res.health);
    } catch (err) {
      reachable = bus.status() === 'connected';
      throw err;
    }
  };
  return {
    sharedHealthReachable: () => reachable,
    publish(outcome) {
      onOutcome?.(outcome);
      const ref = outcome.deployment;
      const fields = { event_id: outcome.eventId, deployment: ref?.deployment, request_id: outcome.requestId };
      tasks.run('outcome publish', fields, async () => {
        if (bus.status() !== 'connected') return report(outcome);
        try {
          await bus.publishDurable(subjects.outcome(ref?.provider ?? 'unknown', ref?.deployment ?? 'unknown'), toBinary(AttemptOutcomeSchema, outcome), {
            msgId: outcome.eventId,
          });
          reachable = true;
        } catch (err) {
          logger.warn({ ...fields, err: { message: (err as Error).message } }, 'durable outcome publish failed; reporting to the breaker over gRPC');
          await report(outcome);
        }
      });
    },
  };
}
