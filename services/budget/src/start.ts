import { BudgetService } from '@switchyard/contracts';
import { createGrpcServer, serviceRegistration } from '@switchyard/grpc';
import { createNatsEventBus, type EventBus } from '@switchyard/nats';
import { closeRedis, connectRedis } from '@switchyard/redis';
import { type RunningService, createLifecycle } from '@switchyard/runtime';
import { createLogger } from '@switchyard/telemetry';
import { BUDGET_ACCESS, type BudgetHandlerLogger, type BudgetStats, createBudgetHandlers } from './adapters/grpc-budget-handlers';
import { createBudgetMetrics } from './adapters/budget-metrics';
import { createRedisBudgetStore } from './adapters/redis-budget-store';
import { tenantCaps } from './domain/caps';
import type { BudgetConfig } from './config';
import type { BudgetStore } from './domain/budget-store';

export interface BudgetLogger extends BudgetHandlerLogger {
  error(obj: object, msg?: string): void;
}

/** What start() needs from the outside; the embedded demo passes in-memory ones. */
export interface BudgetDeps {
  store: BudgetStore;
  bus: EventBus;
  logger: BudgetLogger;
}

export interface RunningBudgetService extends RunningService {
  stats: BudgetStats;
}

/** How long start-up waits for Redis before serving anyway (fail-closed until it connects). */
const REDIS_STARTUP_WAIT_MS = 5_000;

/** Wires config → adapters → handlers → gRPC server; tests and main share it. */
export async function start(config: BudgetConfig, deps: Partial<BudgetDeps> = {}): Promise<RunningBudgetService> {
  const logger: BudgetLogger = deps.logger ?? createLogger('switchyard-budget', { level: config.logLevel });
  const life = createLifecycle(logger);
  return life.starting(async () => {
    let store = deps.store;
    if (!store) {
      // The shared fail-fast client: once connected, commands error at once while Redis is away (and after
      // the command timeout when it hangs), so Reserve applies the fail-closed policy instead of stalling calls.
      const client = { url: config.redisUrl, name: 'switchyard-budget', logger, commandTimeoutMs: config.redisCommandTimeoutMs };
      const redis = await connectRedis({ ...client, graceMs: REDIS_STARTUP_WAIT_MS, whileUnreachable: 'serving without Redis for now (hard caps fail closed)' });
      life.onStop('redis', () => closeRedis(redis));
      store = createRedisBudgetStore(redis);
    }
    const ownedStore = store;
    life.onStop('budget store', () => ownedStore.close());
    let bus = deps.bus;
    if (!bus) {
      const owned = await createNatsEventBus({ url: config.natsUrl, name: 'switchyard-budget', logger });
      life.onStop('event bus', () => owned.close());
      bus = owned;
    }
    const tenants = Object.entries(config.switchyard.tenants).map(([id, t]) => ({ id, caps: tenantCaps(id, t) }));
    const metrics = createBudgetMetrics(undefined, tenants.flatMap((t) => t.caps.map((c) => ({ tenant: t.id, cap: c.id }))));
    const usageStore = store;
    metrics.watchCaps(async () => {
      const standing = [];
      for (const t of tenants) {
        if (t.caps.length === 0) continue;
        for (const u of await usageStore.usage({ tenant: t.id, caps: t.caps })) {
          standing.push({ tenant: t.id, cap: u.cap.id, spentMicros: u.spentMicros, reservedMicros: u.reservedMicros, limitMicros: u.cap.limitMicros });
        }
      }
      return standing;
    });
    const { implementation, stats } = createBudgetHandlers({
      config: config.switchyard,
      store,
      bus,
      logger,
      defaultTtlMs: config.reservationTtlMs,
      onStoreFailure: config.onStoreFailure,
      metrics,
    });
    const server = await createGrpcServer({
      host: config.grpcHost,
      port: config.grpcPort,
      services: [serviceRegistration(BudgetService, implementation, BUDGET_ACCESS)],
      logger,
      auth: { internalToken: config.internalToken, operatorToken: config.operatorToken },
      channelOptions: { 'grpc.max_receive_message_length': config.grpcMaxReceiveBytes },
    });
    life.onStop('grpc server', () => server.shutdown(config.shutdownGraceMs));
    return { port: server.port, stats, stop: life.stop };
  });
}
