import type { Random } from './prng';
import type { Distribution } from './scenario';

/** z-score of the 99th percentile of a standard normal; turns {p50, p99} into lognormal sigma. */
const Z99 = 2.3263478740408408;

/** Draws one latency in ms from a distribution (deterministic for a seeded `random`). */
export function sampleLatency(d: Distribution, random: Random): number {
  if ('fixed' in d) return d.fixed;
  if ('uniform' in d) return d.uniform.min + random() * (d.uniform.max - d.uniform.min);
  const mu = Math.log(d.lognormal.p50);
  const sigma = (Math.log(d.lognormal.p99) - mu) / Z99;
  // Box-Muller; 1 - u keeps log() away from 0.
  const z = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  return Math.exp(mu + sigma * z);
}

/** True when a distribution can only ever produce 0, so the hot path can skip timers entirely. */
export function isZero(d: Distribution): boolean {
  return 'fixed' in d && d.fixed === 0;
}
