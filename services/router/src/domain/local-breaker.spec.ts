import { ManualClock } from '@switchyard/util';
import { createLocalBreaker } from './local-breaker';

describe('local breaker (NATS and breaker service both unreachable)', () => {
  const setup = () => {
    const clock = new ManualClock(1_000_000);
    return { clock, breaker: createLocalBreaker({ consecutiveFailures: 3, openMs: 30_000, clock }) };
  };

  it('opens on the third consecutive failure and stays open for openMs', () => {
    const { clock, breaker } = setup();
    breaker.record('a', 'failure');
    breaker.record('a', 'failure');
    expect(breaker.openUntil('a')).toBeUndefined();
    breaker.record('a', 'failure');
    expect(breaker.openUntil('a')).toBe(1_030_000);
    clock.advance(29_999);
    expect(breaker.openUntil('a')).toBe(1_030_000);
    clock.advance(1);
    expect(breaker.openUntil('a')).toBeUndefined();
  });

  it('a success in between resets the count; client errors are neutral', () => {
    const { breaker } = setup();
    breaker.record('a', 'failure');
    breaker.record('a', 'failure');
    breaker.record('a', 'success');
    breaker.record('a', 'failure');
    breaker.record('a', 'neutral');
    breaker.record('a', 'failure');
    expect(breaker.openUntil('a')).toBeUndefined();
    breaker.record('a', 'failure');
    expect(breaker.openUntil('a')).toBeDefined();
  });

  it('re-opens at once when the first call after the open period fails', () => {
    const { clock, breaker } = setup();
    for (let i = 0; i < 3; i++) breaker.record('a', 'failure');
    clock.advance(30_000);
    breaker.record('a', 'failure');
    expect(breaker.openUntil('a')).toBe(1_060_000);
  });

  it('keeps deployments apart', () => {
    const { breaker } = setup();
    for (let i = 0; i < 3; i++) breaker.record('a', 'failure');
    expect(breaker.openUntil('b')).toBeUndefined();
  });

  it('knows whether the last outcome on a deployment was a failure (neutral outcomes do not change it)', () => {
    const { breaker } = setup();
    expect(breaker.failing('a')).toBe(false);
    breaker.record('a', 'failure');
    breaker.record('a', 'neutral');
    expect(breaker.failing('a')).toBe(true);
    breaker.record('a', 'success');
    expect(breaker.failing('a')).toBe(false);
  });
});
