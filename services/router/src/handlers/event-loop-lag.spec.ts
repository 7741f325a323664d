import { startLagSampler } from './event-loop-lag';

describe('event-loop lag sampler', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('reports how far past its due time the timer fired, worst since the last take, then starts over', () => {
    let t = 0;
    const lag = startLagSampler(10, () => t);
    t = 10;
    jest.advanceTimersByTime(10); // on time
    expect(lag.takeWorstMs()).toBe(0);
    // The next tick was due at 20; the loop was held until 45.
    t = 45;
    jest.advanceTimersByTime(10);
    t = 57; // due at 55: 2 ms late, less than the worst
    jest.advanceTimersByTime(10);
    expect(lag.takeWorstMs()).toBe(25);
    expect(lag.takeWorstMs()).toBe(0);
    lag.stop();
  });
});
