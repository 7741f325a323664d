import type { AttemptOutcome } from '@switchyard/contracts';
import { FieldError, type FieldProblem } from '@switchyard/util';
import type { DeploymentIdentity, OutcomeErrorClass, OutcomeInput } from '../domain/circuit';
import { MAX_EVENT_ID, checkName, rejectIfAny } from '../domain/health-input';
import { errorClassFromProto } from './proto-mapping';

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
  rejectIfAny(violations);
  return {
    id: { deployment: ref!.deployment, provider: ref!.provider, model: ref!.model },
    input: { errorClass: errorClass as OutcomeErrorClass | undefined, latencyMs: outcome.latencyMs, eventId: outcome.eventId || undefined },
  };
}
