import { type Clock, systemClock } from '@switchyard/util';
import {
  type BreakerPolicy,
  type CircuitRecord,
  type DeploymentIdentity,
  type ForceInput,
  type OutcomeInput,
  type Step,
  DEFAULT_POLICY,
  policyFor,
  effectiveState,
  forceState,
  newCircuit,
  observe,
  probeAllowed,
  recordOutcome,
} from '../domain/circuit';
import { type HealthStore, type ProbeResult, type StoreStep, EVENT_DEDUP_MS } from '../domain/health-store';

/**
 * In-process HealthStore for the embedded demo (one process, one replica).
 * Runs the domain state machine directly; JavaScript's single thread gives the
 * atomicity that Lua gives in Redis.
 */
export function createMemoryHealthStore(options: { policy?: BreakerPolicy; clock?: Clock } = {}): HealthStore {
  const policy = options.policy ?? DEFAULT_POLICY;
  const clock = options.clock ?? systemClock;
  const circuits = new Map<string, CircuitRecord>();
  /** Probe permits per deployment: holder → expiry. */
  const probes = new Map<string, Map<string, number>>();
  const seen = new Map<string, number>();
  const open = new Set<string>();

  const commit = (step: Step, now: number): StoreStep => {
    circuits.set(step.record.deployment, step.record);
    if (step.transition) probes.delete(step.record.deployment);
    if (step.record.state === 'OPEN' && step.record.openUntil > 0) open.add(step.record.deployment);
    else open.delete(step.record.deployment);
    return { record: step.record, transition: step.transition, observed: step.observed, now };
  };

  const isDuplicate = (deployment: string, eventId: string | undefined, now: number): boolean => {
    if (!eventId) return false;
    for (const [k, exp] of seen) if (exp <= now) seen.delete(k);
    const key = `${deployment}\u0000${eventId}`;
    if (seen.has(key)) return true;
    seen.set(key, now + EVENT_DEDUP_MS);
    return false;
  };

  const recordOne = (id: DeploymentIdentity, outcome: OutcomeInput & { eventId?: string }): StoreStep & { duplicate: boolean } => {
    const now = clock.now();
    const current = circuits.get(id.deployment) ?? newCircuit(id, now);
    if (isDuplicate(id.deployment, outcome.eventId, now)) {
      return { ...commit(observe(current, now, policyFor(policy, id.deployment)), now), duplicate: true };
    }
    return { ...commit(recordOutcome(current, outcome, now, policyFor(policy, id.deployment)), now), duplicate: false };
  };

  return {
    async record(id: DeploymentIdentity, outcome: OutcomeInput & { eventId?: string }) {
      return recordOne(id, outcome);
    },

    async recordBatch(id, outcomes) {
      // Synchronous, so nothing interleaves: atomic like the Redis script.
      return outcomes.map((outcome) => recordOne(id, outcome));
    },

    async observe(deployment: string) {
      const current = circuits.get(deployment);
      if (!current) return undefined;
      const now = clock.now();
      return commit(observe(current, now, policyFor(policy, deployment)), now);
    },

    async force(id: DeploymentIdentity, input: ForceInput) {
      const now = clock.now();
      return commit(forceState(circuits.get(id.deployment) ?? newCircuit(id, now), input, now, policyFor(policy, id.deployment)), now);
    },

    async acquireProbe(deployment: string, holderId: string, ttlMs: number, extend = false): Promise<ProbeResult> {
      const current = circuits.get(deployment);
      if (!current) return { granted: false, holderId: '', expiresAt: 0, state: 'CLOSED' };
      const now = clock.now();
      const own = policyFor(policy, deployment);
      const observed = commit(observe(current, now, own), now);
      const step = observed.transition ? observed : undefined;
      const state = effectiveState(observed.record, now);
      if (!probeAllowed(observed.record, now)) return { granted: false, holderId: '', expiresAt: 0, state, step };
      const held = probes.get(deployment) ?? new Map<string, number>();
      for (const [holder, exp] of held) if (exp <= now) held.delete(holder);
      probes.set(deployment, held);
      const mine = held.get(holderId);
      // A permit is one probe call: asking again (a retry of the probe) is refused unless extending.
      if (mine !== undefined && !extend) return { granted: false, holderId, expiresAt: mine, state, step };
      if (mine === undefined && held.size >= own.halfOpenProbes) {
        // Report the permit that frees up first (the caller's earliest chance).
        const [holder, exp] = [...held].sort((x, y) => x[1] - y[1] || (x[0] < y[0] ? -1 : 1))[0]!;
        return { granted: false, holderId: holder, expiresAt: exp, state, step };
      }
      const expiresAt = now + ttlMs;
      held.set(holderId, expiresAt);
      return { granted: true, holderId, expiresAt, state, step };
    },

    async raiseEpoch(deployment: string, held: number) {
      const current = circuits.get(deployment);
      if (!current) return undefined;
      return commit({ record: current.epoch >= held ? current : { ...current, epoch: held + 1 } }, clock.now());
    },

    async deployments() {
      return [...circuits.keys()].sort();
    },

    async openDeployments() {
      return [...open].sort();
    },

    async close() {},
  };
}
