import { performance } from 'node:perf_hooks';
import type { LagSource } from './load-shed';

/**
 * Measures how late this process's event loop runs: a timer every
 * `intervalMs` notes how far past its due time it fired. (perf_hooks'
 * monitorEventLoopDelay was tried: its histogram under-reports a single long
 * block, e.g. 12 ms for a 30 ms one, and this gate acts on single blocks.)
 * The timer is unref'd: it never keeps the process alive.
 */
export function startLagSampler(intervalMs = 10, clock: () => number = () => performance.now()): LagSource & { stop(): void } {
  let worst = 0;
  let due = clock() + intervalMs;
  const timer = setInterval(() => {
    const now = clock();
    worst = Math.max(worst, now - due);
    due = now + intervalMs;
  }, intervalMs);
  timer.unref();
  return {
    takeWorstMs() {
      const w = worst;
      worst = 0;
      return w;
    },
    stop: () => clearInterval(timer),
  };
}
