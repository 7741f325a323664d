import type { CapSpec } from './caps';

/** Outstanding and spent money of one cap in its current period. */
export interface CapUsage {
  cap: CapSpec;
  spentMicros: number;
  reservedMicros: number;
  periodStartMs: number;
  periodEndMs: number;
}

export interface ReserveInput {
  tenant: string;
  /** Every cap that applies; the hard ones must all have room (all-or-nothing). */
  caps: CapSpec[];
  /** Minted by the caller (see reservation-id.ts) so a retried script cannot double-mint. */
  reservationId: string;
  amountMicros: number;
  ttlMs: number;
  /** Caller's idempotency id: a second Reserve with it returns the live reservation. */
  requestId?: string;
}

export type ReserveResult =
  | { granted: true; reservationId: string; /** The request id matched a live reservation. */ existing: boolean }
  | ({ granted: false } & CapUsage);

/** A cap whose spend reached an alert threshold for the first time this period. */
export interface ThresholdCrossing {
  cap: CapSpec;
  thresholdPercent: number;
  spentMicros: number;
  periodStartMs: number;
  /** 1, 2, 3 … per cap and period: monotonic for consumers that dedupe. */
  epoch: number;
  atMs: number;
}

export interface CommitResult {
  /** False when the reservation had expired, been released or was never seen (charged anyway). */
  found: boolean;
  /**
   * Reserved minus actual (negative when the call cost more than reserved). For
   * an expired reservation too: its expiry charged the reserved amount, which
   * the late Commit replaces with the actual cost.
   */
  returnedMicros: number;
  /** A repeated Commit: nothing was charged again; the first result is replayed. */
  alreadySettled: boolean;
  crossed: ThresholdCrossing[];
}

export interface ReleaseResult {
  /** The hold was given back, or (late Release of an expired reservation) its expiry charge taken back. */
  released: boolean;
  /** The reservation was already committed or released. */
  alreadySettled: boolean;
}

/**
 * Budget state. Every method is one atomic step (one Lua script in Redis), and
 * every method first reclaims the tenant's expired reservations, so a crashed
 * router leaks nothing. Time comes from the store (Redis TIME), never the caller.
 *
 * A reservation neither committed nor released by its expiry is charged at its
 * reserved (worst-case) amount: the call may have run and its Commit been lost
 * with a crashed router or budget replica, and a hard cap must hold anyway.
 * A late Commit replaces that charge with the actual cost, a late Release takes
 * it back; each settles the reservation once (repeats change nothing).
 */
export interface BudgetStore {
  reserve(input: ReserveInput): Promise<ReserveResult>;
  /** Charges `actualMicros` to the current period of every cap, whatever happened to the reservation. */
  commit(input: { tenant: string; caps: CapSpec[]; reservationId: string; actualMicros: number }): Promise<CommitResult>;
  release(input: { tenant: string; reservationId: string }): Promise<ReleaseResult>;
  usage(input: { tenant: string; caps: CapSpec[] }): Promise<CapUsage[]>;
  close(): Promise<void>;
}

/** How long a settled or expired reservation is remembered so a late or repeated Commit stays idempotent. */
export const SETTLED_RETENTION_MS = 86_400_000;
