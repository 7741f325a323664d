import { fromBinary } from '@bufbuild/protobuf';
import { CircuitState, DeploymentHealthSchema, type DeploymentHealth } from '@switchyard/contracts';
import type { EventBus, KvWatcher } from '@switchyard/nats';
import { KV_BUCKETS } from '@switchyard/nats';

/** What the router needs from a deployment's health, decoded from the breaker's KV value. */
export interface HealthEntry {
  circuit: 'closed' | 'open' | 'half-open' | 'unknown';
  openUntil: number;
  slow: boolean;
  p50LatencyMs: number;
  epoch: bigint;
}

export interface HealthReplica {
  get(deployment: string): HealthEntry | undefined;
  /**
   * Applies a health value learnt another way than the KV watch (the breaker's
   * Report answer while NATS is down); the same epoch rule decides.
   */
  apply(health: DeploymentHealth): void;
  /** Number of deployments known. */
  size(): number;
  stop(): Promise<void>;
}

export interface ReplicaLogger {
  warn(obj: object, msg?: string): void;
}

function circuitName(state: CircuitState): HealthEntry['circuit'] {
  switch (state) {
    case CircuitState.CLOSED:
      return 'closed';
    case CircuitState.OPEN:
      return 'open';
    case CircuitState.HALF_OPEN:
      return 'half-open';
    default:
      return 'unknown';
  }
}

/**
 * Deployment id of a KV entry. The breaker keys by deployment id; the shared
 * `deploymentKey` helper spells `<provider>.<deployment>`. The value's own ref
 * is the authority, the key's last token the fallback, so either layout works.
 */
function deploymentOf(key: string, health: DeploymentHealth | undefined): string {
  if (health?.ref?.deployment) return health.ref.deployment;
  const dot = key.lastIndexOf('.');
  return dot >= 0 ? key.slice(dot + 1) : key;
}

/**
 * Local replica of `sy_health` (JetStream KV watch: every current value first,
 * then every change), so choosing a deployment costs no network hop. Values
 * carry a monotonic epoch; older or equal epochs are ignored, so duplicates and
 * reordering are harmless. Undecodable values are logged and skipped, never
 * fatal: the replica keeps its last known state.
 */
export async function startHealthReplica(bus: EventBus, logger: ReplicaLogger): Promise<HealthReplica> {
  const entries = new Map<string, HealthEntry>();
  const apply = (deployment: string, health: DeploymentHealth) => {
    const held = entries.get(deployment);
    if (held && held.epoch >= health.epoch && health.epoch !== 0n) return;
    entries.set(deployment, {
      circuit: circuitName(health.state),
      openUntil: Number(health.openUntilUnixMs),
      slow: health.degraded,
      p50LatencyMs: health.p50LatencyMs,
      epoch: health.epoch,
    });
  };
  const kv = await bus.kv(KV_BUCKETS.health);
  const watcher: KvWatcher = await kv.watch({
    onEntry(key, value) {
      if (value === null || value.length === 0) {
        entries.delete(deploymentOf(key, undefined));
        return;
      }
      let health: DeploymentHealth;
      try {
        health = fromBinary(DeploymentHealthSchema, value);
      } catch (err) {
        logger.warn({ bucket: KV_BUCKETS.health, key, err: (err as Error).message }, 'undecodable health value ignored');
        return;
      }
      apply(deploymentOf(key, health), health);
    },
  });
  return {
    get: (deployment) => entries.get(deployment),
    apply: (health) => {
      if (health.ref?.deployment) apply(health.ref.deployment, health);
    },
    size: () => entries.size,
    stop: () => watcher.stop(),
  };
}
