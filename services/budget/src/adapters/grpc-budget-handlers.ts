import { create, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import {
  BudgetEventSchema,
  BudgetPeriod,
  BudgetService,
  CapScope,
  type BudgetCapSchema,
} from '@switchyard/contracts';
import type { SwitchyardConfig } from '@switchyard/config';
import { type AccessTable, type ServiceImplementation, notFound, unavailable } from '@switchyard/grpc';
import { type EventBus, subjects } from '@switchyard/nats';
import { FieldError } from '@switchyard/util';
import { type BudgetMetrics, createBudgetMetrics } from './budget-metrics';
import type { BudgetStore, ThresholdCrossing } from '../domain/budget-store';
import { type CapSpec, tenantCaps } from '../domain/caps';
import { newReservationId, reservationTenant } from '../domain/reservation-id';

/** Largest single reservation or commit: 1M USD. Keeps every sum exact in Lua's doubles. */
export const MAX_AMOUNT_MICROS = 1_000_000_000_000n;
/** Longest reservation a caller may ask for. */
export const MAX_TTL_MS = 3_600_000;

export type StoreFailurePolicy = 'closed' | 'open';

export interface BudgetHandlerLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface BudgetHandlerOptions {
  config: SwitchyardConfig;
  store: BudgetStore;
  bus: EventBus;
  logger: BudgetHandlerLogger;
  /** Lifetime of a reservation whose request says 0. */
  defaultTtlMs: number;
  /** What Reserve answers for a tenant with hard caps when the store is unreachable. */
  onStoreFailure: StoreFailurePolicy;
  /** Throws UNAUTHENTICATED for callers without the internal token. */
  /** Default: OTel counters on the global meter (no-ops until telemetry starts). */
  metrics?: BudgetMetrics;
}

/** Counters of the dependency-failure policies (DESIGN "When our own dependencies fail"). */
export interface BudgetStats {
  storeFailures: number;
  failClosed: number;
  failOpen: number;
  eventsPublished: number;
  eventPublishFailures: number;
}

const PERIOD: Record<CapSpec['period'], BudgetPeriod> = {
  hour: BudgetPeriod.HOUR,
  day: BudgetPeriod.DAY,
  month: BudgetPeriod.MONTH,
};
const SCOPE: Record<CapSpec['scope'], CapScope> = {
  tenant: CapScope.TENANT,
  api_key: CapScope.API_KEY,
  feature: CapScope.FEATURE,
};

function capMessage(tenant: string, cap: CapSpec): MessageInitShape<typeof BudgetCapSchema> {
  return { scope: SCOPE[cap.scope], subject: cap.subject, period: PERIOD[cap.period], hard: cap.hard, tenant };
}

const MAX_ID_LENGTH = 128;

/** Who may call what (checked by createGrpcServer): GetBudget is a read-only view; the rest are the router's. */
export const BUDGET_ACCESS: AccessTable<(typeof BudgetService)['method']> = { getBudget: 'either' };

/**
 * BudgetService over a BudgetStore: validation (every error names its proto
 * field), the fail-closed/open policy when the store is down, and alert events
 * on `switchyard.budget.<tenant>`.
 */
export function createBudgetHandlers(options: BudgetHandlerOptions): {
  implementation: ServiceImplementation<(typeof BudgetService)['method']>;
  stats: BudgetStats;
} {
  const { config, store, bus, logger, defaultTtlMs, onStoreFailure } = options;
  const metrics = options.metrics ?? createBudgetMetrics();
  const stats: BudgetStats = { storeFailures: 0, failClosed: 0, failOpen: 0, eventsPublished: 0, eventPublishFailures: 0 };
  const capsByTenant = new Map(Object.entries(config.tenants).map(([id, t]) => [id, tenantCaps(id, t)]));

  function capsOf(field: string, tenant: string): CapSpec[] {
    if (!tenant) throw new FieldError(field, 'is required');
    const caps = capsByTenant.get(tenant);
    if (!caps) throw new FieldError(field, `unknown tenant "${tenant}"`);
    return caps;
  }

  function amount(field: string, value: bigint): number {
    if (value < 0n) throw new FieldError(field, `must not be negative, got ${value}`);
    if (value > MAX_AMOUNT_MICROS) throw new FieldError(field, `must be at most ${MAX_AMOUNT_MICROS} (1M USD), got ${value}`);
    return Number(value);
  }

  function reservation(id: string): { tenant: string; caps: CapSpec[] } {
    if (!id) throw new FieldError('reservation_id', 'is required');
    const tenant = reservationTenant(id);
    if (!tenant) throw new FieldError('reservation_id', 'is not a reservation id issued by the budget service');
    const caps = capsByTenant.get(tenant);
    // The tenant left the config: nothing of it can be charged any more.
    if (!caps) throw notFound('reservation', id);
    return { tenant, caps };
  }

  function storeDown(op: string, tenant: string, err: unknown): void {
    stats.storeFailures++;
    metrics.storeFailure(op);
    logger.warn({ event: 'budget_store_unavailable', op, tenant, err: { message: (err as Error).message } }, 'budget store unreachable');
  }

  function publish(tenant: string, crossed: ThresholdCrossing[]): void {
    for (const c of crossed) {
      metrics.alert(tenant, c.cap.id, c.thresholdPercent);
      const event = create(BudgetEventSchema, {
        tenant,
        cap: capMessage(tenant, c.cap),
        thresholdPercent: c.thresholdPercent,
        spentMicros: BigInt(c.spentMicros),
        limitMicros: BigInt(c.cap.limitMicros),
        periodStartUnixMs: BigInt(c.periodStartMs),
        epoch: BigInt(c.epoch),
        timeUnixMs: BigInt(c.atMs),
      });
      logger.info(
        { event: 'budget_threshold', tenant, cap: c.cap.id, threshold: c.thresholdPercent, spentMicros: c.spentMicros, limitMicros: c.cap.limitMicros },
        `budget ${tenant}/${c.cap.id} reached ${c.thresholdPercent}%`,
      );
      // Off the critical path: the commit already happened; an alert lost to a NATS outage is logged.
      bus.publish(subjects.budget(tenant), toBinary(BudgetEventSchema, event)).then(
        () => void stats.eventsPublished++,
        (err: Error) => {
          stats.eventPublishFailures++;
          logger.warn({ event: 'budget_event_publish_failed', tenant, err: { message: err.message } }, 'budget event not published');
        },
      );
    }
  }

  const implementation: ServiceImplementation<(typeof BudgetService)['method']> = {
    async reserve(req) {
      const caps = capsOf('tenant', req.tenant);
      const amountMicros = amount('amount_micros', req.amountMicros);
      if (req.ttlMs > MAX_TTL_MS) throw new FieldError('ttl_ms', `must be at most ${MAX_TTL_MS}, got ${req.ttlMs}`);
      if (req.requestId.length > MAX_ID_LENGTH) throw new FieldError('request_id', `must be at most ${MAX_ID_LENGTH} characters`);
      const reservationId = newReservationId(req.tenant);
      try {
        const r = await store.reserve({
          tenant: req.tenant,
          caps,
          reservationId,
          amountMicros,
          ttlMs: req.ttlMs || defaultTtlMs,
          requestId: req.requestId || undefined,
        });
        metrics.reserve(req.tenant, r.granted ? 'granted' : 'denied');
        if (r.granted) return { granted: true, reservationId: r.reservationId };
        metrics.denial(req.tenant, r.cap.id);
        return {
          granted: false,
          deniedCap: capMessage(req.tenant, r.cap),
          limitMicros: BigInt(r.cap.limitMicros),
          spentMicros: BigInt(r.spentMicros),
          reservedMicros: BigInt(r.reservedMicros),
          resetsAtUnixMs: BigInt(r.periodEndMs),
        };
      } catch (err) {
        storeDown('reserve', req.tenant, err);
        const hard = caps.find((c) => c.hard);
        if (hard && onStoreFailure === 'closed') {
          stats.failClosed++;
          metrics.reserve(req.tenant, 'fail_closed');
          return { granted: false, failClosed: true, deniedCap: capMessage(req.tenant, hard), limitMicros: BigInt(hard.limitMicros) };
        }
        // Only soft caps (or the fail-open policy): grant, and let a later Commit charge it if the store is back.
        stats.failOpen++;
        metrics.reserve(req.tenant, 'fail_open');
        return { granted: true, failOpen: true, reservationId };
      }
    },

    async commit(req) {
      const { tenant, caps } = reservation(req.reservationId);
      const actualMicros = amount('actual_micros', req.actualMicros);
      try {
        const r = await store.commit({ tenant, caps, reservationId: req.reservationId, actualMicros });
        if (!r.alreadySettled) metrics.spend(tenant, actualMicros);
        if (r.alreadySettled) logger.info({ event: 'budget_commit_repeated', tenant, reservationId: req.reservationId }, 'commit already settled');
        publish(tenant, r.crossed);
        return { found: r.found, returnedMicros: BigInt(r.returnedMicros) };
      } catch (err) {
        storeDown('commit', tenant, err);
        throw unavailable('budget store unreachable; retry the commit', 1_000, { cause: err });
      }
    },

    async release(req) {
      const { tenant } = reservation(req.reservationId);
      try {
        const r = await store.release({ tenant, reservationId: req.reservationId });
        return { released: r.released };
      } catch (err) {
        storeDown('release', tenant, err);
        throw unavailable('budget store unreachable; retry the release (unreleased, the reservation is charged when it expires)', 1_000, { cause: err });
      }
    },

    async getBudget(req) {
      const caps = capsOf('tenant', req.tenant);
      try {
        const usage = await store.usage({ tenant: req.tenant, caps });
        return {
          caps: usage.map((u) => ({
            cap: capMessage(req.tenant, u.cap),
            limitMicros: BigInt(u.cap.limitMicros),
            spentMicros: BigInt(u.spentMicros),
            reservedMicros: BigInt(u.reservedMicros),
            remainingMicros: BigInt(Math.max(0, u.cap.limitMicros - u.spentMicros - u.reservedMicros)),
            periodStartUnixMs: BigInt(u.periodStartMs),
            resetsAtUnixMs: BigInt(u.periodEndMs),
          })),
        };
      } catch (err) {
        storeDown('usage', req.tenant, err);
        throw unavailable('budget store unreachable', 1_000, { cause: err });
      }
    },
  };
  return { implementation, stats };
}
