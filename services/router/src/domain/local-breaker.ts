import { ErrorClass } from '@switchyard/contracts';
import { type Clock, errorClassTraits } from '@switchyard/util';

/** A breaker failure is what the one error-class table says (overloaded, server error, timeout, network); unknown classes are neutral. */
export function breakerOutcome(errorClass: ErrorClass): 'success' | 'failure' | 'neutral' {
  if (errorClass === ErrorClass.UNSPECIFIED) return 'success';
  const name = ErrorClass[errorClass] as string | undefined;
  return name !== undefined && errorClassTraits(name)?.countsTowardBreaker ? 'failure' : 'neutral';
}

/**
 * The last line of defence when this replica can reach neither NATS nor the
 * breaker service: its own consecutive-failure circuit per deployment, fed
 * with its own outcomes (DESIGN "When our own dependencies fail"). While the
 * shared view is reachable it is not consulted: one cluster-wide decision beats
 * N local ones.
 */
export interface LocalBreaker {
  /** One attempt's outcome; `counts` = a breaker failure class (overloaded, server error, timeout, network). */
  record(deployment: string, outcome: 'success' | 'failure' | 'neutral'): void;
  /** When the deployment's local circuit is open, until when (epoch ms); else undefined. */
  openUntil(deployment: string): number | undefined;
  /** True when this replica's last breaker-relevant outcome on the deployment was a failure. */
  failing(deployment: string): boolean;
}

export function createLocalBreaker(options: { consecutiveFailures: number; openMs: number; clock: Clock }): LocalBreaker {
  const { consecutiveFailures, openMs, clock } = options;
  const circuits = new Map<string, { failures: number; openUntil: number }>();
  return {
    record(deployment, outcome) {
      if (outcome === 'neutral') return;
      const c = circuits.get(deployment) ?? { failures: 0, openUntil: 0 };
      if (outcome === 'success') {
        circuits.delete(deployment);
        return;
      }
      c.failures += 1;
      // Open on the Nth consecutive failure; a failure after the open period (the probe) re-opens at once.
      if (c.failures >= consecutiveFailures || (c.openUntil > 0 && clock.now() >= c.openUntil)) {
        c.openUntil = clock.now() + openMs;
        c.failures = 0;
      }
      circuits.set(deployment, c);
    },
    openUntil(deployment) {
      const c = circuits.get(deployment);
      return c && c.openUntil > clock.now() ? c.openUntil : undefined;
    },
    failing(deployment) {
      // A success deletes the entry; any entry left means the last outcome was a failure.
      return circuits.has(deployment);
    },
  };
}
