import { create } from '@bufbuild/protobuf';
import {
  CircuitState,
  type DeploymentHealth,
  DeploymentHealthSchema,
  ErrorClass,
  type HealthTransition,
  HealthTransitionSchema,
} from '@switchyard/contracts';
import {
  type CircuitRecord,
  type CircuitStateName,
  type OutcomeErrorClass,
  type Transition,
  effectiveState,
  failureRate,
  isDegraded,
  p95LatencyMs,
  windowStats,
} from '../domain/circuit';

/** Domain names ↔ proto enums, at the boundary only. */
const STATE_TO_PROTO: Record<CircuitStateName, CircuitState> = {
  CLOSED: CircuitState.CLOSED,
  OPEN: CircuitState.OPEN,
  HALF_OPEN: CircuitState.HALF_OPEN,
};

export function stateToProto(state: CircuitStateName): CircuitState {
  return STATE_TO_PROTO[state];
}

export function stateFromProto(state: CircuitState): CircuitStateName | undefined {
  switch (state) {
    case CircuitState.CLOSED:
      return 'CLOSED';
    case CircuitState.OPEN:
      return 'OPEN';
    case CircuitState.HALF_OPEN:
      return 'HALF_OPEN';
    default:
      return undefined;
  }
}

/** ErrorClass enum → domain name; UNSPECIFIED (success) → undefined; unknown numbers → null. */
export function errorClassFromProto(value: ErrorClass): OutcomeErrorClass | undefined | null {
  if (value === ErrorClass.UNSPECIFIED) return undefined;
  const name = ErrorClass[value] as OutcomeErrorClass | undefined;
  return name === undefined ? null : name;
}

export function errorClassToProto(value: OutcomeErrorClass | undefined): ErrorClass {
  return value === undefined ? ErrorClass.UNSPECIFIED : ErrorClass[value];
}

/**
 * The DeploymentHealth view of a record at `now` (state computed lazily from
 * open_until). `slowCallMs` is the deployment's slow-call threshold: CLOSED
 * with a p95 estimate above it reads `degraded` (0 = never degraded).
 */
export function toDeploymentHealth(record: CircuitRecord, now: number, slowCallMs = 0): DeploymentHealth {
  const state = effectiveState(record, now);
  return create(DeploymentHealthSchema, {
    ref: { provider: record.provider, deployment: record.deployment, model: record.model },
    state: stateToProto(state),
    failureRate: failureRate(record),
    consecutiveFailures: record.consecutiveFailures,
    windowCalls: windowStats(record).calls,
    p50LatencyMs: Math.round(record.latencyEwmaMs),
    p95LatencyMs: Math.round(p95LatencyMs(record)),
    degraded: isDegraded(record, state, slowCallMs),
    lastErrorClass: errorClassToProto(record.lastErrorClass),
    openUntilUnixMs: BigInt(record.openUntil),
    epoch: BigInt(record.epoch),
    forced: record.forced,
    reopenCount: record.reopenCount,
    updatedAtUnixMs: BigInt(record.updatedAt),
  });
}

export function toHealthTransition(record: CircuitRecord, t: Transition): HealthTransition {
  return create(HealthTransitionSchema, {
    ref: { provider: record.provider, deployment: record.deployment, model: record.model },
    from: stateToProto(t.from),
    to: stateToProto(t.to),
    reason: t.reason,
    failureRate: t.failureRate,
    openUntilUnixMs: BigInt(t.openUntil),
    epoch: BigInt(t.epoch),
    forced: t.forced,
    timeUnixMs: BigInt(t.at),
  });
}
