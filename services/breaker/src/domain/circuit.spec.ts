import { ManualClock } from '@switchyard/util';
import {
  type BreakerPolicy,
  type CircuitRecord,
  type OutcomeErrorClass,
  type Step,
  DEFAULT_POLICY,
  openDuration,
  p95LatencyMs,
  windowStats,
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
const policy: BreakerPolicy = DEFAULT_POLICY;
const T0 = 1_700_000_000_000;

function machine(p: BreakerPolicy = policy) {
  const clock = new ManualClock(T0);
  let record: CircuitRecord = newCircuit({ deployment: 'gpt4o-east', provider: 'openai', model: 'gpt-4o' }, clock.now());
  const transitions: Step['transition'][] = [];
  const apply = (step: Step) => {
    record = step.record;
    if (step.observed) transitions.push(step.observed);
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
      apply(recordOutcome(record, { errorClass: cls, latencyMs }, clock.now(), p)),
    succeed: (latencyMs = 100) => apply(recordOutcome(record, { errorClass: undefined, latencyMs }, clock.now(), p)),
    observe: () => apply(observe(record, clock.now(), p)),
    force: (state: 'CLOSED' | 'OPEN' | 'HALF_OPEN' | undefined, release = false) =>
      apply(forceState(record, { state, release, reason: 'maintenance' }, clock.now(), p)),
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

  it('probe failure re-opens the circuit for a doubled open interval', () => {
    const m = machine();
    for (let i = 0; i < 5; i++) m.fail();
    m.clock.advance(30_000);
    m.observe();
    const step = m.fail('TIMEOUT');
    expect(step.transition).toMatchObject({ from: 'HALF_OPEN', to: 'OPEN', reason: 'probe failed' });
    expect(step.transition!.openUntil).toBe(m.clock.now() + 60_000);
    expect(m.record.reopenCount).toBe(1);
    m.clock.advance(59_999);
    expect(m.state()).toBe('OPEN');
    m.clock.advance(1);
    expect(m.state()).toBe('HALF_OPEN');
  });

  it('an outcome that arrives after the open interval is both observation and decision: two transitions, one epoch each', () => {
    const m = machine();
    for (let i = 0; i < 5; i++) m.fail();
    m.clock.advance(31_000);
    const step = m.succeed();
    expect(step.observed).toMatchObject({ from: 'OPEN', to: 'HALF_OPEN', epoch: 2 });
    expect(step.transition).toMatchObject({ from: 'HALF_OPEN', to: 'CLOSED', epoch: 3 });
    expect(m.transitions.map((t) => t!.epoch)).toEqual([1, 2, 3]);
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
    expect(windowStats(m.record)).toEqual({ calls: 3, failures: 1, slow: 0 });
    // The failure slides out of the 60 s window.
    m.clock.advance(59_000);
    m.succeed();
    expect(windowStats(m.record).calls).toBe(4);
    m.clock.advance(1_000);
    m.succeed();
    expect(windowStats(m.record)).toEqual({ calls: 2, failures: 0, slow: 0 });
    expect(failureRate(m.record)).toBe(0);
  });

  it('estimates p95 latency from the EWMA mean and variance', () => {
    const m = machine();
    for (let i = 0; i < 200; i++) m.succeed(i % 10 === 0 ? 1_000 : 100);
    expect(m.record.latencyEwmaMs).toBeGreaterThan(100);
    expect(m.record.latencyEwmaMs).toBeLessThan(400);
    // One slow call in ten: the p95 estimate sits well above the mean.
    expect(p95LatencyMs(m.record)).toBeGreaterThan(m.record.latencyEwmaMs + 100);
    const steady = machine();
    for (let i = 0; i < 50; i++) steady.succeed(100);
    expect(p95LatencyMs(steady.record)).toBeCloseTo(100, 6);
  });
});

/**
 * resilience4j-style tables: each row a sequence of outcomes under one policy,
 * the state after each step. F = breaker failure, S = success, N = neutral
 * (client error), +Ns = advance the clock.
 */
describe('circuit state machine tables', () => {
  type Row = { name: string; policy: Partial<BreakerPolicy>; steps: string; states: string };
  const rows: Row[] = [
    { name: '3 of 5 failures (60 %) open at the 5th call with minimum 5', policy: { minimumCalls: 5, consecutiveFailures: 100 }, steps: 'F S F S F', states: 'C C C C O' },
    { name: '3 of 5 failures do not open below a minimum of 6', policy: { minimumCalls: 6, consecutiveFailures: 100 }, steps: 'F S F S F', states: 'C C C C C' },
    { name: '60 % reached at the minimum (6 calls) opens', policy: { minimumCalls: 6, consecutiveFailures: 100 }, steps: 'F S F S F F', states: 'C C C C C O' },
    { name: '19 failures below a minimum of 20 never open; the 20th does', policy: { minimumCalls: 20, consecutiveFailures: 100 }, steps: `${'F '.repeat(19)}F`, states: `${'C '.repeat(19)}O` },
    { name: '49 % over 100 calls stays closed', policy: { minimumCalls: 20, consecutiveFailures: 100 }, steps: `${'S '.repeat(51)}${'F '.repeat(49)}`.trim(), states: 'C '.repeat(100).trim() },
    { name: 'client errors at 100 % never open', policy: { minimumCalls: 1 }, steps: 'N '.repeat(40).trim(), states: 'C '.repeat(40).trim() },
    { name: 'still OPEN at +29 s, HALF_OPEN at +30 s', policy: {}, steps: 'F F F F F +29s +1s', states: 'C C C C O O H' },
    { name: 'one probe: success closes', policy: { halfOpenProbes: 1 }, steps: 'F F F F F +30s S', states: 'C C C C O H C' },
    { name: 'three probes: closes after the third success', policy: { halfOpenProbes: 3 }, steps: 'F F F F F +30s S S S', states: 'C C C C O H H H C' },
    { name: 'three probes: any failure re-opens', policy: { halfOpenProbes: 3 }, steps: 'F F F F F +30s S S F', states: 'C C C C O H H H O' },
    { name: 'escalation: re-open lasts 60 s, then 120 s', policy: {}, steps: 'F F F F F +30s F +59s +1s F +119s +1s', states: 'C C C C O H O O H O O H' },
  ];

  it.each(rows)('$name', ({ policy: p, steps, states }) => {
    const m = machine({ ...policy, ...p });
    const seen: string[] = [];
    for (const step of steps.split(' ')) {
      if (step === 'F') m.fail();
      else if (step === 'S') m.succeed();
      else if (step === 'N') m.fail('INVALID_REQUEST');
      else m.clock.advance(Number(step.slice(1, -1)) * 1000);
      seen.push(m.state()[0]!);
    }
    expect(seen.join(' ')).toBe(states);
  });

  it.each([
    [0, 30_000],
    [1, 60_000],
    [2, 120_000],
    [3, 240_000],
    [4, 300_000],
    [40, 300_000],
  ])('open interval after %i re-opens is %i ms', (n, ms) => {
    expect(openDuration(n, DEFAULT_POLICY)).toBe(ms);
  });

  it('a healthy period resets the escalation; a re-open soon after closing escalates', () => {
    const m = machine();
    for (let i = 0; i < 5; i++) m.fail();
    m.clock.advance(30_000);
    m.succeed();
    for (let i = 0; i < 5; i++) m.fail();
    expect(m.record).toMatchObject({ reopenCount: 1, openUntil: m.clock.now() + 60_000 });
    m.clock.advance(60_000);
    m.succeed();
    m.clock.advance(300_000);
    for (let i = 0; i < 5; i++) m.fail();
    expect(m.record).toMatchObject({ reopenCount: 0, openUntil: m.clock.now() + 30_000 });
  });

  it('slow calls count only over the deployment threshold and open at the slow-call rate', () => {
    const m = machine({ ...policy, minimumCalls: 4, slowCallMs: 500, slowCallMsByDeployment: { 'gpt4o-east': 2_000 }, slowCallRateThreshold: 0.5 });
    m.succeed(1_000); // under this deployment's 2 s override
    m.succeed(2_500);
    m.succeed(100);
    expect(windowStats(m.record).slow).toBe(1);
    const step = m.succeed(3_000);
    expect(step.transition).toMatchObject({ to: 'OPEN', reason: 'slow-call rate 50% (over 2000ms) over 4 calls in 60s' });
  });
});
