import type { SwitchyardConfig } from '@switchyard/config';
import { BudgetInputError, MAX_ID_LENGTH, MAX_TTL_MS, amount } from './budget-input';
import type { BudgetStore, CapUsage, ThresholdCrossing } from './budget-store';
import { type CapSpec, tenantCaps } from './caps';
import { newReservationId, reservationTenant } from './reservation-id';

export type StoreFailurePolicy = 'closed' | 'open';

/** The reservation's tenant left the config: nothing of it can be charged any more. */
export class ReservationNotFound extends Error {
  constructor(readonly reservationId: string) {
    super(`reservation ${reservationId} not found`);
    this.name = 'ReservationNotFound';
  }
}

/** The store is unreachable for a call that has no safe answer without it; retry after `retryAfterMs`. */
export class BudgetStoreUnreachable extends Error {
  readonly retryAfterMs = 1_000;
  constructor(message: string, options: { cause: unknown }) {
    super(message, options);
    this.name = 'BudgetStoreUnreachable';
  }
}

export interface BudgetLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

/** Where the budget reports its decisions (OTel counters in production). */
export interface BudgetCounters {
  reserve(tenant: string, outcome: 'granted' | 'denied' | 'fail_closed' | 'fail_open'): void;
  /** Committed actual cost, once per reservation. */
  spend(tenant: string, micros: number): void;
  /** A Reserve refused by `cap` (its id). */
  denial(tenant: string, cap: string): void;
  /** `cap`: the cap's id (e.g. `day`). */
  alert(tenant: string, cap: string, threshold: number): void;
  storeFailure(op: string): void;
}

/** Where threshold alerts go (NATS `switchyard.budget.<tenant>` in production; see adapters/budget-alerts.ts). */
export interface AlertPublisher {
  publish(tenant: string, crossing: ThresholdCrossing): Promise<void>;
}

/** Counters of the dependency-failure policies (DESIGN "When our own dependencies fail"). */
export interface BudgetStats {
  storeFailures: number;
  failClosed: number;
  failOpen: number;
  eventsPublished: number;
  eventPublishFailures: number;
}

export interface BudgetDeps {
  config: SwitchyardConfig;
  store: BudgetStore;
  alerts: AlertPublisher;
  logger: BudgetLog;
  counters: BudgetCounters;
  /** Lifetime of a reservation whose request says 0. */
  defaultTtlMs: number;
  /** What Reserve answers for a tenant with hard caps when the store is unreachable. */
  onStoreFailure: StoreFailurePolicy;
}

export interface ReserveRequest {
  tenant: string;
  amountMicros: bigint;
  ttlMs: number;
  requestId: string;
}

export type ReserveOutcome =
  /** `failOpen`: granted without the store (soft caps only, or the fail-open policy). */
  | { granted: true; reservationId: string; failOpen?: true }
  | { granted: false; cap: CapSpec; spentMicros: number; reservedMicros: number; periodEndMs: number }
  /** The store is unreachable and the tenant has a hard cap: deny rather than overspend. */
  | { granted: false; failClosed: true; cap: CapSpec };

/**
 * The budget's use cases over a BudgetStore: input checks naming the proto
 * field, the fail-closed/open policy when the store is down, and threshold
 * alerts. Time is the store's (periods and expiries are decided there).
 */
export function createBudget(deps: BudgetDeps) {
  const { store, logger, counters } = deps;
  const stats: BudgetStats = { storeFailures: 0, failClosed: 0, failOpen: 0, eventsPublished: 0, eventPublishFailures: 0 };
  const capsByTenant = new Map(Object.entries(deps.config.tenants).map(([id, t]) => [id, tenantCaps(id, t)]));

  function capsOf(field: string, tenant: string): CapSpec[] {
    if (!tenant) throw new BudgetInputError(field, 'is required');
    const caps = capsByTenant.get(tenant);
    if (!caps) throw new BudgetInputError(field, `unknown tenant "${tenant}"`);
    return caps;
  }

  function reservation(id: string): { tenant: string; caps: CapSpec[] } {
    if (!id) throw new BudgetInputError('reservation_id', 'is required');
    const tenant = reservationTenant(id);
    if (!tenant) throw new BudgetInputError('reservation_id', 'is not a reservation id issued by the budget service');
    const caps = capsByTenant.get(tenant);
    if (!caps) throw new ReservationNotFound(id);
    return { tenant, caps };
  }

  function storeDown(op: string, tenant: string, err: unknown): void {
    stats.storeFailures++;
    counters.storeFailure(op);
    logger.warn({ event: 'budget_store_unavailable', op, tenant, err: { message: (err as Error).message } }, 'budget store unreachable');
  }

  function alert(tenant: string, crossed: ThresholdCrossing[]): void {
    for (const c of crossed) {
      counters.alert(tenant, c.cap.id, c.thresholdPercent);
      logger.info(
        { event: 'budget_threshold', tenant, cap: c.cap.id, threshold: c.thresholdPercent, spentMicros: c.spentMicros, limitMicros: c.cap.limitMicros },
        `budget ${tenant}/${c.cap.id} reached ${c.thresholdPercent}%`,
      );
      // Off the critical path: the commit already happened; an alert lost to a NATS outage is logged.
      deps.alerts.publish(tenant, c).then(
        () => void stats.eventsPublished++,
        (err: Error) => {
          stats.eventPublishFailures++;
          logger.warn({ event: 'budget_event_publish_failed', tenant, err: { message: err.message } }, 'budget event not published');
        },
      );
    }
  }

  async function reserve(req: ReserveRequest): Promise<ReserveOutcome> {
    const caps = capsOf('tenant', req.tenant);
    const amountMicros = amount('amount_micros', req.amountMicros);
    if (req.ttlMs > MAX_TTL_MS) throw new BudgetInputError('ttl_ms', `must be at most ${MAX_TTL_MS}, got ${req.ttlMs}`);
    if (req.requestId.length > MAX_ID_LENGTH) throw new BudgetInputError('request_id', `must be at most ${MAX_ID_LENGTH} characters`);
    const reservationId = newReservationId(req.tenant);
    try {
      const r = await store.reserve({
        tenant: req.tenant,
        caps,
        reservationId,
        amountMicros,
        ttlMs: req.ttlMs || deps.defaultTtlMs,
        requestId: req.requestId || undefined,
      });
      counters.reserve(req.tenant, r.granted ? 'granted' : 'denied');
      if (r.granted) return { granted: true, reservationId: r.reservationId };
      counters.denial(req.tenant, r.cap.id);
      return { granted: false, cap: r.cap, spentMicros: r.spentMicros, reservedMicros: r.reservedMicros, periodEndMs: r.periodEndMs };
    } catch (err) {
      storeDown('reserve', req.tenant, err);
      const hard = caps.find((c) => c.hard);
      if (hard && deps.onStoreFailure === 'closed') {
        stats.failClosed++;
        counters.reserve(req.tenant, 'fail_closed');
        return { granted: false, failClosed: true, cap: hard };
      }
      // Only soft caps (or the fail-open policy): grant, and let a later Commit charge it if the store is back.
      stats.failOpen++;
      counters.reserve(req.tenant, 'fail_open');
      return { granted: true, failOpen: true, reservationId };
    }
  }

  async function commit(req: { reservationId: string; actualMicros: bigint }): Promise<{ found: boolean; returnedMicros: number }> {
    const { tenant, caps } = reservation(req.reservationId);
    const actualMicros = amount('actual_micros', req.actualMicros);
    try {
      const r = await store.commit({ tenant, caps, reservationId: req.reservationId, actualMicros });
      if (!r.alreadySettled) counters.spend(tenant, actualMicros);
      if (r.alreadySettled) logger.info({ event: 'budget_commit_repeated', tenant, reservationId: req.reservationId }, 'commit already settled');
      alert(tenant, r.crossed);
      return { found: r.found, returnedMicros: r.returnedMicros };
    } catch (err) {
      storeDown('commit', tenant, err);
      throw new BudgetStoreUnreachable('budget store unreachable; retry the commit', { cause: err });
    }
  }

  async function release(req: { reservationId: string }): Promise<{ released: boolean }> {
    const { tenant } = reservation(req.reservationId);
    try {
      const r = await store.release({ tenant, reservationId: req.reservationId });
      return { released: r.released };
    } catch (err) {
      storeDown('release', tenant, err);
      throw new BudgetStoreUnreachable('budget store unreachable; retry the release (unreleased, the reservation is charged when it expires)', { cause: err });
    }
  }

  async function usage(req: { tenant: string }): Promise<CapUsage[]> {
    const caps = capsOf('tenant', req.tenant);
    try {
      return await store.usage({ tenant: req.tenant, caps });
    } catch (err) {
      storeDown('usage', req.tenant, err);
      throw new BudgetStoreUnreachable('budget store unreachable', { cause: err });
    }
  }

  return { reserve, commit, release, usage, stats };
}

export type Budget = ReturnType<typeof createBudget>;
