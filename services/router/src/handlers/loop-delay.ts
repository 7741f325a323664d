import type { Clock } from '@switchyard/util';
import type { LagSource } from './load-shed';

/**
 * How late this process has lately been to run what was due: the worst
 * event-loop delay over the last couple of seconds. It is time a caller's
 * deadline loses that the router cannot see otherwise. A request that arrives
 * while the loop runs late waits unread: gRPC carries the deadline as a
 * relative timeout, so the router's clock for the call starts that much after
 * the caller's. And an answer decided then waits unsent as long.
 */
export interface RecentLoopDelay {
  /** Worst delay over the recent span, in whole ms (rounded up); 0 while the loop keeps time. */
  worstMs(): number;
}

export interface RecentLoopDelayOptions {
  /** Delays are kept per bucket this long... */
  bucketMs: number;
  /** ...for this many buckets: a stall weighs on calls for bucketMs × buckets after it, then is forgotten. */
  buckets: number;
}

/**
 * Most of a call's time (as it stood on arrival) the loop's delay may claim,
 * for each use: the request's wait unread, the answer's wait unsent, an
 * attempt's answer read late. A stall longer than this is a loop that stopped
 * rather than one running late (a start-up, a long collection): no margin
 * saves the calls it holds, and taking all of it off every call would refuse
 * calls the loop answers in time once it runs again.
 */
export const LOOP_DELAY_SHARE = 1 / 8;

/** The delay `call` keeps back, per use: the recent worst, at most LOOP_DELAY_SHARE of `callMs` (its time on arrival). */
export function loopDelayFor(delay: RecentLoopDelay | undefined, callMs: number): number {
  if (!delay) return 0;
  return Math.max(0, Math.min(delay.worstMs(), Math.floor(callMs * LOOP_DELAY_SHARE)));
}

/** Two seconds: longer than a burst of stalls (a window of quota reopening for its queue), short enough to let go of one. */
const DEFAULTS: RecentLoopDelayOptions = { bucketMs: 250, buckets: 8 };

/**
 * `lag` is this tracker's own sampler (its readings are taken, not shared).
 * Its readings so far (start-up) are dropped: they measure no call's wait.
 */
export function createRecentLoopDelay(lag: LagSource, clock: Clock, options: RecentLoopDelayOptions = DEFAULTS): RecentLoopDelay {
  const { bucketMs, buckets } = options;
  if (!(bucketMs > 0) || !Number.isInteger(buckets) || buckets < 1) throw new Error(`recent loop delay: bucketMs > 0 and a whole number of buckets ≥ 1, got ${bucketMs}, ${buckets}`);
  const worst = new Array<number>(buckets).fill(0);
  let current = Math.floor(clock.now() / bucketMs);
  lag.takeWorstMs();
  return {
    worstMs() {
      const bucket = Math.floor(clock.now() / bucketMs);
      // Buckets the clock moved past are over: their slots start again from 0.
      for (let b = current + 1; b <= Math.min(bucket, current + buckets); b++) worst[b % buckets] = 0;
      current = Math.max(current, bucket);
      const slot = current % buckets;
      worst[slot] = Math.max(worst[slot]!, lag.takeWorstMs());
      // Whole milliseconds: it is subtracted from instants that travel as gRPC deadlines.
      return Math.ceil(Math.max(...worst));
    },
  };
}
