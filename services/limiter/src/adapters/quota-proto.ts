import { create } from '@bufbuild/protobuf';
import {
  KeyKind,
  type LimitKey,
  LimitKeySchema,
  LimitKind,
  type QuotaState,
  QuotaStateSchema,
} from '@switchyard/contracts';
import type { BlockReason, KeyKind as DomainKeyKind, KeyState, LimitDimension } from '../domain/quota-store';

/** Mapping between the limiter's domain types and the events.v1 protobuf vocabulary. */

export function keyKindFromProto(kind: KeyKind): DomainKeyKind | undefined {
  if (kind === KeyKind.DEPLOYMENT) return 'deployment';
  if (kind === KeyKind.TENANT) return 'tenant';
  return undefined;
}

export function keyKindToProto(kind: DomainKeyKind): KeyKind {
  return kind === 'deployment' ? KeyKind.DEPLOYMENT : KeyKind.TENANT;
}

export function limitKeyToProto(key: { kind: DomainKeyKind; id: string }): LimitKey {
  return create(LimitKeySchema, { kind: keyKindToProto(key.kind), id: key.id });
}

const LIMIT_KIND: Record<BlockReason, LimitKind> = {
  rpm: LimitKind.RPM,
  tpm: LimitKind.TPM,
  tpd: LimitKind.TPD,
  concurrency: LimitKind.CONCURRENCY,
  cooldown: LimitKind.COOLDOWN,
  unavailable: LimitKind.UNAVAILABLE,
};

export function limitKindToProto(reason: BlockReason | LimitDimension): LimitKind {
  return LIMIT_KIND[reason];
}

export function quotaStateToProto(key: { kind: DomainKeyKind; id: string }, state: KeyState): QuotaState {
  return create(QuotaStateSchema, {
    key: limitKeyToProto(key),
    limits: state.usage.map((u) => ({
      kind: limitKindToProto(u.dimension),
      limit: u.limit,
      used: u.used,
      remaining: u.remaining,
      resetsAtUnixMs: BigInt(u.resetsAtMs),
    })),
    cooldownUntilUnixMs: BigInt(state.cooldownUntilMs),
    unavailable: state.unavailable,
    localFallback: state.localFallback === true,
    epoch: BigInt(state.epoch),
    admittedRequests: BigInt(state.admittedRequests),
  });
}
