import { ManualClock, skewedClock } from './clock';

describe('ManualClock', () => {
  it('moves only when advanced', () => {
    const clock = new ManualClock(1_000);
    expect(clock.now()).toBe(1_000);
    clock.advance(250);
    expect(clock.now()).toBe(1_250);
  });

  it('refuses to move backwards', () => {
    expect(() => new ManualClock().advance(-1)).toThrow(/backwards/);
  });

  it('skews a base clock by a fixed offset', () => {
    const base = new ManualClock(10_000);
    const skewed = skewedClock(base, -2_000);
    base.advance(5);
    expect(skewed.now()).toBe(8_005);
  });
});
