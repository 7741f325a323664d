import type { Clock } from '@switchyard/util';

/**
 * Whether an admission asks the limiter service or this router's local share.
 *
 * - `shared`: every call asks the limiter.
 * - `local`: the limiter did not answer (unreachable, or its hop timed out —
 *   also when this router is too busy to hear it in time). Calls admit from
 *   the local share without a hop, so a dead limiter costs no call a hop
 *   timeout; every `retryMs` a probe asks the limiter again (off the calls'
 *   path), and its first answer brings everyone back.
 *
 * Admissions made from the share are unknown to the shared limiter, so after
 * the return the share keeps applying on top of the limiter's answers while
 * any of them is still inside the window (or still in flight): `handover()`.
 * Without that, the window after a return would admit the shared limit again
 * on top of what the routers admitted alone.
 */
export interface LimiterMode {
  /** In `local` mode, true once per `retryMs`: time to probe the limiter again. */
  probeDue(): boolean;
  /** The limiter answered (granted or denied). True when this ended the local mode. */
  answered(): boolean;
  /** The limiter could not answer. True when this started the local mode. */
  unreachable(): boolean;
  /** An admission was made from the share alone (the limiter does not know it). */
  localAdmitted(reservationId: string): void;
  /** That admission's attempt is over. */
  localSettled(reservationId: string): void;
  /** True while the share must also apply to admissions the limiter grants (see above). */
  handover(): boolean;
  current(): 'shared' | 'local';
}

export interface LimiterModeOptions {
  clock: Clock;
  /** In local mode, how often the limiter is probed again. */
  retryMs: number;
  /** The limiter's RPM/TPM window: how long a local admission counts. */
  windowMs: number;
  /** A local admission never settled stops holding the hand-over after this long. */
  reservationTtlMs: number;
}

export function createLimiterMode(options: LimiterModeOptions): LimiterMode {
  const { clock, retryMs, windowMs, reservationTtlMs } = options;
  if (!(retryMs > 0)) throw new Error(`limiter retryMs: must be > 0, got ${retryMs}`);
  let mode: 'shared' | 'local' = 'shared';
  let nextTry = 0;
  let lastLocalAt = Number.NEGATIVE_INFINITY;
  /** Local admissions in flight → when they stop counting as such. */
  const open = new Map<string, number>();

  return {
    probeDue() {
      if (mode === 'shared') return false;
      const now = clock.now();
      if (now < nextTry) return false;
      nextTry = now + retryMs;
      return true;
    },
    answered() {
      if (mode === 'shared') return false;
      mode = 'shared';
      return true;
    },
    unreachable() {
      nextTry = clock.now() + retryMs;
      if (mode === 'local') return false;
      mode = 'local';
      return true;
    },
    localAdmitted(reservationId) {
      const now = clock.now();
      lastLocalAt = now;
      open.set(reservationId, now + reservationTtlMs);
    },
    localSettled(reservationId) {
      open.delete(reservationId);
    },
    handover() {
      const now = clock.now();
      if (now < lastLocalAt + windowMs) return true;
      for (const [id, until] of open) {
        if (until > now) return true;
        open.delete(id);
      }
      return false;
    },
    current: () => mode,
  };
}
