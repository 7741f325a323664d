import type { CircuitRecord, CircuitStateName, DeploymentIdentity, ForceInput, OutcomeInput, Transition } from './circuit';

/**
 * Where circuit state lives. Every method is one atomic step (one Lua script
 * in Redis) that first materialises a due OPEN→HALF_OPEN, so a transition is
 * returned to exactly one caller cluster-wide: that caller publishes it.
 *
 * Implementations: adapters/redis-health-store.ts (production, shared by all
 * replicas) and adapters/memory-health-store.ts (embedded demo), held to the
 * same behaviour by test/health-store.contract.ts.
 */
export interface HealthStore {
  /** Applies one attempt outcome. Outcomes with an already-seen `eventId` are ignored (`duplicate`). */
  record(id: DeploymentIdentity, outcome: OutcomeInput & { eventId?: string }): Promise<StoreStep & { duplicate: boolean }>;
  /**
   * Applies several outcomes of one deployment, in order, as one atomic step
   * (one script call): the same state and transitions as recording each in
   * turn. One step per outcome; a step without a transition carries the final record.
   */
  recordBatch(id: DeploymentIdentity, outcomes: Array<OutcomeInput & { eventId?: string }>): Promise<Array<StoreStep & { duplicate: boolean }>>;
  /** Reads one deployment (materialising a due transition); undefined if never seen. */
  observe(deployment: string): Promise<StoreStep | undefined>;
  /** Operator override (creates the record if needed). */
  force(id: DeploymentIdentity, input: ForceInput): Promise<StoreStep>;
  /**
   * A cluster-wide half-open probe permit (up to `halfOpenProbes` at once; each
   * expires after `ttlMs` so a crashed prober cannot wedge it). A permit is one
   * probe call: its holder asking again is refused unless `extend`.
   */
  acquireProbe(deployment: string, holderId: string, ttlMs: number, extend?: boolean): Promise<ProbeResult>;
  /**
   * Lifts the deployment's epoch to `held + 1` when it is below `held` (and
   * returns the record), undefined when there is no record. Consumers ignore
   * any state not newer than the epoch they hold; a store that lost its
   * records (Redis restarted empty) counts epochs from 0 again, and its states
   * would be ignored until they passed the old ones.
   */
  raiseEpoch(deployment: string, held: number): Promise<StoreStep | undefined>;
  /** Every deployment with a record, sorted. */
  deployments(): Promise<string[]>;
  /**
   * Deployments last seen OPEN with a deadline, for the sweep that makes
   * OPEN→HALF_OPEN happen without traffic. May contain stale entries (the
   * sweep observes each one and the store drops those no longer OPEN).
   */
  openDeployments(): Promise<string[]>;
  close(): Promise<void>;
}

export interface StoreStep {
  record: CircuitRecord;
  transition?: Transition;
  /** An OPEN→HALF_OPEN materialised by the same call just before `transition` (publish it first). */
  observed?: Transition;
  /** The instant (store time) the step was taken at; effective state is computed against it. */
  now: number;
}

export interface ProbeResult {
  granted: boolean;
  /** Current holder ('' if none). */
  holderId: string;
  /** Permit expiry (0 if none). */
  expiresAt: number;
  /** Effective state after the call; CLOSED for a deployment never seen. */
  state: CircuitStateName;
  /** Present when this call materialised OPEN→HALF_OPEN. */
  step?: StoreStep;
}

/** How long an outcome's event_id is remembered for de-duplication (NATS redelivery, NATS+gRPC double report). */
export const EVENT_DEDUP_MS = 10 * 60_000;
