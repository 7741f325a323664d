import { status } from '@switchyard/grpc';
import type { Clock } from '@switchyard/util';

export interface SettleRetryOptions {
  clock: Clock;
  /** Resolves after `ms`; rejects (or resolves early) when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** Uniform in [0, 1): jitter, so routers that lost the same replica do not retry in step. */
  rng: () => number;
  /**
   * How long after its first try a settle is retried: about the reservation's
   * lifetime. Past it the reservation has expired, and the budget already
   * charged it at its worst case (the limiter keeps its tokens charged), so
   * giving up then loses nothing.
   */
  windowMs: number;
  /** First backoff (doubled per retry, capped at `maxDelayMs`). */
  baseDelayMs?: number;
  maxDelayMs?: number;
}

export interface SettleRetry {
  /**
   * Runs `attempt` until it succeeds, fails for good, or the window ends;
   * resolves with its answer or rejects with the last error. Each retry is a
   * new call, which round-robin sends to the next live replica.
   */
  run<T>(attempt: () => Promise<T>): Promise<T>;
  /** Shutdown: the retries in progress stop at their next backoff (their reservations expire charged). */
  stop(): void;
}

/**
 * Statuses a retry cannot change: the request itself is wrong or not ours.
 * Everything else (UNAVAILABLE from a dead replica or its store, a deadline,
 * a reset connection) may succeed on another replica or a moment later, and
 * Commit, Release and Settle are idempotent by reservation id, so a retry of
 * one that did land changes nothing.
 */
const FINAL = new Set<number>([
  status.INVALID_ARGUMENT,
  status.NOT_FOUND,
  status.UNAUTHENTICATED,
  status.PERMISSION_DENIED,
  status.UNIMPLEMENTED,
  status.FAILED_PRECONDITION,
]);

function isFinal(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'number' && FINAL.has(code);
}

/**
 * Retries the after-answer accounting calls (budget Commit/Release, limiter
 * Settle) with exponential backoff and jitter. A call lost with a crashed
 * peer replica would otherwise leave its reservation to expire: charged at
 * the worst case in the budget, its unused tokens never returned to the limiter.
 */
export function createSettleRetry(options: SettleRetryOptions): SettleRetry {
  const base = options.baseDelayMs ?? 50;
  const max = options.maxDelayMs ?? 2_000;
  const stopping = new AbortController();
  return {
    async run<T>(attempt: () => Promise<T>): Promise<T> {
      const giveUpAt = options.clock.now() + options.windowMs;
      for (let retry = 0; ; retry++) {
        try {
          return await attempt();
        } catch (err) {
          if (isFinal(err) || stopping.signal.aborted) throw err;
          // Equal jitter: never below half the backoff, so no rng can make it spin on a dead peer.
          const backoff = Math.min(max, base * 2 ** retry);
          const delay = Math.round(backoff / 2 + (options.rng() * backoff) / 2);
          if (options.clock.now() + delay >= giveUpAt) throw err;
          await options.sleep(delay, stopping.signal).catch(() => undefined);
          if (stopping.signal.aborted) throw err;
        }
      }
    },
    stop: () => stopping.abort(),
  };
}
