import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { KeyKind, RouterService, type CompleteRequest } from '@switchyard/contracts';
import { createGrpcServer, serviceRegistration, status, type CallContext } from '@switchyard/grpc';
import { createNatsEventBus, createReplicaPresence, PRESENCE_SUBJECTS, type EventBus } from '@switchyard/nats';
import { createProviderAdapter, resolveCapabilities, type ProviderAdapter } from '@switchyard/providers';
import { createLifecycle, type RunningService } from '@switchyard/runtime';
import { createLogger } from '@switchyard/telemetry';
import { loadTokenizer } from '@switchyard/tokens';
import { sleep as realSleep, systemClock, type Clock } from '@switchyard/util';
import { startHealthReplica } from './adapters/health-replica';
import { createBreakerPeer } from './adapters/breaker-peer';
import { watchBudgetEvents } from './adapters/budget-events';
import { createLeasedBudgetPeer, leaseCeiling } from './adapters/budget-leases';
import { createBudgetPeer } from './adapters/budget-peer';
import { createCachePeer } from './adapters/cache-peer';
import { createLimiterPeer, type LimiterLeasing } from './adapters/limiter-peer';
import { createQuotaLeases, leaseCaps } from './adapters/quota-leases';
import { createLimiterFallback } from './adapters/limiter-fallback';
import { createOutcomePublisher, ensureOutcomeStream } from './adapters/outcome-publisher';
import { createPeers, type Peers } from './adapters/peers';
import { startQuotaReplica } from './adapters/quota-replica';
import { createRouterMetrics, type RouterMetrics } from './adapters/router-metrics';
import { timedPeers } from './adapters/timed-peers';
import { createBackgroundTasks } from './background-tasks';
import { createSettleRetry } from './settle-retry';
import type { RouterConfig } from './config';
import type { Rng } from './domain/candidates';
import { createLatencyEstimate } from './domain/latency-estimate';
import { breakerOutcome, createLocalBreaker } from './domain/local-breaker';
import { createRetryBudget } from './domain/retry-budget';
import { createCallSteps } from './handlers/call-steps';
import { createCompleteHandler } from './handlers/complete';
import { startLagSampler } from './handlers/event-loop-lag';
import { createRecentLoopDelay } from './handlers/loop-delay';
import { countArrivals, createAdaptiveGate, createInFlightGate, refuseArrivalsWhenFull, refuseWhenFull, SHED_WINDOW_MS, shedExcess, type InFlightGate } from './handlers/load-shed';
import { firstAttemptInputTokens } from './handlers/prepare-call';
import { createRunQueue, worstOf, type RunQueue } from './handlers/run-queue';
import { createStreamCompleteHandler } from './handlers/stream-complete';
import type { KeyOwner, RouterContext, RouterLogger } from './router-context';
import { startEdge } from './edge/edge';

/** The router's listeners: gRPC `port`, and the HTTP edge's `httpPort`. */
export interface RunningRouter extends RunningService {
  httpPort: number;
}

/** What start() can be given instead of connecting on its own (embedded demo, tests). */
export interface RouterDeps {
  /** Event bus for the health/quota replicas and outcome events; default NATS at config.natsUrl. */
  bus: EventBus;
  /** gRPC clients of cache, budget, limiter, breaker; default from the *_ADDR variables. */
  peers: Peers;
  /** Provider adapters by deployment id; default one createProviderAdapter per configured deployment. */
  adapters: ReadonlyMap<string, ProviderAdapter>;
  clock: Clock;
  /** Candidate weighting and retry jitter; default Math.random. */
  rng: Rng;
  /** Backoff waits; tests inject one that does not wait. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  logger: RouterLogger;
}

function keyOwners(config: RouterConfig): Map<string, KeyOwner> {
  const keys = new Map<string, KeyOwner>();
  for (const [tenantId, tenant] of Object.entries(config.switchyard.tenants)) {
    for (const key of tenant.apiKeys) keys.set(key.sha256, { tenantId, tenant, apiKeyId: key.id });
  }
  return keys;
}

/**
 * Readiness: the peers that do not answer a cheap read within the peer
 * deadline. Any answer counts, an error status too (only a dead or silent peer
 * is unreachable).
 */
async function unreachablePeers(peers: Peers, deadlineMs: number): Promise<string[]> {
  const reachable = (p: Promise<unknown>) =>
    p.then(
      () => true,
      (err: { code?: unknown }) => typeof err?.code === 'number' && err.code !== status.UNAVAILABLE && err.code !== status.DEADLINE_EXCEEDED,
    );
  const opts = { deadlineMs };
  const checks = {
    limiter: reachable(peers.limiter.getQuota({ key: { kind: KeyKind.DEPLOYMENT, id: 'readyz' } }, opts)),
    breaker: reachable(peers.breaker.getHealth({ deployment: 'readyz' }, opts)),
    budget: reachable(peers.budget.getBudget({ tenant: 'readyz' }, opts)),
    cache: reachable(peers.cache.lookup({ key: 'readyz' }, opts)),
  };
  const results = await Promise.all(Object.entries(checks).map(async ([name, ok]) => [name, await ok] as const));
  return results.filter(([, ok]) => !ok).map(([name]) => name);
}

function createAdapters(config: RouterConfig): Map<string, ProviderAdapter> {
  const adapters = new Map<string, ProviderAdapter>();
  for (const [name, d] of Object.entries(config.switchyard.deployments)) {
    const apiKey = config.providerKeys[name];
    if (!apiKey) throw new Error(`deployments.${name}.apiKey: not resolved (${d.apiKey})`);
    adapters.set(
      name,
      createProviderAdapter({
        name,
        provider: d.provider,
        baseUrl: d.baseUrl,
        model: d.model,
        apiKey,
        ...(d.apiVersion ? { apiVersion: d.apiVersion } : {}),
        nativeJsonSchema: resolveCapabilities(d.provider, d.capabilities).jsonSchema,
      }),
    );
  }
  return adapters;
}

/** ROUTER_QUOTA_LEASES: the lease book the limiter peer admits from (see adapters/quota-leases.ts). */
function quotaLeasing(config: RouterConfig): { leasing?: LimiterLeasing } {
  if (!config.quotaLeases) return {};
  // Counted from grant + lease_ms: a lease is a small part of the window it sits in.
  const leaseMs = Math.max(1, Math.min(config.quotaLeaseMs, Math.floor(config.limiterWindowMs / 12)));
  // Settled before the reservation expires, even with a call still running (charged at its estimate then).
  const reservationTtlMs = 60_000;
  // Wall time, whatever clock the calls run on: a lease's window is counted on the limiter's real clock.
  const book = createQuotaLeases({ clock: systemClock, useMs: leaseMs, holdMs: reservationTtlMs - 5_000, caps: leaseCaps(config.switchyard) });
  return { leasing: { book, leaseMs, reservationTtlMs, sweepMs: Math.max(5, Math.floor(leaseMs / 4)) } };
}

/**
 * Wires the router: replicas of health and quota state (KV watch), peer
 * clients, provider adapters, the gRPC server. Used unchanged by main.ts and
 * the integration tests. stop(): health NOT_SERVING → in-flight calls finish →
 * pending accounting (settle/commit/store/outcomes) drains → replicas stop →
 * the bus and peer clients close (only those start() created).
 */
/**
 * The in-flight bound (README "Load shedding"): adaptive to the event loop's
 * delay and the run queue's wait when ROUTER_SHED_LAG_MS is set, else
 * ROUTER_MAX_IN_FLIGHT fixed; and the run queue admitted calls take turns in
 * (ROUTER_SLICE_MS). Its windows run on the monotonic clock, not the router's
 * (tests may hold that one still).
 */
function inFlightGate(
  config: RouterConfig,
  lifecycle: { onStop(name: string, stop: () => unknown): void },
  metrics: Pick<RouterMetrics, 'turnWait'>,
): { gate: InFlightGate; queue?: RunQueue } {
  const queue = config.sliceMs > 0 ? createRunQueue(config.sliceMs, () => performance.now(), (ms) => metrics.turnWait(ms / 1000)) : undefined;
  if (config.shedLagMs === 0 || config.maxInFlight === 0) return { gate: createInFlightGate(config.maxInFlight), ...(queue ? { queue } : {}) };
  const lag = startLagSampler();
  lifecycle.onStop('event-loop lag sampler', () => lag.stop());
  const gate = createAdaptiveGate(
    { max: config.maxInFlight, min: Math.min(config.minInFlight, config.maxInFlight), targetLagMs: config.shedLagMs, windowMs: SHED_WINDOW_MS },
    { now: () => performance.now() },
    queue ? worstOf(lag, queue) : lag,
  );
  return { gate, ...(queue ? { queue } : {}) };
}

/**
 * The event-loop delay calls keep back from their deadlines (handlers/loop-delay.ts),
 * from its own sampler, on the monotonic clock like the gate's.
 */
function recentLoopDelay(lifecycle: { onStop(name: string, stop: () => unknown): void }) {
  const lag = startLagSampler();
  lifecycle.onStop('event-loop delay sampler (deadlines)', () => lag.stop());
  return createRecentLoopDelay(lag, { now: () => performance.now() });
}

/** How long start-up keeps asking a peer's channel to connect before saying it is not there. */
const PEER_CONNECT_AT_START_MS = 10_000;

export async function start(config: RouterConfig, deps: Partial<RouterDeps> = {}): Promise<RunningRouter> {
  const logger: RouterLogger = deps.logger ?? createLogger('router', { level: config.logLevel });
  const adapters = deps.adapters ?? createAdapters(config);
  const lifecycle = createLifecycle(logger);
  return lifecycle.starting(async () => {
    const bus = deps.bus ?? (await createNatsEventBus({ url: config.natsUrl, name: 'switchyard-router', logger }));
    if (!deps.bus) lifecycle.onStop('NATS', () => bus.close());
    await ensureOutcomeStream(bus).catch((err: Error) => logger.warn({ err: { message: err.message } }, 'could not ensure the outcomes stream; outcomes may fall back to breaker Report'));
    const health = await startHealthReplica(bus, logger);
    lifecycle.onStop('health replica', () => health.stop());
    // Bound below, once the limiter peer exists: a cooldown, exhaustion or unavailable mark revokes its quota leases.
    let revokeLeases: (deployment: string) => void = () => {};
    const quota = await startQuotaReplica(bus, logger, (deployment, e) => {
      if (e.unavailable || e.cooldownUntil > Date.now() || e.exhaustedUntil > Date.now()) revokeLeases(deployment);
    });
    lifecycle.onStop('quota replica', () => quota.stop());
    const routers = await createReplicaPresence({ bus, subject: PRESENCE_SUBJECTS.router, intervalMs: config.heartbeatMs, ...(deps.clock ? { clock: deps.clock } : {}) });
    lifecycle.onStop('router presence', () => routers.close());
    const ownsPeers = !deps.peers;
    const metrics = createRouterMetrics(config.switchyard, undefined, { maxFeatures: config.metricsMaxFeatures });
    const untimedPeers =
      deps.peers ??
      createPeers(config);
    if (ownsPeers) {
      let peersClosed = false;
      lifecycle.onStop('peer clients', () => {
        peersClosed = true;
        untimedPeers.close();
      });
      // Connected while the router starts, so the first calls after a deploy do not pay name resolution
      // and handshakes inside PEER_DEADLINE_MS. A peer still down is each call's fallback, as later.
      for (const [name, client] of Object.entries({ limiter: untimedPeers.limiter, budget: untimedPeers.budget, cache: untimedPeers.cache, breaker: untimedPeers.breaker })) {
        client.connect(PEER_CONNECT_AT_START_MS).catch((err: Error) => {
          if (!peersClosed) logger.warn({ peer: name, err: { message: err.message } }, 'peer not reachable while the router started; calls use its fallback until it is');
        });
      }
    }
    const peers = timedPeers(untimedPeers, metrics);
    const tasks = createBackgroundTasks(logger);
    const clock = deps.clock ?? systemClock;
    // Accounting retries run on wall time against real peers: deps.clock, sleep and rng
    // shape the caller's attempt loop (tests record its waits, seed its choices), not this.
    const settleRetry = createSettleRetry({ clock: systemClock, sleep: realSleep, rng: Math.random, windowMs: config.settleRetryWindowMs });
    const localBreaker = createLocalBreaker({
      consecutiveFailures: config.switchyard.defaults.breaker.consecutiveFailures,
      openMs: config.switchyard.defaults.breaker.openMs,
      clock,
    });
    const limiterFallback = createLimiterFallback({
      gateway: config.switchyard,
      clock,
      windowMs: config.limiterWindowMs,
      retryMs: config.limiterRetryMs,
      // Any answer from the limiter process counts (an auth or argument error too): only a dead or silent one keeps the share.
      probe: (deployment) =>
        peers.limiter.getQuota({ key: { kind: KeyKind.DEPLOYMENT, id: deployment } }, { deadlineMs: config.peerDeadlineMs }).then(
          () => true,
          (err: { code?: unknown }) => typeof err?.code === 'number' && err.code !== status.UNAVAILABLE && err.code !== status.DEADLINE_EXCEEDED,
        ),
      liveRouters: routers.live,
      logger,
    });
    const peerDeps = { clock, logger, tasks, peerDeadlineMs: config.peerDeadlineMs };
    const perCallBudget = createBudgetPeer({ client: peers.budget, ...peerDeps, settleRetry });
    const budgetLeases = config.budgetLeases
      ? createLeasedBudgetPeer({
          inner: perCallBudget,
          clock,
          leaseMs: config.budgetLeaseMs,
          ceilingMicros: (tenant) => leaseCeiling(config.switchyard.tenants[tenant]?.budgets ?? [], config.budgetLeaseCapPercent),
        })
      : undefined;
    if (budgetLeases) {
      const events = await watchBudgetEvents(bus, logger, (tenant) => budgetLeases.revoke(tenant));
      lifecycle.onStop('budget events', () => events.unsubscribe());
    }
    const { ttlMs, staleTtlMs } = config.switchyard.defaults.cache;
    const loopDelay = recentLoopDelay(lifecycle);
    // One bound over both RPCs and both edges (gRPC, HTTP): a stream holds its place until it ends.
    const { gate, queue: runQueue } = inFlightGate(config, lifecycle, metrics);
    const inFlight = countArrivals(gate);
    const ctx: RouterContext = {
      gateway: config.switchyard,
      keys: keyOwners(config),
      adapters,
      budget: budgetLeases ?? perCallBudget,
      limiter: createLimiterPeer({ client: peers.limiter, ...peerDeps, settleRetry, fallback: limiterFallback, ...quotaLeasing(config) }),
      cache: createCachePeer({ client: peers.cache, ...peerDeps, settings: { ttlMs, staleTtlMs, idempotencyWindowMs: config.idempotencyWindowMs } }),
      breaker: createBreakerPeer({
        client: peers.breaker,
        ...peerDeps,
        replicaId: config.replicaId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
      }),
      health,
      quota,
      outcomes: createOutcomePublisher({
        bus,
        breaker: peers.breaker,
        tasks,
        logger,
        onHealth: (h) => health.apply(h),
        onOutcome: (o) => localBreaker.record(o.deployment?.deployment ?? '', breakerOutcome(o.errorClass)),
        batching: { windowMs: config.outcomeBatchMs, maxSize: config.outcomeBatchMax },
      }),
      localBreaker,
      tasks,
      clock,
      rng: deps.rng ?? Math.random,
      sleep: deps.sleep ?? realSleep,
      logger,
      defaultMaxTokens: config.defaultMaxTokens,
      probesInFlight: new Set(),
      admissionMaxWaitMs: config.admissionMaxWaitMs,
      retryBudget: createRetryBudget(
        { ratio: config.retryBudgetPercent / 100, minPerSecond: config.retryBudgetMinPerSecond, windowMs: config.retryBudgetWindowMs },
        clock,
      ),
      latency: createLatencyEstimate(),
      metrics,
      loopDelay,
      ...(runQueue ? { turn: () => runQueue.turn() } : {}),
    };
    revokeLeases = (deployment) => ctx.limiter.revokeLeases(deployment);
    metrics.watchNats(() => !ctx.outcomes.sharedHealthReachable());
    loadTokenizer(); // every call estimates its tokens: build the tables before the first one
    const steps = createCallSteps(ctx);
    const shed = () => metrics.shed();
    metrics.watchInFlight(inFlight);
    const calls = {
      complete: shedExcess(inFlight, config.maxInFlight, createCompleteHandler(steps), shed, runQueue),
      streamComplete: shedExcess(inFlight, config.maxInFlight, createStreamCompleteHandler(steps), shed, runQueue),
    };
    // The HTTP edge's count_tokens: the estimate a call would reserve, from the call's own preparation.
    const countInputTokens = (req: CompleteRequest, call: CallContext) => firstAttemptInputTokens(steps.prepare(req, call.metadata, undefined));
    const server = await createGrpcServer({
      host: config.grpcHost,
      port: config.grpcPort,
      logger,
      services: [serviceRegistration(RouterService, calls)],
      // An oversized request is refused by grpc-js from its length prefix, before it is parsed or reaches a handler.
      channelOptions: { 'grpc.max_receive_message_length': config.grpcMaxReceiveBytes },
      // A call arriving while every place is taken is refused as it arrives, at HTTP/2's cost only.
      ...(config.maxInFlight > 0 ? { refuseOnArrival: refuseArrivalsWhenFull(inFlight, shed) } : {}),
    });
    // The HTTP edge calls the same handlers in process (no extra hop).
    const edge = await startEdge(
      { gateway: config.switchyard, keys: ctx.keys, calls: { ...calls, countInputTokens }, refuseWhenFull: () => refuseWhenFull(inFlight, shed), logger, peersReady: () => unreachablePeers(peers, config.peerDeadlineMs) },
      { host: config.httpHost, port: config.httpPort, maxBodyBytes: config.httpMaxBodyBytes, headersTimeoutMs: config.httpHeadersTimeoutMs, requestTimeoutMs: config.httpRequestTimeoutMs },
    ).catch(async (err: unknown) => {
      await server.shutdown(0);
      throw err;
    });
    // Registered last, so it runs first: no new calls, in-flight ones finish, their accounting drains.
    lifecycle.onStop('servers and pending accounting', async () => {
      edge.stopping();
      await Promise.all([server.shutdown(config.shutdownGraceMs), edge.close(config.shutdownGraceMs)]);
      // Calls are over: every budget lease ends now, its Commit joins the accounting drained below.
      budgetLeases?.close();
      // Accounting still retrying against dead peers gets one more grace, then stops
      // (its reservations expire charged); shutdown never waits a whole retry window.
      ctx.limiter.stop();
      const giveUp = setTimeout(() => settleRetry.stop(), config.shutdownGraceMs);
      // The outcomes of the last calls leave now rather than after their batch window (NATS closes after this step).
      ctx.outcomes.flush();
      await tasks.drain();
      clearTimeout(giveUp);
    });
    return { port: server.port, httpPort: edge.port, stop: lifecycle.stop };
  });
}
