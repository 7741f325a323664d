import type { DegradedReason } from '../domain/degraded';
import type { LeasedCall } from './budget-lease-book';
import type { SettleRetry } from '../settle-retry';
import { hopDeadline, peerErrorText, type PeerDeps } from './peer-call';
import type { BudgetClient } from './peers';

/** Why the budget refused a call (the caller-facing error is built from this in handlers/caller-errors.ts). */
export type BudgetDenial =
  | {
      kind: 'exceeded';
      /** `tenant:acme`, `api key:k1`, … */
      subject: string;
      description: string;
      limitMicros: bigint;
      spentMicros: bigint;
      reservedMicros: bigint;
      requestedMicros: number;
      retryAfterMs?: number;
    }
  /** The budget service answered but cannot reach its store, and the tenant has hard caps. */
  | { kind: 'store-unavailable' }
  /** The budget service did not answer, and the tenant has hard caps. */
  | { kind: 'unreachable'; cause: string };

/** Outcome of the budget Reserve in the fan-out. */
export type BudgetHold =
  /** `leased`: admitted from this router's budget lease (budget-leases.ts); its Commit/Release is local bookkeeping. */
  | { kind: 'granted'; reservationId: string; degraded?: DegradedReason; leased?: LeasedCall }
  /** Nothing held: no reservation was needed, or the budget service was unreachable and the tenant has no hard cap (fail open). */
  | { kind: 'unrecorded'; degraded?: DegradedReason }
  | { kind: 'denied'; denial: BudgetDenial };

export interface BudgetReserve {
  tenant: string;
  feature: string;
  apiKeyId: string;
  /** The tenant has at least one hard cap: an unreachable budget service then refuses the call. */
  hardCapped: boolean;
  amountMicros: number;
  requestId: string;
  /** Caller deadline as an instant; Infinity when none. */
  deadlineAt: number;
}

/** The budget service as the router uses it: Reserve → hold, Commit, Release, and the fail-closed rule for hard caps. */
export interface BudgetPeer {
  reserve(r: BudgetReserve): Promise<BudgetHold>;
  /** The call was answered: charge its actual cost (off the response path). */
  commit(hold: BudgetHold, actualMicros: number, requestId: string): void;
  /** Nothing was spent: give the reservation back (off the response path). */
  release(hold: BudgetHold, requestId: string): void;
}

const PERIODS = ['unspecified', 'hour', 'day', 'month'];
const SCOPES = ['cap', 'tenant', 'api key', 'feature'];

/** `settleRetry`: a failed Commit/Release is retried on the next replica until its reservation would expire. */
export function createBudgetPeer({ client, clock, logger, tasks, peerDeadlineMs, settleRetry }: PeerDeps<BudgetClient> & { settleRetry: SettleRetry }): BudgetPeer {
  return {
    async reserve(r) {
      try {
        const res = await client.reserve(
          { tenant: r.tenant, feature: r.feature, apiKeyId: r.apiKeyId, amountMicros: BigInt(r.amountMicros), requestId: r.requestId },
          hopDeadline({ now: clock.now(), deadlineAt: r.deadlineAt, peerDeadlineMs }),
        );
        if (res.granted) {
          return res.failOpen ? { kind: 'granted', reservationId: res.reservationId, degraded: { kind: 'budget-store-fail-open' } } : { kind: 'granted', reservationId: res.reservationId };
        }
        if (res.failClosed) return { kind: 'denied', denial: { kind: 'store-unavailable' } };
        const cap = res.deniedCap;
        const period = cap ? (PERIODS[cap.period] ?? 'period') : 'period';
        const scope = cap ? (SCOPES[cap.scope] ?? 'cap') : 'cap';
        const subject = cap ? `${scope}:${cap.subject}` : `tenant:${r.tenant}`;
        const description =
          `hard ${period} budget of ${res.limitMicros} micro-USD: spent ${res.spentMicros} + reserved ${res.reservedMicros} ` +
          `+ this call's worst case ${r.amountMicros} would exceed it`;
        const retryAfterMs = res.resetsAtUnixMs > 0n ? Math.max(0, Number(res.resetsAtUnixMs) - clock.now()) : undefined;
        return {
          kind: 'denied',
          denial: {
            kind: 'exceeded',
            subject,
            description,
            limitMicros: res.limitMicros,
            spentMicros: res.spentMicros,
            reservedMicros: res.reservedMicros,
            requestedMicros: r.amountMicros,
            ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
          },
        };
      } catch (err) {
        // DESIGN.md "When our own dependencies fail": hard caps fail closed, no caps fail open.
        if (r.hardCapped) return { kind: 'denied', denial: { kind: 'unreachable', cause: peerErrorText(err) } };
        logger.warn({ request_id: r.requestId, peer: 'budget', err: { message: peerErrorText(err) } }, 'budget unreachable; tenant has no hard caps, proceeding');
        return { kind: 'unrecorded', degraded: { kind: 'budget-unreachable' } };
      }
    },
    commit(hold, actualMicros, requestId) {
      if (hold.kind !== 'granted' || !hold.reservationId) return;
      const reservationId = hold.reservationId;
      tasks.run('budget commit', { request_id: requestId, reservation_id: reservationId, actual_micros: actualMicros }, () =>
        settleRetry.run(() => client.commit({ reservationId, actualMicros: BigInt(actualMicros) })),
      );
    },
    release(hold, requestId) {
      if (hold.kind !== 'granted' || !hold.reservationId) return;
      const reservationId = hold.reservationId;
      tasks.run('budget release', { request_id: requestId, reservation_id: reservationId }, () => settleRetry.run(() => client.release({ reservationId })));
    },
  };
}
