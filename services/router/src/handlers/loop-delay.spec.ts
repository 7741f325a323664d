import { ManualClock } from '@switchyard/util';
import type { LagSource } from './load-shed';
import { createRecentLoopDelay, loopDelayFor } from './loop-delay';

/** A lag sampler the test feeds: each reading is the worst delay since the last one. */
function fedLag() {
  let worst = 0;
  const source: LagSource = {
    takeWorstMs() {
      const w = worst;
      worst = 0;
      return w;
    },
  };
  return { source, stall: (ms: number) => (worst = Math.max(worst, ms)) };
}

describe('recent event-loop delay', () => {
  const options = { bucketMs: 250, buckets: 8 };
  /** A tracker over a fed sampler and a manual clock at 0; `beforeStart` feeds the sampler before the tracker exists. */
  const tracked = (beforeStart?: (lag: ReturnType<typeof fedLag>) => void) => {
    const lag = fedLag();
    beforeStart?.(lag);
    const clock = new ManualClock(0);
    return { lag, clock, delay: createRecentLoopDelay(lag.source, clock, options) };
  };

  it('is 0 while the loop keeps time', () => {
    const { delay } = tracked();
    expect(delay.worstMs()).toBe(0);
  });

  it('reports the worst stall of the last two seconds, however many readings came after it, then forgets it', () => {
    const { lag, clock, delay } = tracked();
    lag.stall(240);
    clock.advance(100);
    expect(delay.worstMs()).toBe(240);
    lag.stall(30);
    clock.advance(1_000);
    expect(delay.worstMs()).toBe(240); // a smaller stall since does not hide it
    clock.advance(1_000); // 2.1 s after the stall: its bucket has been reused
    expect(delay.worstMs()).toBe(30);
    clock.advance(2_000);
    expect(delay.worstMs()).toBe(0);
  });

  it('rounds up to whole milliseconds (the sampler reads a monotonic clock with fractions)', () => {
    const { lag, delay } = tracked();
    lag.stall(12.2);
    expect(delay.worstMs()).toBe(13);
  });

  it('forgets everything after a long quiet gap', () => {
    const { lag, clock, delay } = tracked();
    lag.stall(500);
    expect(delay.worstMs()).toBe(500);
    clock.advance(60_000);
    expect(delay.worstMs()).toBe(0);
  });

  it('drops what the sampler saw before it existed (start-up is no call\'s wait)', () => {
    const { delay } = tracked((lag) => lag.stall(900));
    expect(delay.worstMs()).toBe(0);
  });

  it('a call keeps back at most an eighth of its time for it: a stopped loop is not a late one', () => {
    const at = (ms: number) => ({ worstMs: () => ms });
    expect(loopDelayFor(at(150), 2_000)).toBe(150);
    expect(loopDelayFor(at(829), 2_000)).toBe(250);
    expect(loopDelayFor(at(829), Number.POSITIVE_INFINITY)).toBe(829);
    expect(loopDelayFor(at(40), -5)).toBe(0); // arrived past its deadline: nothing to take off
    expect(loopDelayFor(undefined, 2_000)).toBe(0);
  });
});
