import { create, fromBinary } from '@bufbuild/protobuf';
import { AttemptOutcomeSchema, CircuitState, DeploymentHealthSchema, ErrorClass, type AttemptOutcome, type DeploymentHealth } from '@switchyard/contracts';
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
});
