import { type Clock, systemClock } from '@switchyard/util';
import type { CircuitRecord, CircuitStateName, DeploymentIdentity, OutcomeInput } from './circuit';
import { effectiveState, newCircuit } from './circuit';
import type { HealthStore, ProbeResult, StoreStep } from './health-store';

/** Where transitions go (NATS subject + KV bucket in production; see adapters/health-publisher.ts). */
export interface HealthPublisher {
  /**
   * Publishes a step's transition on `switchyard.health.<provider>.<deployment>`
   * and writes the new DeploymentHealth to the KV bucket. Call it only with the
   * step a store returned to this caller: the store hands each transition to
   * exactly one caller, so each is published once.
   */
  transition(step: StoreStep): Promise<void>;
  /** Writes the KV state without an event (epoch changed but the state did not, e.g. an override released). */
  state(step: StoreStep): Promise<void>;
}

export interface TrackerLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** A deployment's health at an instant: the record plus the state it reads as then. */
export interface HealthSnapshot {
  record: CircuitRecord;
  now: number;
  state: CircuitStateName;
}

export interface HealthTracker {
  /**
   * Applies one outcome (from NATS or the Report RPC). With `background`, it
   * answers once the state is stored and publishes the transition after, in
   * order per deployment: the Report RPC is the routers' path while NATS is
   * down, and must not wait on a publish that cannot complete.
   */
  report(
    id: DeploymentIdentity,
    outcome: OutcomeInput & { eventId?: string },
    options?: { background?: boolean },
  ): Promise<HealthSnapshot & { transitioned: boolean; duplicate: boolean }>;
  /**
   * Applies several outcomes of one deployment in order, in one store step
   * (one script call), and publishes each transition they made, in order,
   * before answering: the same state and events as `report` one by one.
   */
  reportBatch(id: DeploymentIdentity, outcomes: Array<OutcomeInput & { eventId?: string }>): Promise<Array<{ transitioned: boolean; duplicate: boolean }>>;
  /** undefined when the deployment was never seen and is not configured. */
  get(deployment: string): Promise<HealthSnapshot | undefined>;
  /** Every seen or configured deployment, by id. */
  list(): Promise<HealthSnapshot[]>;
  acquireProbe(deployment: string, holderId: string, ttlMs: number, extend?: boolean): Promise<ProbeResult>;
  /** undefined when the deployment is unknown (its provider, needed for the subject, is unknown too). */
  force(deployment: string, state: CircuitStateName | undefined, release: boolean, reason: string): Promise<HealthSnapshot | undefined>;
  /** Observes every deployment last seen OPEN so OPEN→HALF_OPEN is published without traffic. */
  sweep(): Promise<void>;
  /**
   * Writes every known deployment's current state (from Redis, the truth) to
   * the KV bucket: after a NATS outage, transitions made meanwhile never
   * reached KV, and routers resynchronise from KV.
   */
  resync(): Promise<void>;
}

/**
 * The breaker's use cases: store step, then publish whatever transition the
 * step returned to us. Transitions are returned by the store to exactly one
 * caller cluster-wide, so publishing here publishes each exactly once.
 */
export function createHealthTracker(options: {
  store: HealthStore;
  publisher: HealthPublisher;
  logger: TrackerLogger;
  /** Deployments from SWITCHYARD_CONFIG: known (CLOSED) before any outcome. */
  configured?: DeploymentIdentity[];
  /** Times snapshots of configured-but-unseen deployments; stores keep their own time. */
  clock?: Clock;
}): HealthTracker {
  const { store, publisher, logger } = options;
  const configured = new Map((options.configured ?? []).map((d) => [d.deployment, d]));
  const clock = options.clock ?? systemClock;

  async function publish(step: StoreStep): Promise<void> {
    // One call may have made two transitions (OPEN→HALF_OPEN, then the decision): one event each, in order.
    if (step.observed) await publishOne({ ...step, transition: step.observed, observed: undefined });
    await publishOne(step);
  }

  async function publishOne(step: StoreStep): Promise<void> {
    if (!step.transition) return;
    const t = step.transition;
    logger.info(
      { event: 'health_transition', deployment: t.deployment, from: t.from, to: t.to, reason: t.reason, epoch: t.epoch, forced: t.forced },
      `${t.deployment}: ${t.from} → ${t.to} (${t.reason})`,
    );
    try {
      await publisher.transition(step);
    } catch (err) {
      // The state in Redis is already the truth; readers and the next transition recover the rest.
      logger.error({ err, deployment: t.deployment, epoch: t.epoch }, 'could not publish health transition');
    }
  }

  // Publications of one deployment run one after another, awaited or not, so its events keep epoch order.
  const chains = new Map<string, Promise<void>>();
  function publishInOrder(step: StoreStep): Promise<void> {
    const key = step.record.deployment;
    const next = (chains.get(key) ?? Promise.resolve()).then(() => publish(step));
    chains.set(key, next);
    void next.finally(() => {
      if (chains.get(key) === next) chains.delete(key);
    });
    return next;
  }

  const snapshot = (step: StoreStep): HealthSnapshot => ({ record: step.record, now: step.now, state: effectiveState(step.record, step.now) });

  const fresh = (id: DeploymentIdentity): HealthSnapshot => {
    const t = clock.now();
    return { record: newCircuit(id, t), now: t, state: 'CLOSED' };
  };

  async function get(deployment: string): Promise<HealthSnapshot | undefined> {
    const step = await store.observe(deployment);
    if (step) {
      await publish(step);
      return snapshot(step);
    }
    const id = configured.get(deployment);
    return id ? fresh(id) : undefined;
  }

  return {
    async report(id, outcome, options) {
      const step = await store.record(id, outcome);
      const published = publishInOrder(step);
      if (!options?.background) await published;
      return { ...snapshot(step), transitioned: step.transition !== undefined, duplicate: step.duplicate };
    },

    async reportBatch(id, outcomes) {
      const steps = await store.recordBatch(id, outcomes);
      await Promise.all(steps.filter((s) => s.transition).map(publishInOrder));
      return steps.map((s) => ({ transitioned: s.transition !== undefined, duplicate: s.duplicate }));
    },

    get,

    async list() {
      const ids = new Set([...(await store.deployments()), ...configured.keys()]);
      const out: HealthSnapshot[] = [];
      for (const id of [...ids].sort()) {
        const s = await get(id);
        if (s) out.push(s);
      }
      return out;
    },

    async acquireProbe(deployment, holderId, ttlMs, extend) {
      const result = await store.acquireProbe(deployment, holderId, ttlMs, extend);
      if (result.step) await publish(result.step);
      else if (!result.granted && result.state === 'CLOSED') {
        // A router asks for a probe because the published health is not CLOSED,
        // while the store's is: the published state outlived the store's (Redis
        // came back without its records, or after the local fallback). Publish
        // the store's state; the epoch is lifted above the published one.
        const current = await store.observe(deployment);
        if (current) await publisher.state(current).catch((err) => logger.error({ err, deployment }, 'could not write health state'));
      }
      return result;
    },

    async force(deployment, state, release, reason) {
      const before = await store.observe(deployment);
      if (before) await publish(before);
      const id = configured.get(deployment) ?? before?.record;
      if (!id) return undefined;
      const step = await store.force({ deployment: id.deployment, provider: id.provider, model: id.model }, { state, release, reason });
      if (step.transition) await publish(step);
      else if (step.record.epoch !== (before?.record.epoch ?? 0)) {
        // The epoch moved without a state change (e.g. an override released): replicas still need the new value.
        await publisher.state(step).catch((err) => logger.error({ err, deployment }, 'could not write health state'));
      }
      return snapshot(step);
    },

    async resync() {
      for (const deployment of await store.deployments()) {
        try {
          const step = await store.observe(deployment);
          if (step) await publisher.state(step);
        } catch (err) {
          logger.warn({ err, deployment }, 'health resync failed for deployment');
        }
      }
    },

    async sweep() {
      for (const deployment of await store.openDeployments()) {
        try {
          const step = await store.observe(deployment);
          if (step) await publish(step);
        } catch (err) {
          logger.warn({ err, deployment }, 'health sweep failed for deployment');
        }
      }
    },
  };
}
