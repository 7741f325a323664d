import { FieldError, type FieldProblem } from '@switchyard/util';

/** Deployment ids and provider kinds become NATS subject tokens and Redis key parts (same alphabet as the config). */
const NAME = /^[A-Za-z0-9_-]{1,64}$/;
const NAME_RULE = 'must be 1-64 characters of A-Z a-z 0-9 _ -';
export const MAX_PROBE_TTL_MS = 600_000;
export const MAX_EVENT_ID = 128;
export const MAX_REASON = 512;
const MAX_HOLDER_ID = 128;

/**
 * The breaker's checks of caller input. Each adds what is wrong to
 * `problems` (field paths as the caller spelled them), so one answer lists
 * every bad field; `rejectIfAny` throws them as one FieldError.
 */
export function checkName(problems: FieldProblem[], field: string, value: string): void {
  if (value === '') problems.push({ field, problem: 'is required' });
  else if (!NAME.test(value)) problems.push({ field, problem: `${NAME_RULE}, got ${JSON.stringify(value.slice(0, 80))}` });
}

export function rejectIfAny(problems: FieldProblem[]): void {
  if (problems.length > 0) throw FieldError.of(problems);
}

/** A deployment id as a lone field (GetHealth). */
export function deploymentName(value: string, field = 'deployment'): string {
  const problems: FieldProblem[] = [];
  checkName(problems, field, value);
  rejectIfAny(problems);
  return value;
}

/** An AcquireProbe: the deployment, a holder id that fits the permit key, a ttl within bounds (0 = the default). */
export function checkProbeRequest(req: { deployment: string; holderId: string; ttlMs: number }): void {
  const problems: FieldProblem[] = [];
  checkName(problems, 'deployment', req.deployment);
  if (req.holderId === '') problems.push({ field: 'holder_id', problem: 'is required' });
  else if (req.holderId.length > MAX_HOLDER_ID || req.holderId.includes('|'))
    problems.push({ field: 'holder_id', problem: `must be at most ${MAX_HOLDER_ID} characters without '|'` });
  if (req.ttlMs > MAX_PROBE_TTL_MS) problems.push({ field: 'ttl_ms', problem: `must be at most ${MAX_PROBE_TTL_MS}, got ${req.ttlMs}` });
  rejectIfAny(problems);
}
