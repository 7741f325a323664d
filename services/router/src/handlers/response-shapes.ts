import { create } from '@bufbuild/protobuf';
import { AttemptSchema, CompleteResponseSchema, ErrorClass as ErrorClassEnum, FinishReason, type Attempt, type DeploymentRef } from '@switchyard/contracts';
import type { FinishReason as NeutralFinishReason } from '@switchyard/providers';
import type { Candidate } from '../domain/candidates';
import type { AttemptRecord } from '../domain/run-attempts';

/** Proto shapes of what the router answers: attempts, finish reasons, who served. */

export function deploymentRef(c: Candidate): { provider: string; deployment: string; model: string } {
  return { provider: c.deployment.provider, deployment: c.name, model: c.deployment.model };
}

export function servedBy(c: Candidate): DeploymentRef {
  return create(CompleteResponseSchema, { servedBy: deploymentRef(c) }).servedBy!;
}

export function toAttemptProto(r: AttemptRecord): Attempt {
  return create(AttemptSchema, {
    deployment: { provider: r.provider, deployment: r.deployment, model: r.model },
    errorClass: r.errorClass ? ErrorClassEnum[r.errorClass] : ErrorClassEnum.UNSPECIFIED,
    latencyMs: r.latencyMs,
    upstreamRequestId: r.upstreamRequestId ?? '',
    retryAfterMs: r.retryAfterMs ?? 0,
    httpStatus: r.httpStatus ?? 0,
    note: r.note ?? '',
  });
}

export function finishReasonProto(r: NeutralFinishReason): FinishReason {
  switch (r) {
    case 'stop':
      return FinishReason.STOP;
    case 'length':
      return FinishReason.LENGTH;
    case 'content_filter':
      return FinishReason.CONTENT_FILTER;
    default:
      return FinishReason.STOP;
  }
}
