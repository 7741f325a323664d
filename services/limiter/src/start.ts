import { createGrpcServer } from '@switchyard/grpc';
import { fromBinary } from '@bufbuild/protobuf';
import { QuotaEventKind, QuotaEventSchema } from '@switchyard/contracts';
import { type EventBus, PRESENCE_SUBJECTS, createNatsEventBus, createReplicaPresence, subjects } from '@switchyard/nats';
import { connectRedis } from '@switchyard/redis';
import { type RunningService, createLifecycle } from '@switchyard/runtime';
import { type Logger, createLogger } from '@switchyard/telemetry';
import type { Clock } from '@switchyard/util';
import type { LimiterConfig } from './config';
import { createLimiter } from './domain/limiter';
import type { QuotaStore } from './domain/quota-store';
import { createLimiterHandlers } from './adapters/grpc-handlers';
import { createQuotaPublisher } from './adapters/quota-publisher';
import { createRedisQuotaStore } from './adapters/redis-quota-store';
import { createFailoverQuotaStore } from './adapters/failover-quota-store';
import { type LimiterMetrics, createLimiterMetrics } from './adapters/limiter-metrics';
import { createMemoryQuotaStore } from './adapters/memory-quota-store';
import { createSlotFeed } from './adapters/slot-feed';

/** What the embedded demo (or a test) may pass in instead of the real connections. */
export interface LimiterDeps {
  bus: EventBus;
  /** e.g. createMemoryQuotaStore({ clock }) for the embedded demo. */
  store: QuotaStore;
  logger: Logger;
  metrics: LimiterMetrics;
  /** The replica's local clock (tests inject a skewed one; admission decisions use Redis TIME regardless). */
  clock: Clock;
}

/** How long start() waits for Redis before serving from the local fallback. */
const REDIS_STARTUP_WAIT_MS = 2_000;

export type LimiterService = RunningService;

/**
 * Wires the limiter: quota store (Redis, or the one passed in), event bus
 * (NATS, or the one passed in), domain, gRPC server. stop(): health
 * NOT_SERVING → gRPC shutdown(grace) → close the bus (drain) → quit Redis.
 */
export async function start(config: LimiterConfig, deps: Partial<LimiterDeps> = {}): Promise<LimiterService> {
  const logger = deps.logger ?? createLogger('switchyard-limiter', { level: config.logLevel });
  const life = createLifecycle(logger);
  return life.starting(async () => {
    const bus = deps.bus ?? (await createNatsEventBus({ url: config.natsUrl, name: 'switchyard-limiter', logger }));
    life.onStop('event bus', () => bus.close());
    const metrics = deps.metrics ?? createLimiterMetrics(undefined, { deployments: Object.keys(config.gateway.deployments) });

    let store = deps.store;
    // Registered next to the bus so it closes after everything that uses it (cleanups run in reverse).
    life.onStop('quota store', () => store?.close());
    if (!store) {
      const client = { url: config.redisUrl, name: 'switchyard-limiter', logger, commandTimeoutMs: config.redisTimeoutMs };
      const redis = await connectRedis({ ...client, graceMs: REDIS_STARTUP_WAIT_MS, whileUnreachable: 'Redis unreachable: limiting from the local share until it is back' });
      const presence = await createReplicaPresence({ bus, subject: PRESENCE_SUBJECTS.limiter, intervalMs: config.heartbeatMs });
      life.onStop('replica presence', () => presence.close());
      store = createFailoverQuotaStore({
        shared: createRedisQuotaStore({ redis, ownsClient: true, windowMs: config.windowMs, dayWindowMs: config.dayWindowMs }),
        local: createMemoryQuotaStore({ windowMs: config.windowMs, dayWindowMs: config.dayWindowMs }),
        liveReplicas: presence.live,
        retryAfterMs: config.fallbackRetryMs,
        onModeChange: (mode, cause) => {
          metrics.modeChange(mode);
          if (mode === 'local') {
            logger.warn({ event: 'limiter_local_fallback', replicas: presence.live(), err: { message: (cause as Error)?.message } }, 'Redis unreachable: limiting from this replica’s share (limit ÷ live replicas)');
          } else logger.info({ event: 'limiter_shared_accounting' }, 'Redis reachable again: back to shared accounting');
        },
      });
    }

    const slotFeed = config.settings.concurrencyWakeup !== false ? createSlotFeed(bus) : undefined;
    const limiter = createLimiter({
      store,
      config: config.gateway,
      publisher: createQuotaPublisher(bus),
      settings: config.settings,
      ...(slotFeed ? { slotFeed } : {}),
      ...(deps.clock ? { clock: deps.clock } : {}),
      onBackgroundError: (err, what) => logger.warn({ err: { message: (err as Error).message }, what }, 'limiter background step failed'),
      onPublishError: (err, change) =>
        logger.warn(
          { err: { message: (err as Error).message }, deployment: change.key.id, kind: change.kind, epoch: change.epoch },
          'quota change not published (state is in the store; routers catch up on the next change)',
        ),
    });

    life.onStop('recovery timers', () => limiter.close());
    // Utilisation against the provider's published limit (before headroom), so 0.8 is the seeds' 80 % line.
    const keys = [
      ...Object.keys(config.gateway.deployments).map((id) => ({ kind: 'deployment' as const, id })),
      ...Object.keys(config.gateway.tenants).map((id) => ({ kind: 'tenant' as const, id })),
    ];
    metrics.watchUtilisation(async () => {
      const rows = [];
      for (const ref of keys) {
        const { state } = await limiter.getQuota(ref);
        const published = ref.kind === 'deployment' ? config.gateway.deployments[ref.id]!.limits : undefined;
        for (const u of state.usage) {
          const limit = published ? ((published as Record<string, number | undefined>)[u.dimension] ?? u.limit) : u.limit;
          rows.push({ scope: ref.kind, key: ref.id, kind: u.dimension, used: u.used, limit });
        }
      }
      return rows;
    });
    // Exhaustion and cooldowns seen by other replicas: watch for their end too, so
    // a RECOVERED event is published even if the replica that saw them is gone.
    const recoveryFeed = await bus.subscribe(subjects.all('quota'), (msg) => {
      const event = fromBinary(QuotaEventSchema, msg.data);
      const id = event.deployment?.deployment;
      if (!id) return;
      if (event.kind === QuotaEventKind.EXHAUSTED || event.kind === QuotaEventKind.COOLDOWN_STARTED) limiter.watchRecovery(id, Number(event.untilUnixMs));
    });
    life.onStop('quota feed', () => recoveryFeed.unsubscribe());
    // Slots freed by a Settle on another replica wake the waiters here.
    if (slotFeed) {
      const freedFeed = await slotFeed.listen((keyNames) => limiter.slotsFreed(keyNames));
      life.onStop('slot feed', () => freedFeed.unsubscribe());
    }

    const server = await createGrpcServer({
      host: config.grpcHost,
      port: config.grpcPort,
      logger,
      services: [createLimiterHandlers({ limiter, metrics, ...(deps.clock ? { clock: deps.clock } : {}) })],
      auth: { internalToken: config.internalToken, operatorToken: config.operatorToken },
      channelOptions: { 'grpc.max_receive_message_length': config.grpcMaxReceiveBytes },
    });
    life.onStop('grpc server', () => server.shutdown(config.shutdownGraceMs));

    return { port: server.port, stop: life.stop };
  });
}
