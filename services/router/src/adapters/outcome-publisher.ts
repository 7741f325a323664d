import { randomUUID } from 'node:crypto';
import { create, toBinary } from '@bufbuild/protobuf';
import { context, ROOT_CONTEXT } from '@opentelemetry/api';
import {
  AttemptOutcomeBatchSchema,
  AttemptOutcomeSchema,
  BatchedOutcomeSchema,
  type AttemptOutcome,
  type BatchedOutcome,
  type DeploymentHealth,
} from '@switchyard/contracts';
import { OUTCOMES_STREAM, OUTCOMES_SUBJECTS, subjects, type EventBus } from '@switchyard/nats';
import { withProducerSpan } from '@switchyard/telemetry';
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
  /** Sends the batch still waiting for its window now (graceful shutdown: before the background tasks drain). */
  flush(): void;
}

export interface OutcomeBatching {
  /** How long the first outcome of a batch waits for others; 0 = one message per outcome. */
  windowMs: number;
  /** A batch this full leaves at once. */
  maxSize: number;
}

export interface OutcomeLogger {
  warn(obj: object, msg?: string): void;
}

/** The subject a lone publish of `outcome` would use (names its publish span); never throws on the response path. */
function spanSubject(outcome: AttemptOutcome): string {
  try {
    return subjects.outcome(outcome.deployment?.provider ?? 'unknown', outcome.deployment?.deployment ?? 'unknown');
  } catch {
    return subjects.outcomeBatch();
  }
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
 *
 * With `batching`, outcomes wait up to `windowMs` (or until `maxSize`) and
 * leave as one AttemptOutcomeBatch on `switchyard.outcome.batch`: one message
 * and one ack for all of them instead of one each, the breaker applying them
 * per deployment in one Redis script. Each keeps its call's trace context.
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
  /** Default: none, one durable message (and ack) per outcome. */
  batching?: OutcomeBatching;
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
  const publishOne = async (outcome: AttemptOutcome, fields: object) => {
    if (bus.status() !== 'connected') return report(outcome);
    const ref = outcome.deployment;
    try {
      await bus.publishDurable(subjects.outcome(ref?.provider ?? 'unknown', ref?.deployment ?? 'unknown'), toBinary(AttemptOutcomeSchema, outcome), {
        msgId: outcome.eventId,
      });
      reachable = true;
    } catch (err) {
      logger.warn({ ...fields, err: { message: (err as Error).message } }, 'durable outcome publish failed; reporting to the breaker over gRPC');
      await report(outcome);
    }
  };

  const fieldsOf = (outcome: AttemptOutcome) => ({ event_id: outcome.eventId, deployment: outcome.deployment?.deployment, request_id: outcome.requestId });
  const batching = options.batching && options.batching.windowMs > 0 ? options.batching : undefined;
  if (!batching) {
    return {
      sharedHealthReachable: () => reachable,
      flush() {},
      publish(outcome) {
        onOutcome?.(outcome);
        const fields = fieldsOf(outcome);
        tasks.run('outcome publish', fields, () => publishOne(outcome, fields));
      },
    };
  }

  /**
   * One durable message for the whole batch (msgId = batch id, so a retried
   * publish is stored once). If it fails, every outcome goes to the Report RPC
   * as a lone publish would; the breaker's event_id de-duplication counts an
   * outcome that made it both ways once.
   */
  const publishBatch = async (entries: BatchedOutcome[]) => {
    const fields = { outcomes: entries.length, first_event_id: entries[0]?.outcome?.eventId };
    if (bus.status() === 'connected') {
      try {
        await bus.publishDurable(subjects.outcomeBatch(), toBinary(AttemptOutcomeBatchSchema, create(AttemptOutcomeBatchSchema, { outcomes: entries })), {
          msgId: randomUUID(),
        });
        reachable = true;
        return;
      } catch (err) {
        logger.warn({ ...fields, err: { message: (err as Error).message } }, 'durable outcome batch publish failed; reporting each outcome to the breaker over gRPC');
      }
    }
    const failed = (await Promise.allSettled(entries.map((e) => report(e.outcome!)))).filter((r) => r.status === 'rejected');
    if (failed.length > 0) throw new Error(`${failed.length} of ${entries.length} outcomes reached neither NATS nor the breaker: ${String((failed[0] as PromiseRejectedResult).reason?.message)}`);
  };

  // The batch being filled: a background task (so shutdown's drain waits for it) that sends it once closed.
  let open: { entries: BatchedOutcome[]; close: () => void; timer: NodeJS.Timeout } | undefined;
  const openBatch = () => {
    const entries: BatchedOutcome[] = [];
    let close!: () => void;
    const closed = new Promise<void>((resolve) => (close = resolve));
    tasks.run('outcome batch publish', {}, async () => {
      await closed;
      // Not in the trace of the call that happened to open the batch: each outcome carries its own.
      await context.with(ROOT_CONTEXT, () => publishBatch(entries));
    });
    const batch = { entries, close, timer: setTimeout(() => flush(), batching.windowMs) };
    return batch;
  };
  const flush = () => {
    if (!open) return;
    clearTimeout(open.timer);
    open.close();
    open = undefined;
  };

  return {
    sharedHealthReachable: () => reachable,
    flush,
    publish(outcome) {
      onOutcome?.(outcome);
      const traceContext: Record<string, string> = {};
      // The call's publish span, as a lone publish has it: the breaker's CONSUMER span of this outcome is its child.
      void withProducerSpan(spanSubject(outcome), (headers) => void Object.assign(traceContext, headers), {
        attributes: { 'switchyard.outcome.batched': true },
      });
      open ??= openBatch();
      open.entries.push(create(BatchedOutcomeSchema, { outcome, traceContext }));
      if (open.entries.length >= batching.maxSize) flush();
    },
  };
}
