import { createGrpcServer } from '@switchyard/grpc';
import { connectRedis } from '@switchyard/redis';
import { type EventBus, KV_BUCKETS, createNatsEventBus } from '@switchyard/nats';
import { type RunningService, createLifecycle } from '@switchyard/runtime';
import type { Clock } from '@switchyard/util';
import type { BreakerConfig } from './config';
import type { HealthStore } from './domain/health-store';
import { slowCallMsFor } from './domain/circuit';
import { createBreakerMetrics } from './adapters/breaker-metrics';
import { createBreakerHandlers } from './adapters/grpc-handlers';
import { createHealthPublisher } from './adapters/health-publisher';
import { startOutcomeConsumer } from './adapters/outcome-consumer';
import { createRedisHealthStore } from './adapters/redis-health-store';
import { createFailoverHealthStore } from './adapters/failover-health-store';
import { createMemoryHealthStore } from './adapters/memory-health-store';
import { createHealthTracker, type HealthTracker, type TrackerLogger } from './domain/health-tracker';
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

/** How long start-up waits for Redis to accept the connection (the client's connect timeout). */
const REDIS_CONNECT_WAIT_MS = 2_000;

/**
 * Wires the breaker: store (Redis, or the one passed in), event bus (NATS, or
 * the one passed in), tracker, gRPC server, outcome consumer and the
 * OPEN→HALF_OPEN sweep. stop(): health NOT_SERVING → gRPC shutdown(grace) →
 * stop consuming → close the bus (drain) → quit Redis.
 */
export async function start(config: BreakerConfig, deps: Partial<BreakerDeps> = {}): Promise<BreakerService> {
  const logger = deps.logger ?? createServiceLogger('breaker', config.logLevel);
  const life = createLifecycle(logger);
  return life.starting(async () => {
    const metrics = createBreakerMetrics();
    /** Set once the tracker exists: Redis back from an outage is the truth again, and its state is republished. */
    let republish: () => void = () => {};
    let store = deps.store;
    if (!store) {
      // Circuit state lives in Redis; a breaker that cannot reach it at start has no state to serve.
      const redis = await connectRedis({ url: config.redisUrl, name: 'switchyard-breaker', logger, graceMs: REDIS_CONNECT_WAIT_MS, whileUnreachable: 'fail' });
      store = createFailoverHealthStore({
        shared: createRedisHealthStore({ redis, policy: config.policy, ownsConnection: true }),
        createLocal: () => createMemoryHealthStore({ policy: config.policy }),
        retryAfterMs: config.fallbackRetryMs,
        onModeChange: (mode, cause) => {
          metrics.modeChange(mode);
          if (mode === 'local') {
            logger.warn({ event: 'breaker_local_fallback', err: { message: (cause as Error)?.message } }, 'Redis unreachable: counting circuits in this replica\'s memory');
          } else {
            logger.info({ event: 'breaker_shared_state' }, 'Redis reachable again: circuit state from Redis, republished');
            republish();
          }
        },
      });
    }
    const ownedStore = store;
    life.onStop('health store', () => ownedStore.close());

    const bus =
      deps.bus ??
      (await createNatsEventBus({ url: config.natsUrl, name: 'switchyard-breaker', logger }).catch((err: Error) => {
        throw new Error(`nats ${config.natsUrl}: ${err.message}`, { cause: err });
      }));
    life.onStop('event bus', () => bus.close());
    const kv = await bus.kv(KV_BUCKETS.health);
    const publisher = createHealthPublisher({
      bus,
      kv,
      logger,
      slowCallMs: (deployment) => slowCallMsFor(config.policy, deployment),
      raiseEpoch: (deployment, held) => ownedStore.raiseEpoch(deployment, held),
    });
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
      ...(deps.clock ? { clock: deps.clock } : {}),
    });
    const tracker: HealthTracker = {
      ...tracked,
      async report(id, outcome, options) {
        const result = await tracked.report(id, outcome, options);
        if (!result.duplicate) metrics.outcome(id.deployment, outcome.errorClass, outcome.latencyMs);
        return result;
      },
      async reportBatch(id, outcomes) {
        const results = await tracked.reportBatch(id, outcomes);
        results.forEach((r, i) => {
          if (!r.duplicate) metrics.outcome(id.deployment, outcomes[i]!.errorClass, outcomes[i]!.latencyMs);
        });
        return results;
      },
    };
    republish = () => void tracker.resync().catch((err: Error) => logger.warn({ err: { message: err.message } }, 'health republish after Redis returned failed'));
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
          defaultProbeTtlMs: (deployment) => config.probeTtlMsByDeployment[deployment] ?? config.probeTtlMs,
          slowCallMs: (deployment) => slowCallMsFor(config.policy, deployment),
        }),
      ],
    });
    life.onStop('grpc server', () => server.shutdown(config.shutdownGraceMs));

    // Back from a NATS outage: put Redis's truth into KV so routers resynchronise from it.
    let lastStatus = bus.status();
    const offStatus = bus.onStatusChange((status) => {
      if (status === 'connected' && lastStatus !== 'connected') {
        void tracker.resync().then(() => logger.info({ event: 'health_resync' }, 'health KV resynchronised after a NATS outage'));
      }
      lastStatus = status;
    });
    life.onStop('nats status watch', () => offStatus());

    const consumer = await startOutcomeConsumer({ bus, tracker, logger, ackWaitMs: config.outcomeAckWaitMs });
    life.onStop('outcome consumer', () => consumer.stop());

    let sweeping: Promise<void> = Promise.resolve();
    const timer =
      config.sweepIntervalMs > 0
        ? setInterval(() => {
            sweeping = sweeping.then(() => tracker.sweep()).catch((err) => logger.warn({ err }, 'health sweep failed'));
          }, config.sweepIntervalMs)
        : undefined;
    timer?.unref();
    life.onStop('health sweep', async () => {
      if (timer) clearInterval(timer);
      await sweeping;
    });

    return { port: server.port, stop: life.stop };
  });
}
