import { create, fromBinary } from '@bufbuild/protobuf';
import { AttemptOutcomeBatchSchema, AttemptOutcomeSchema, CircuitState, DeploymentHealthSchema, ErrorClass, type AttemptOutcome, type DeploymentHealth } from '@switchyard/contracts';
import { createMemoryEventBus, OUTCOMES_STREAM, type EventBus } from '@switchyard/nats';
import { createBackgroundTasks } from '../background-tasks';
import { createOutcomePublisher, ensureOutcomeStream } from './outcome-publisher';
import type { BreakerClient } from './peers';

const quiet = { warn() {} };

function outcome(eventId: string): AttemptOutcome {
  return create(AttemptOutcomeSchema, {
    eventId,
    requestId: 'req-1',
    deployment: { provider: 'openai', deployment: 'primary', model: 'gpt-4o-mini' },
    errorClass: ErrorClass.OVERLOADED,
    httpStatus: 503,
  });
}

function fakeBreaker(): { client: BreakerClient; reported: AttemptOutcome[] } {
  const reported: AttemptOutcome[] = [];
  const client = { report: async (req: { outcome?: AttemptOutcome }) => (reported.push(req.outcome!), {}) } as unknown as BreakerClient;
  return { client, reported };
}

describe('outcome publisher', () => {
  let bus: EventBus;
  beforeEach(() => {
    bus = createMemoryEventBus({ name: 'router-test' });
  });
  afterEach(() => bus.close());

  it('publishes durably on switchyard.outcome.<provider>.<deployment>', async () => {
    await ensureOutcomeStream(bus);
    const received: { subject: string; outcome: AttemptOutcome }[] = [];
    await bus.consume({ stream: OUTCOMES_STREAM, durable: 't', handler: (m) => void received.push({ subject: m.subject, outcome: fromBinary(AttemptOutcomeSchema, m.data) }) });
    const tasks = createBackgroundTasks(quiet);
    const breaker = fakeBreaker();
    createOutcomePublisher({ bus, breaker: breaker.client, tasks, logger: quiet }).publish(outcome('e1'));
    await tasks.drain();
    for (let i = 0; i < 50 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(received.map((r) => [r.subject, r.outcome.eventId])).toEqual([['switchyard.outcome.openai.primary', 'e1']]);
    expect(breaker.reported).toEqual([]);
  });

  it('reports to the breaker over gRPC when NATS is not connected', async () => {
    const tasks = createBackgroundTasks(quiet);
    const breaker = fakeBreaker();
    const down = { ...bus, status: () => 'reconnecting' as const, publishDurable: () => Promise.reject(new Error('must not be called')) } as EventBus;
    createOutcomePublisher({ bus: down, breaker: breaker.client, tasks, logger: quiet }).publish(outcome('e2'));
    await tasks.drain();
    expect(breaker.reported.map((o) => o.eventId)).toEqual(['e2']);
  });

  it('hands the health the breaker answered to the replica (how it learns transitions while NATS is down)', async () => {
    const tasks = createBackgroundTasks(quiet);
    const seen: DeploymentHealth[] = [];
    const health = create(DeploymentHealthSchema, { ref: { deployment: 'primary' }, state: CircuitState.OPEN, epoch: 3n });
    const client = { report: async () => ({ health }) } as unknown as BreakerClient;
    const down = { ...bus, status: () => 'reconnecting' as const } as EventBus;
    createOutcomePublisher({ bus: down, breaker: client, tasks, logger: quiet, onHealth: (h) => void seen.push(h) }).publish(outcome('e5'));
    await tasks.drain();
    expect(seen.map((h) => [h.ref?.deployment, h.state, h.epoch])).toEqual([['primary', CircuitState.OPEN, 3n]]);
  });

  it('falls back to the breaker when the durable publish fails (no stream, timeout)', async () => {
    const tasks = createBackgroundTasks(quiet);
    const breaker = fakeBreaker();
    const warnings: object[] = [];
    // No ensureOutcomeStream: publishDurable throws because no stream takes the subject.
    createOutcomePublisher({ bus, breaker: breaker.client, tasks, logger: { warn: (o) => warnings.push(o) } }).publish(outcome('e3'));
    await tasks.drain();
    expect(breaker.reported.map((o) => o.eventId)).toEqual(['e3']);
    expect(warnings).toHaveLength(1);
  });

  it('logs, never throws, when both ways fail', async () => {
    const warnings: string[] = [];
    const tasks = createBackgroundTasks({ warn: (_o, msg) => warnings.push(msg ?? '') });
    const client = { report: () => Promise.reject(new Error('breaker down')) } as unknown as BreakerClient;
    createOutcomePublisher({ bus, breaker: client, tasks, logger: quiet }).publish(outcome('e4'));
    await tasks.drain();
    expect(warnings).toEqual(['outcome publish failed']);
  });

  describe('batched (OUTCOME_BATCH_MS > 0)', () => {
    const batching = { windowMs: 600_000, maxSize: 8 };

    /** Counts the durable publishes (each is one JetStream message and one ack awaited). */
    function counting(inner: EventBus): { bus: EventBus; publishes: () => number } {
      let n = 0;
      const bus = { ...inner, publishDurable: (...args: Parameters<EventBus['publishDurable']>) => (n++, inner.publishDurable(...args)) } as EventBus;
      return { bus, publishes: () => n };
    }

    async function received(): Promise<Array<{ subject: string; eventIds: string[] }>> {
      await ensureOutcomeStream(bus);
      const out: Array<{ subject: string; eventIds: string[] }> = [];
      await bus.consume({
        stream: OUTCOMES_STREAM,
        durable: 't',
        handler: (m) => void out.push({ subject: m.subject, eventIds: fromBinary(AttemptOutcomeBatchSchema, m.data).outcomes.map((e) => e.outcome!.eventId) }),
      });
      return out;
    }

    it('sends the outcomes of one window as one durable message, a full batch at once', async () => {
      const messages = await received();
      const tasks = createBackgroundTasks(quiet);
      const counted = counting(bus);
      const local: string[] = [];
      const publisher = createOutcomePublisher({ bus: counted.bus, breaker: fakeBreaker().client, tasks, logger: quiet, batching, onOutcome: (o) => void local.push(o.eventId) });
      for (let i = 0; i < 20; i++) publisher.publish(outcome(`b${i}`));
      // The local breaker still sees every outcome at once.
      expect(local).toHaveLength(20);
      publisher.flush();
      await tasks.drain();
      for (let i = 0; i < 50 && messages.length < 3; i++) await new Promise((r) => setTimeout(r, 5));
      // 20 outcomes, batches of at most 8: two full ones left at once, the rest at the flush.
      expect(counted.publishes()).toBe(3);
      expect(messages.map((m) => m.subject)).toEqual(Array(3).fill('switchyard.outcome.batch'));
      expect(messages.flatMap((m) => m.eventIds)).toEqual(Array.from({ length: 20 }, (_, i) => `b${i}`));
    });

    it('keeps a batch open until its window or a flush: shutdown flushes it, then drains', async () => {
      const tasks = createBackgroundTasks(quiet);
      const counted = counting(bus);
      await ensureOutcomeStream(bus);
      const publisher = createOutcomePublisher({ bus: counted.bus, breaker: fakeBreaker().client, tasks, logger: quiet, batching });
      publisher.publish(outcome('w1'));
      publisher.publish(outcome('w2'));
      await new Promise((r) => setImmediate(() => setImmediate(r)));
      expect(counted.publishes()).toBe(0);
      expect(tasks.pending()).toBe(1);
      publisher.flush();
      await tasks.drain();
      expect(counted.publishes()).toBe(1);
    });

    it('reports every outcome of a batch to the breaker when the durable publish fails', async () => {
      const tasks = createBackgroundTasks(quiet);
      const breaker = fakeBreaker();
      const warnings: object[] = [];
      // No ensureOutcomeStream: publishDurable throws because no stream takes the subject.
      const publisher = createOutcomePublisher({ bus, breaker: breaker.client, tasks, logger: { warn: (o) => warnings.push(o) }, batching });
      publisher.publish(outcome('f1'));
      publisher.publish(outcome('f2'));
      publisher.flush();
      await tasks.drain();
      expect(breaker.reported.map((o) => o.eventId)).toEqual(['f1', 'f2']);
      expect(warnings).toHaveLength(1);
    });

    it('OUTCOME_BATCH_MS=0 publishes one message per outcome, as before', async () => {
      const messages: string[] = [];
      await ensureOutcomeStream(bus);
      await bus.consume({ stream: OUTCOMES_STREAM, durable: 'z', handler: (m) => void messages.push(m.subject) });
      const tasks = createBackgroundTasks(quiet);
      const publisher = createOutcomePublisher({ bus, breaker: fakeBreaker().client, tasks, logger: quiet, batching: { windowMs: 0, maxSize: 8 } });
      publisher.publish(outcome('z1'));
      publisher.publish(outcome('z2'));
      await tasks.drain();
      for (let i = 0; i < 50 && messages.length < 2; i++) await new Promise((r) => setTimeout(r, 5));
      expect(messages).toEqual(['switchyard.outcome.openai.primary', 'switchyard.outcome.openai.primary']);
    });
  });
});
