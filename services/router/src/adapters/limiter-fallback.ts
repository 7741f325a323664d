import type { SwitchyardConfig } from '@switchyard/config';
import type { Clock } from '@switchyard/util';
import { createLimiterMode, type LimiterMode } from '../domain/limiter-mode';
import { createLocalShare, shareKeys, type ShareDecision, type ShareKey } from '../domain/local-share';
import type { Admission } from '../domain/run-attempts';
import type { RouterLogger } from '../router-context';

/** Attempt note (and degraded reason) of an admission made from this router's share. */
export const LOCAL_SHARE_NOTE = 'limiter unavailable: local share';

/** What one Acquire on the limiter service came to. */
export type SharedAcquire =
  /** The limiter decided (granted, denied, or refused the request as invalid). */
  | { kind: 'answered'; admission: Admission }
  /** The call ended without telling anything about the limiter (the caller left; a queued wait ran out). */
  | { kind: 'unanswered'; admission: Admission }
  /** Unreachable, or its hop timed out: the share decides. */
  | { kind: 'unreachable'; error: string };

export interface LimiterFallback {
  /**
   * Admission of one attempt: `shared()` asks the limiter service, unless it
   * is known to be down (then this router's share admits without a hop, and
   * the limiter is probed every `retryMs` off the calls' path). Never throws.
   */
  admit(call: { deployment: string; tenant: string; tokens: number }, shared: () => Promise<SharedAcquire>): Promise<Admission>;
  /** Settles what the share holds of a reservation. True when it was the share's alone: nothing to settle at the limiter. */
  settle(reservationId: string, usage: { tokens: number } | 'cancelled'): boolean;
  mode(): 'shared' | 'local';
}

export interface LimiterFallbackOptions {
  gateway: SwitchyardConfig;
  clock: Clock;
  /** The limiter's RPM/TPM window (LIMITER_WINDOW_MS). */
  windowMs: number;
  /** While the limiter is down, how often it is probed. */
  retryMs: number;
  /**
   * Asks the limiter something harmless about `deployment` (GetQuota): true
   * when it answered (whatever the answer), false when it is still out of
   * reach. Must not throw.
   */
  probe(deployment: string): Promise<boolean>;
  /** Live routers (≥ 1): the divisor of every limit. */
  liveRouters(): number;
  logger: RouterLogger;
  /** A reservation never settled frees its slot after this long. Default 60 s (the limiter's default). */
  reservationTtlMs?: number;
}

const LIMIT_NAMES = { rpm: 'RPM', tpm: 'TPM', concurrency: 'concurrency' } as const;

/**
 * DESIGN "When our own dependencies fail", the limiter service: a call it
 * cannot answer is admitted against this router's share of every limit
 * (limit ÷ live routers, domain/local-share.ts), never unmetered; denied with
 * a retry-after when the share is spent; marked degraded. Mode switches are
 * logged once each, not per call.
 */
export function createLimiterFallback(options: LimiterFallbackOptions): LimiterFallback {
  const { gateway, clock, logger } = options;
  const reservationTtlMs = options.reservationTtlMs ?? 60_000;
  const share = createLocalShare({ clock, windowMs: options.windowMs, liveRouters: options.liveRouters, reservationTtlMs });
  const mode: LimiterMode = createLimiterMode({ clock, retryMs: options.retryMs, windowMs: options.windowMs, reservationTtlMs });
  /** Limiter reservation id → the share's record of the same admission (and when it expires). */
  const linked = new Map<string, { recorded: string; until: number }>();
  /** Reservations made by the share alone → when they expire. */
  const localOnly = new Map<string, number>();
  /** Every admission is settled (or cancelled) by the pipeline; this only bounds the maps should one never be. */
  let admissions = 0;
  const sweep = () => {
    if (++admissions % 1_000 !== 0) return;
    const now = clock.now();
    for (const [id, l] of linked) if (l.until <= now) linked.delete(id);
    for (const [id, until] of localOnly) if (until <= now) localOnly.delete(id);
  };

  const denial = (d: Extract<ShareDecision, { granted: false }>, why: string): Admission => ({
    granted: false,
    retryAfterMs: d.retryAfterMs,
    reason: `${d.blocked.kind} ${d.blocked.id} ${LIMIT_NAMES[d.dimension]} exhausted (this router's share, ${d.share}: ${why})`,
    final: d.blocked.kind === 'tenant',
  });

  const grantLocally = (reservationId: string): Admission => {
    mode.localAdmitted(reservationId);
    localOnly.set(reservationId, clock.now() + reservationTtlMs);
    return { granted: true, reservationId, note: LOCAL_SHARE_NOTE, degraded: { kind: 'limiter-unavailable' } };
  };

  let probing = false;
  const probe = (deployment: string) => {
    probing = true;
    void Promise.resolve()
      .then(() => options.probe(deployment))
      .catch(() => false)
      .then((answered) => {
        probing = false;
        if (!answered) mode.unreachable();
        else if (mode.answered()) logger.info({ event: 'limiter_shared' }, 'limiter answers again: back to shared admission');
      });
  };

  const admitLocally = (keys: ShareKey[], tokens: number): Admission => {
    const d = share.acquire(keys, tokens, { enforce: true });
    return d.granted ? grantLocally(d.reservationId) : denial(d, 'limiter unavailable');
  };

  return {
    async admit(call, shared) {
      sweep();
      const keys = shareKeys(gateway, call.deployment, call.tenant);
      if (mode.current() === 'local') {
        // One probe at a time: a slow one (a hung limiter) must not pile up more.
        if (!probing && mode.probeDue()) probe(call.deployment);
        return admitLocally(keys, call.tokens);
      }
      // Right after an outage the limiter has not seen what the share admitted: both must agree.
      let held: string | undefined;
      if (mode.handover()) {
        const d = share.acquire(keys, call.tokens, { enforce: true });
        if (!d.granted) return denial(d, 'the limiter has not seen the admissions made while it was unavailable');
        held = d.reservationId;
      }
      const out = await shared();
      if (out.kind === 'unreachable') {
        if (mode.unreachable()) {
          logger.warn(
            { event: 'limiter_local_share', routers: options.liveRouters(), retry_ms: options.retryMs, err: { message: out.error } },
            'limiter unreachable: admitting from this router’s share (limit ÷ live routers) until it answers',
          );
        }
        return held ? grantLocally(held) : admitLocally(keys, call.tokens);
      }
      if (out.kind === 'answered' && mode.answered()) logger.info({ event: 'limiter_shared' }, 'limiter answers again: back to shared admission');
      const a = out.admission;
      if (!a.granted) {
        if (held) share.settle(held, 'cancelled');
        return a;
      }
      // Counted here too, so a later outage starts from this router's real use of the window.
      let recordedId = held;
      if (recordedId === undefined) {
        const d = share.acquire(keys, call.tokens, { enforce: false });
        if (d.granted) recordedId = d.reservationId;
      }
      if (recordedId) {
        if (a.reservationId) linked.set(a.reservationId, { recorded: recordedId, until: clock.now() + reservationTtlMs });
        else share.settle(recordedId, { tokens: call.tokens });
      }
      return a;
    },

    settle(reservationId, usage) {
      if (localOnly.delete(reservationId)) {
        mode.localSettled(reservationId);
        share.settle(reservationId, usage);
        return true;
      }
      const link = linked.get(reservationId);
      if (link !== undefined) {
        linked.delete(reservationId);
        share.settle(link.recorded, usage);
      }
      return false;
    },

    mode: () => mode.current(),
  };
}
