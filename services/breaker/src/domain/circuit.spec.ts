import { ManualClock } from '@switchyard/util';
import {
  type BreakerPolicy,
  type CircuitRecord,
  type OutcomeErrorClass,
  type Step,
  effectiveState,
  failureRate,
  forceState,
  newCircuit,
  observe,
  outcomeKind,
  probeAllowed,
  recordOutcome,
} from './circuit';

/**
 * Step-by-step state machine tests in the style of resilience4j's
 * CircuitBreakerStateMachineTest: a manual clock, one outcome at a time, the
 * state asserted after each.
 */
const policy: BreakerPolicy = { consecutiveFailures: 5, openMs: 30_000, windowSize: 20 };
const T0 = 1_700_000_000_000;

function machine() {
  const clock = new ManualClock(T0);
  let record: CircuitRecord = newCircuit({ deployment: 'gpt4o-east', provider: 'openai', model: 'gpt-4o' }, clock.now());
  const transitions: Step['transition'][] = [];
  const apply = (step: Step) => {
    record = step.record;
    if (step.transition) transitions.push(step.transition);
    return step;
  };
  return {
    clock,
    transitions,
    get record() {
      return record;
    },
    state: () => effectiveState(record, clock.now()),
    fail: (cls: OutcomeErrorClass = 'OVERLOADED', latencyMs = 100) =>
      apply(recordOutcome(record, { errorClass: cls, latencyMs }, clock.now(), policy)),
    succeed: (latencyMs = 100) => apply(recordOutcome(record, { errorClass: undefined, latencyMs }, clock.now(), policy)),
    observe: () => apply(observe(record, clock.now())),
    force: (state: 'CLOSED' | 'OPEN' | 'HALF_OPEN' | undefined, release = false) =>
      apply(forceState(record, { state, release, reason: 'maintenance' }, clock.now(), policy)),
  };
}

describe('circuit state machine', () => {
  it('classifies only overloaded, server error, timeout and network as failures', () => {
    expect(outcomeKind(undefined)).toBe('success');
    for (const c of ['OVERLOADED', 'SERVER_ERROR', 'TIMEOUT', 'NETWORK'] as const) expect(outcomeKind(c)).toBe('failure');
    for (const c of ['RATE_LIMITED', 'QUOTA_EXHAUSTED', 'CONTEXT_LENGTH', 'CONTENT_FILTER', 'AUTH', 'INVALID_REQUEST', 'STREAM_INTERRUPTED'] as const)
      expect(outcomeKind(c)).toBe('neutral');
  });

  it('opens after 5 consecutive 503s, with exactly one transition', () => {
    const m = machine();
    for (let i = 1; i <= 4; i++) {
      expect(m.fail().transition).toBeUndefined();
      expect(m.state()).toBe('CLOSED');
      expect(m.record.consecutiveFailures).toBe(i);
    }
    const step = m.fail();
    expect(m.state()).toBe('OPEN');
    expect(step.transition).toMatchObject({ from: 'CLOSED', to: 'OPEN', reason: '5 consecutive failures', forced: false, epoch: 1 });
    expect(step.transition!.openUntil).toBe(T0 + 30_000);
    expect(step.transition!.failureRate).toBe(1);
    // Failures while OPEN change nothing about the state and produce no event.
    expect(m.fail().transition).toBeUndefined();
    expect(m.transitions).toHaveLength(1);
  });

  it('a success in between resets the consecutive count', () => {
    const m = machine();
    for (let i = 0; i < 4; i++) m.fail('SERVER_ERROR');
    m.succeed();
    expect(m.record.consecutiveFailures).toBe(0);
    for (let i = 0; i < 4; i++) m.fail('TIMEOUT');
    expect(m.state()).toBe('CLOSED');
    m.fail('NETWORK');
    expect(m.state()).toBe('OPEN');
  });

  it('client errors at 100 % never open the circuit and do not reset the count', () => {
    const m = machine();
    for (let i = 0; i < 50; i++) m.fail('INVALID_REQUEST');
    for (let i = 0; i < 50; i++) m.fail('RATE_LIMITED');
    expect(m.state()).toBe('CLOSED');
    expect(m.transitions).toHaveLength(0);
    expect(m.record.lastErrorClass).toBe('RATE_LIMITED');
    expect(failureRate(m.record)).toBe(0);
    for (let i = 0; i < 3; i++) m.fail();
    m.fail('AUTH');
    m.fail('CONTEXT_LENGTH');
    expect(m.record.consecutiveFailures).toBe(3);
  });

  it('is still OPEN at +29 s and reads HALF_OPEN at +30 s; the first observation reports it once', () => {
    const m = machine();
    for (let i = 0; i < 5; i++) m.fail();
    m.clock.advance(29_000);
    expect(m.state()).toBe('OPEN');
    expect(m.observe().transition).toBeUndefined();
    expect(probeAllowed(m.record, m.clock.now())).toBe(false);
    m.clock.advance(1_000);
    expect(m.state()).toBe('HALF_OPEN');
    expect(probeAllowed(m.record, m.clock.now())).toBe(true);
    expect(m.observe().transition).toMatchObject({ from: 'OPEN', to: 'HALF_OPEN', epoch: 2, reason: 'open interval elapsed' });
    expect(m.observe().transition).toBeUndefined();
    expect(m.record.state).toBe('HALF_OPEN');
  });

  it('probe success closes the circuit', () => {
    const m = machine();
    for (let i = 0; i < 5; i++) m.fail();
    m.clock.advance(30_000);
    m.observe();
    // Neutral outcomes decide nothing in HALF_OPEN.
    expect(m.fail('AUTH').transition).toBeUndefined();
    expect(m.succeed().transition).toMatchObject({ from: 'HALF_OPEN', to: 'CLOSED', reason: 'probe succeeded', epoch: 3 });
    expect(m.state()).toBe('CLOSED');
    expect(m.record.consecutiveFailures).toBe(0);
  });

  it('probe failure re-opens the circuit for another open interval', () => {
    const m = machine();
    for (let i = 0; i < 5; i++) m.fail();
    m.clock.advance(30_000);
    m.observe();
    const step = m.fail('TIMEOUT');
    expect(step.transition).toMatchObject({ from: 'HALF_OPEN', to: 'OPEN', reason: 'probe failed' });
    expect(step.transition!.openUntil).toBe(m.clock.now() + 30_000);
    expect(m.record.reopenCount).toBe(1);
    m.clock.advance(29_999);
    expect(m.state()).toBe('OPEN');
    m.clock.advance(1);
    expect(m.state()).toBe('HALF_OPEN');
  });

  it('an outcome that arrives after the open interval is both observation and decision: one transition', () => {
    const m = machine();
    for (let i = 0; i < 5; i++) m.fail();
    m.clock.advance(31_000);
    const step = m.succeed();
    expect(step.transition).toMatchObject({ from: 'OPEN', to: 'CLOSED', epoch: 3 });
    expect(m.transitions).toHaveLength(2);
  });

  it('a forced state holds against outcomes and the clock until released', () => {
    const m = machine();
    const step = m.force('OPEN');
    expect(step.transition).toMatchObject({ from: 'CLOSED', to: 'OPEN', forced: true, openUntil: 0 });
    for (let i = 0; i < 10; i++) m.succeed();
    m.clock.advance(3_600_000);
    expect(m.state()).toBe('OPEN');
    expect(m.observe().transition).toBeUndefined();
    // Release keeping the state: not a transition, but the epoch moves so replicas see forced=false.
    const epoch = m.record.epoch;
    const released = m.force(undefined, true);
    expect(released.transition).toBeUndefined();
    expect(m.record).toMatchObject({ forced: false, state: 'OPEN', epoch: epoch + 1, openUntil: m.clock.now() + 30_000 });
  });

  it('forcing CLOSED clears the failure history', () => {
    const m = machine();
    for (let i = 0; i < 5; i++) m.fail();
    const step = m.force('CLOSED');
    expect(step.transition).toMatchObject({ from: 'OPEN', to: 'CLOSED', forced: true, failureRate: 0 });
    expect(m.record).toMatchObject({ consecutiveFailures: 0, window: '', forced: true });
    for (let i = 0; i < 10; i++) m.fail();
    expect(m.state()).toBe('CLOSED');
  });

  it('tracks failure rate over the last window of counted outcomes and a latency EWMA', () => {
    const m = machine();
    m.succeed(100);
    m.succeed(200);
    expect(m.record.latencyEwmaMs).toBeCloseTo(120);
    m.fail('SERVER_ERROR', 0);
    m.fail('CONTENT_FILTER'); // neutral: not in the window
    expect(failureRate(m.record)).toBeCloseTo(1 / 3);
    for (let i = 0; i < 30; i++) m.succeed();
    expect(m.record.window).toHaveLength(20);
    expect(failureRate(m.record)).toBe(0);
  });
});
