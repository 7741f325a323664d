import { JobsService, RouterService } from '@switchyard/contracts';
import { createClient, createGrpcServer, serviceRegistration } from '@switchyard/grpc';
import { createNatsEventBus, type EventBus } from '@switchyard/nats';
import type { RunningService } from '@switchyard/runtime';
import { createLogger } from '@switchyard/telemetry';
import { systemClock, type Clock } from '@switchyard/util';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { createJobsHandlers } from './adapters/grpc-jobs-handlers';
import { createNatsJobStore } from './adapters/job-store';
import { createJobsMetrics } from './adapters/jobs-metrics';
import { createKeySeal } from './adapters/key-seal';
import { createWorkQueue } from './adapters/work-queue';
import type { JobsConfig } from './config';
import { LaneSet } from './domain/lanes';
import { JobTransitions } from './job-transitions';
import { JobWorker, type WorkerLogger, type WorkerStats } from './worker';

export type JobsLogger = WorkerLogger;

export interface JobsDeps {
  logger: JobsLogger;
  clock: Clock;
}

export interface RunningJobsService extends RunningService {
  stats: WorkerStats;
}

/** Wires config → NATS (queue, KV, events) → worker + handlers → gRPC server; tests and main share it. */
export async function start(config: JobsConfig, deps: Partial<JobsDeps> = {}): Promise<RunningJobsService> {
  const logger: JobsLogger = deps.logger ?? createLogger('switchyard-jobs', { level: config.logLevel });
  const clock = deps.clock ?? systemClock;
  let nc: NatsConnection | undefined;
  let bus: EventBus | undefined;
  const router = createClient(RouterService, config.routerAddr);
  try {
    nc = await connect({
      servers: config.natsUrl,
      name: 'switchyard-jobs',
      // Jobs survive a NATS outage: keep reconnecting; unacked jobs are redelivered.
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      reconnectJitter: 100,
      timeout: 5_000,
      // Every request (several per job) would otherwise build two Error objects up front just for their stack traces.
      noAsyncTraces: true,
    });
    bus = await createNatsEventBus({ nc, name: 'switchyard-jobs', logger });
    const tenants = Object.keys(config.switchyard.tenants);
    const [store, queue] = await Promise.all([
      createNatsJobStore(nc, { ttlMs: config.resultTtlMs }),
      createWorkQueue(nc, { tenants, ackWaitMs: config.ackWaitMs, maxAgeMs: config.resultTtlMs }),
    ]);
    const lanes = new LaneSet(tenants);
    const seal = createKeySeal(config.keySecret);
    const metrics = createJobsMetrics(tenants);
    const transitions = new JobTransitions(store, bus, clock, logger, metrics);
    const worker = new JobWorker({ queue, store, transitions, lanes, router, seal, clock, logger, metrics }, config);
    metrics.watch(() => lanes.all(), () => worker.stats.inFlight, () => clock.now());
    await worker.refreshDepths();
    const implementation = createJobsHandlers({ config: config.switchyard, store, queue, lanes, transitions, worker, seal, clock, options: config, metrics });
    const server = await createGrpcServer({
      host: config.grpcHost,
      port: config.grpcPort,
      services: [serviceRegistration(JobsService, implementation)],
      logger,
    });
    worker.start();
    const conn = nc;
    const ownedBus = bus;
    let stopped: Promise<void> | undefined;
    return {
      port: server.port,
      stats: worker.stats,
      stop() {
        stopped ??= (async () => {
          await server.shutdown(config.shutdownGraceMs);
          await worker.stop(config.shutdownGraceMs);
          await ownedBus.close();
          router.close();
          await conn.drain().catch(() => conn.close());
        })();
        return stopped;
      },
    };
  } catch (err) {
    router.close();
    await bus?.close().catch(() => undefined);
    await nc?.close().catch(() => undefined);
    throw err;
  }
}
