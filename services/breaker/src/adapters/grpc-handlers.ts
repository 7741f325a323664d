import { BreakerService, CircuitState } from '@switchyard/contracts';
import {
  type AccessTable,
  type ServiceRegistration,
  notFound,
  serviceRegistration,
} from '@switchyard/grpc';
import type { AttemptOutcome } from '@switchyard/contracts';
import { FieldError, type FieldProblem } from '@switchyard/util';
import type { DeploymentIdentity, OutcomeErrorClass, OutcomeInput } from '../domain/circuit';
import type { HealthSnapshot, HealthTracker } from '../health-tracker';
import { errorClassFromProto, stateFromProto, stateToProto, toDeploymentHealth } from './proto-mapping';

/** Deployment ids and provider kinds become NATS subject tokens and Redis key parts (same alphabet as the config). */
const NAME = /^[A-Za-z0-9_-]{1,64}$/;
const NAME_RULE = 'must be 1-64 characters of A-Z a-z 0-9 _ -';
export const MAX_PROBE_TTL_MS = 600_000;
const MAX_EVENT_ID = 128;
const MAX_REASON = 512;

function checkName(violations: FieldProblem[], field: string, value: string): void {
  if (value === '') violations.push({ field, problem: 'is required' });
  else if (!NAME.test(value)) violations.push({ field, problem: `${NAME_RULE}, got ${JSON.stringify(value.slice(0, 80))}` });
}

function fail(violations: FieldProblem[]): void {
  if (violations.length > 0) throw FieldError.of(violations);
}

/**
 * Validates an AttemptOutcome (from the Report RPC or a NATS message) and turns
 * it into the domain's input. `prefix` is the proto path of the message, so
 * errors name the field as the caller sent it (e.g. `outcome.deployment.provider`).
 */
export function parseOutcome(
  outcome: AttemptOutcome | undefined,
  prefix: string,
): { id: DeploymentIdentity; input: OutcomeInput & { eventId?: string } } {
  const violations: FieldProblem[] = [];
  if (!outcome) throw new FieldError(prefix, 'is required');
  const ref = outcome.deployment;
  if (!ref) violations.push({ field: `${prefix}.deployment`, problem: 'is required' });
  else {
    checkName(violations, `${prefix}.deployment.deployment`, ref.deployment);
    checkName(violations, `${prefix}.deployment.provider`, ref.provider);
  }
  const errorClass = errorClassFromProto(outcome.errorClass);
  if (errorClass === null) violations.push({ field: `${prefix}.error_class`, problem: `unknown error class ${outcome.errorClass}` });
  if (outcome.eventId.length > MAX_EVENT_ID)
    violations.push({ field: `${prefix}.event_id`, problem: `must be at most ${MAX_EVENT_ID} characters` });
  fail(violations);
  return {
    id: { deployment: ref!.deployment, provider: ref!.provider, model: ref!.model },
    input: { errorClass: errorClass as OutcomeErrorClass | undefined, latencyMs: outcome.latencyMs, eventId: outcome.eventId || undefined },
  };
}


/**
 * Who may call what (checked by createGrpcServer): forcing a circuit is an
 * operator's decision; health views are read-only; Report and AcquireProbe
 * are the router's.
 */
export const BREAKER_ACCESS: AccessTable<(typeof BreakerService)['method']> = { forceState: 'operator', getHealth: 'either', listHealth: 'either' };

/**
 * BreakerService handlers: validate, call the tracker, map to protos. The
 * tokens (DESIGN "Security") are checked by createGrpcServer, per BREAKER_ACCESS.
 */
export function createBreakerHandlers(options: {
  tracker: HealthTracker;
  defaultProbeTtlMs: number;
  /** The deployment's slow-call threshold (for `degraded`); 0 / absent = never degraded. */
  slowCallMs?: (deployment: string) => number;
}): ServiceRegistration {
  const { tracker, defaultProbeTtlMs } = options;
  const slowCallMs = options.slowCallMs ?? (() => 0);
  const health = (s: HealthSnapshot) => toDeploymentHealth(s.record, s.now, slowCallMs(s.record.deployment));

  const deploymentField = (value: string, field = 'deployment') => {
    const violations: FieldProblem[] = [];
    checkName(violations, field, value);
    fail(violations);
    return value;
  };

  return serviceRegistration(BreakerService, {
    async report(req) {
      const { id, input } = parseOutcome(req.outcome, 'outcome');
      // Answer from the stored state; the transition is published after (routers call Report when NATS is down).
      const result = await tracker.report(id, input, { background: true });
      return { health: health(result), transitioned: result.transitioned };
    },

    async getHealth(req) {
      const deployment = deploymentField(req.deployment);
      const s = await tracker.get(deployment);
      if (!s) throw notFound('deployment', deployment);
      return { health: health(s) };
    },

    async listHealth() {
      return { deployments: (await tracker.list()).map(health) };
    },

    async acquireProbe(req) {
      const violations: FieldProblem[] = [];
      checkName(violations, 'deployment', req.deployment);
      if (req.holderId === '') violations.push({ field: 'holder_id', problem: 'is required' });
      else if (req.holderId.length > 128 || req.holderId.includes('|'))
        violations.push({ field: 'holder_id', problem: "must be at most 128 characters without '|'" });
      if (req.ttlMs > MAX_PROBE_TTL_MS) violations.push({ field: 'ttl_ms', problem: `must be at most ${MAX_PROBE_TTL_MS}, got ${req.ttlMs}` });
      fail(violations);
      const r = await tracker.acquireProbe(req.deployment, req.holderId, req.ttlMs || defaultProbeTtlMs, req.extend);
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
      fail(violations);
      const s = await tracker.force(req.deployment, state, req.release, req.reason);
      if (!s) throw notFound('deployment', req.deployment);
      return { health: health(s) };
    },
  }, BREAKER_ACCESS);
}
