import { createGrpcServer } from '@switchyard/grpc';
import { createRedisClient } from '@switchyard/redis';
import { type EventBus, KV_BUCKETS, createNatsEventBus } from '@switchyard/nats';
import type { RunningService } from '@switchyard/runtime';
import type { Clock } from '@switchyard/util';
import type { BreakerConfig } from './config';
import type { HealthStore } from './domain/health-store';
import { slowCallMsFor } from './domain/circuit';
import { createBreakerMetrics } from './adapters/breaker-metrics';
import { createBreakerHandlers } from './adapters/grpc-handlers';
import { createHealthPublisher } from './adapters/health-publisher';
import { startOutcomeConsumer } from './adapters/outcome-consumer';
import { createRedisHealthStore } from './adapters/redis-health-store';
import { createHealthTracker, type HealthTracker, type TrackerLogger } from './health-tracker';
import { createServiceLogger } from './logger';

/** What the embedded demo (or a test) may pass in instead of the real connections. */
export interface BreakerDeps {
  bus: EventBus;
  store: HealthStore;
  /** Used for snapshots of configured-but-unseen deployments; stores keep their own time. */
  clock: Clock;
  logger: TrackerLogger;
}

export type BreakerService = RunningService;

/**
 * Wires the breaker: store (Redis, or the one passed in), event bus (NATS, or
 * the one passed in), tracker, gRPC server, outcome consumer and the
 * OPEN→HALF_OPEN sweep. stop(): health NOT_SERVING → gRPC shutdown(grace) →
 * stop consuming → close the bus (drain) → quit Redis.
 */
export async function start(config: BreakerConfig, deps: Partial<BreakerDeps> = {}): Promise<BreakerService> {
  const logger = deps.logger ?? createServiceLogger('breaker', config.logLevel);
  const cleanups: (() => Promise<unknown>)[] = [];
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) await fn().catch((err) => logger.warn({ err }, 'cleanup step failed'));
  };
  try {
    let store = deps.store;
    if (!store) {
      const redis = createRedisClient({ url: config.redisUrl, name: 'switchyard-breaker', lazyConnect: true, logger });
      await redis.connect().catch((err: Error) => {
        redis.disconnect();
        throw new Error(`redis ${config.redisUrl}: ${err.message}`, { cause: err });
      });
      store = createRedisHealthStore({ redis, policy: config.policy, ownsConnection: true });
    }
    const ownedStore = store;
    cleanups.push(() => ownedStore.close());

    const bus =
      deps.bus ??
      (await createNatsEventBus({ url: config.natsUrl, name: 'switchyard-breaker', logger }).catch((err: Error) => {
        throw new Error(`nats ${config.natsUrl}: ${err.message}`, { cause: err });
      }));
    cleanups.push(() => bus.close());
    const kv = await bus.kv(KV_BUCKETS.health);
    const clock = deps.clock;
    const metrics = createBreakerMetrics();
    const publisher = createHealthPublisher({ bus, kv, logger, slowCallMs: (deployment) => slowCallMsFor(config.policy, deployment) });
    const tracked = createHealthTracker({
      store,
      // Every transition reaches exactly one replica's publisher: counting here counts each once cluster-wide.
      publisher: {
        ...publisher,
        transition: (step) => {
          if (step.transition) metrics.transition(step.transition);
          return publisher.transition(step);
        },
      },
      logger,
      configured: config.deployments,
      now: clock ? () => clock.now() : undefined,
    });
    const tracker: HealthTracker = {
      ...tracked,
      async report(id, outcome, options) {
        const result = await tracked.report(id, outcome, options);
        if (!result.duplicate) metrics.outcome(id.deployment, outcome.errorClass, outcome.latencyMs);
        return result;
      },
    };
    // State, failure rate and p95 are read from the shared store at scrape time (list() publishes any due transition itself).
    metrics.watchHealth(() => tracker.list());

    const server = await createGrpcServer({
      host: config.grpcHost,
      port: config.grpcPort,
      logger,
      auth: { internalToken: config.internalToken, operatorToken: config.operatorToken },
      channelOptions: { 'grpc.max_receive_message_length': config.grpcMaxReceiveBytes },
      services: [
        createBreakerHandlers({
          tracker,
          defaultProbeTtlMs: config.probeTtlMs,
          slowCallMs: (deployment) => slowCallMsFor(config.policy, deployment),
        }),
      ],
    });
    cleanups.push(() => server.shutdown(config.shutdownGraceMs));

    // Back from a NATS outage: put Redis's truth into KV so routers resynchronise from it.
    let lastStatus = bus.status();
    const offStatus = bus.onStatusChange((status) => {
      if (status === 'connected' && lastStatus !== 'connected') {
        void tracker.resync().then(() => logger.info({ event: 'health_resync' }, 'health KV resynchronised after a NATS outage'));
      }
      lastStatus = status;
    });
    cleanups.push(async () => offStatus());

    const consumer = await startOutcomeConsumer({ bus, tracker, logger, ackWaitMs: config.outcomeAckWaitMs });
    cleanups.push(() => consumer.stop());

    let sweeping: Promise<void> = Promise.resolve();
    const timer =
      config.sweepIntervalMs > 0
        ? setInterval(() => {
            sweeping = sweeping.then(() => tracker.sweep()).catch((err) => logger.warn({ err }, 'health sweep failed'));
          }, config.sweepIntervalMs)
        : undefined;
    timer?.unref();
    cleanups.push(async () => {
      if (timer) clearInterval(timer);
      await sweeping;
    });

    let stopped: Promise<void> | undefined;
    return {
      port: server.port,
      stop: () => (stopped ??= cleanup()),
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
