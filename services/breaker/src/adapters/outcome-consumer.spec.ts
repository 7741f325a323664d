import { randomBytes } from 'node:crypto';
import { create, toBinary } from '@bufbuild/protobuf';
import { SpanKind } from '@opentelemetry/api';
import { AttemptOutcomeBatchSchema, AttemptOutcomeSchema, ErrorClass, type AttemptOutcome } from '@switchyard/contracts';
import { createMemoryEventBus, subjects, type Consumer, type EventBus } from '@switchyard/nats';
import { startInMemoryTracing, type InMemoryTracing } from '@switchyard/testing';
import { ManualClock } from '@switchyard/util';
import type { Transition } from '../domain/circuit';
import type { HealthStore } from '../domain/health-store';
import { createHealthTracker } from '../domain/health-tracker';
import { createMemoryHealthStore } from './memory-health-store';
import { startOutcomeConsumer } from './outcome-consumer';

const quiet = { info() {}, warn() {}, error() {} };

function outcome(deployment: string, eventId: string, errorClass = ErrorClass.SERVER_ERROR): AttemptOutcome {
  return create(AttemptOutcomeSchema, { eventId, deployment: { provider: 'openai', deployment, model: 'm' }, errorClass, latencyMs: 30 });
}

const traceparent = () => ({ traceId: randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex') });

describe('outcome consumer: batches and single outcomes', () => {
  let tracing: InMemoryTracing;
  let bus: EventBus;
  let consumer: Consumer;
  let store: HealthStore;
  let transitions: Transition[];
  let batchCalls: string[];
  let singleCalls: number;
  beforeAll(() => {
    tracing = startInMemoryTracing();
  });
  afterAll(() => tracing.shutdown());
  beforeEach(async () => {
    tracing.reset();
    bus = createMemoryEventBus({ name: 'consumer-test' });
    const memory = createMemoryHealthStore({ clock: new ManualClock(1_700_000_000_000) });
    batchCalls = [];
    singleCalls = 0;
    store = {
      ...memory,
      recordBatch: (id, outcomes) => (batchCalls.push(id.deployment), memory.recordBatch(id, outcomes)),
      record: (id, o) => (singleCalls++, memory.record(id, o)),
    };
    transitions = [];
    const tracker = createHealthTracker({
      store,
      publisher: { transition: async (step) => void transitions.push(step.transition!), state: async () => {} },
      logger: quiet,
    });
    consumer = await startOutcomeConsumer({ bus, tracker, logger: quiet });
  });
  afterEach(async () => {
    await consumer.stop();
    await bus.close();
  });

  const settle = async (done: () => boolean) => {
    for (let i = 0; i < 200 && !done(); i++) await new Promise((r) => setTimeout(r, 5));
  };

  it('applies a batch in one store call per deployment, with the state and transitions of one message per outcome', async () => {
    for (let i = 0; i < 6; i++) await bus.publishDurable(subjects.outcome('openai', 'alone'), toBinary(AttemptOutcomeSchema, outcome('alone', `s${i}`)));
    await settle(() => singleCalls === 6);

    const contexts = Array.from({ length: 7 }, traceparent);
    const entries = [
      ...Array.from({ length: 6 }, (_, i) => outcome('batched', `b${i}`)),
      outcome('other', 'o1', ErrorClass.UNSPECIFIED),
    ].map((o, i) => ({ outcome: o, traceContext: { traceparent: `00-${contexts[i]!.traceId}-${contexts[i]!.spanId}-01` } as Record<string, string> }));
    // An invalid outcome is dropped alone; the rest of its batch still counts.
    entries.splice(3, 0, { outcome: outcome('bad name!', 'x'), traceContext: {} });
    await bus.publishDurable(subjects.outcomeBatch(), toBinary(AttemptOutcomeBatchSchema, create(AttemptOutcomeBatchSchema, { outcomes: entries })));
    const processSpans = () =>
      tracing.spans().filter((s) => s.kind === SpanKind.CONSUMER && /^switchyard\.outcome\.openai\.(batched|other) process$/.test(s.name));
    await settle(() => processSpans().length >= 7);

    expect(batchCalls.sort()).toEqual(['batched', 'other']);
    expect(singleCalls).toBe(6);
    expect(transitions.map((t) => [t.deployment, t.from, t.to])).toEqual([
      ['alone', 'CLOSED', 'OPEN'],
      ['batched', 'CLOSED', 'OPEN'],
    ]);
    const alone = (await store.observe('alone'))!.record;
    const batched = (await store.observe('batched'))!.record;
    expect({ ...batched, deployment: 'x' }).toEqual({ ...alone, deployment: 'x' });
    expect((await store.observe('other'))!.record.state).toBe('CLOSED');

    // Each outcome is processed in a span of its own call's trace, child of the span that carried it.
    const processed = processSpans().map((s) => [s.spanContext().traceId, s.parentSpanContext?.spanId]);
    expect(processed).toHaveLength(7);
    expect(processed).toEqual(expect.arrayContaining(contexts.map((c) => [c.traceId, c.spanId])));
  });

  it('applies the outcomes of untraced calls with the rest, in no span of their own', async () => {
    const traced = traceparent();
    const entries = ['u1', 'u2', 't1', 'u3'].map((id) => ({
      outcome: outcome('mixed', id),
      traceContext: (id === 't1' ? { traceparent: `00-${traced.traceId}-${traced.spanId}-01` } : {}) as Record<string, string>,
    }));
    await bus.publishDurable(subjects.outcomeBatch(), toBinary(AttemptOutcomeBatchSchema, create(AttemptOutcomeBatchSchema, { outcomes: entries })));
    await settle(() => batchCalls.length === 1);
    await settle(() => tracing.spans().some((s) => s.name === 'switchyard.outcome.openai.mixed process'));

    expect(batchCalls).toEqual(['mixed']);
    expect((await store.observe('mixed'))!.record.consecutiveFailures).toBe(4);
    const processed = tracing.spans().filter((s) => s.name === 'switchyard.outcome.openai.mixed process');
    expect(processed.map((s) => s.spanContext().traceId)).toEqual([traced.traceId]);
  });

  it('a redelivered batch counts nothing twice', async () => {
    const batch = create(AttemptOutcomeBatchSchema, { outcomes: ['r1', 'r2', 'r3'].map((id) => ({ outcome: outcome('redo', id), traceContext: {} })) });
    await bus.publishDurable(subjects.outcomeBatch(), toBinary(AttemptOutcomeBatchSchema, batch));
    await bus.publishDurable(subjects.outcomeBatch(), toBinary(AttemptOutcomeBatchSchema, batch));
    await settle(() => batchCalls.length === 2);
    expect((await store.observe('redo'))!.record.consecutiveFailures).toBe(3);
  });
});
