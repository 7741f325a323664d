import { BreakerService, CircuitState } from '@switchyard/contracts';
import {
  type AccessTable,
  type ServiceRegistration,
  notFound,
  serviceRegistration,
} from '@switchyard/grpc';
import type { FieldProblem } from '@switchyard/util';
import { MAX_REASON, checkName, checkProbeRequest, deploymentName, rejectIfAny } from '../domain/health-input';
import type { HealthSnapshot, HealthTracker } from '../domain/health-tracker';
import { parseOutcome } from './outcome-proto';
import { stateFromProto, stateToProto, toDeploymentHealth } from './proto-mapping';

export { MAX_PROBE_TTL_MS } from '../domain/health-input';

/**
 * Who may call what (checked by createGrpcServer): forcing a circuit is an
 * operator's decision; health views are read-only; Report and AcquireProbe
 * are the router's.
 */
export const BREAKER_ACCESS: AccessTable<(typeof BreakerService)['method']> = { forceState: 'operator', getHealth: 'either', listHealth: 'either' };

/**
 * BreakerService handlers: map protos to the tracker's calls and back (input
 * checks in domain/health-input.ts, outcomes in outcome-proto.ts). The
 * tokens (DESIGN "Security") are checked by createGrpcServer, per BREAKER_ACCESS.
 */
export function createBreakerHandlers(options: {
  tracker: HealthTracker;
  /** Lifetime of a probe permit whose AcquireProbe says ttl_ms = 0, per deployment. */
  defaultProbeTtlMs: (deployment: string) => number;
  /** The deployment's slow-call threshold (for `degraded`); 0 / absent = never degraded. */
  slowCallMs?: (deployment: string) => number;
}): ServiceRegistration {
  const { tracker, defaultProbeTtlMs } = options;
  const slowCallMs = options.slowCallMs ?? (() => 0);
  const health = (s: HealthSnapshot) => toDeploymentHealth(s.record, s.now, slowCallMs(s.record.deployment));

  return serviceRegistration(BreakerService, {
    async report(req) {
      const { id, input } = parseOutcome(req.outcome, 'outcome');
      // Answer from the stored state; the transition is published after (routers call Report when NATS is down).
      const result = await tracker.report(id, input, { background: true });
      return { health: health(result), transitioned: result.transitioned };
    },

    async getHealth(req) {
      const deployment = deploymentName(req.deployment);
      const s = await tracker.get(deployment);
      if (!s) throw notFound('deployment', deployment);
      return { health: health(s) };
    },

    async listHealth() {
      return { deployments: (await tracker.list()).map(health) };
    },

    async acquireProbe(req) {
      checkProbeRequest(req);
      const r = await tracker.acquireProbe(req.deployment, req.holderId, req.ttlMs || defaultProbeTtlMs(req.deployment), req.extend);
      return { granted: r.granted, expiresAtUnixMs: BigInt(r.expiresAt), holderId: r.holderId, state: stateToProto(r.state) };
    },

    async forceState(req) {
      const violations: FieldProblem[] = [];
      checkName(violations, 'deployment', req.deployment);
      const state = stateFromProto(req.state);
      if (state === undefined && !(req.release && req.state === CircuitState.UNSPECIFIED)) {
        violations.push({
          field: 'state',
          problem: req.release
            ? `must be CLOSED, OPEN, HALF_OPEN or UNSPECIFIED (keep current) when releasing, got ${req.state}`
            : `must be CLOSED, OPEN or HALF_OPEN, got ${CircuitState[req.state] ?? req.state}`,
        });
      }
      if (req.reason.length > MAX_REASON) violations.push({ field: 'reason', problem: `must be at most ${MAX_REASON} characters` });
      rejectIfAny(violations);
      const s = await tracker.force(req.deployment, state, req.release, req.reason);
      if (!s) throw notFound('deployment', req.deployment);
      return { health: health(s) };
    },
  }, BREAKER_ACCESS);
}
