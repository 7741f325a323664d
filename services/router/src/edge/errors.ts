import { isAppError, status, type AppError } from '@switchyard/grpc';
import { isFieldError } from '@switchyard/util';
import { callerField, OPENAI_PATHS, type DialectPaths } from './field-paths';

/** What went wrong, in HTTP terms shared by both dialects (each renders it in its own shape). */
export type EdgeErrorKind =
  | 'invalid_request'
  | 'authentication'
  | 'permission'
  | 'not_found'
  | 'conflict'
  | 'too_large'
  | 'rate_limit'
  | 'internal'
  | 'unavailable'
  | 'overloaded'
  | 'timeout'
  | 'cancelled';

export class EdgeError extends Error {
  override readonly name = 'EdgeError';
  constructor(
    readonly status: number,
    readonly kind: EdgeErrorKind,
    message: string,
    readonly extra: { param?: string; retryAfterMs?: number; code?: string; alreadyRetried?: boolean; requestId?: string } = {},
  ) {
    super(message);
  }
}

export const badRequest = (param: string, message: string) => new EdgeError(400, 'invalid_request', `${param}: ${message}`, { param });

/**
 * The one mapping from what the router's call steps throw (AppError with a
 * gRPC code, a FieldError for bad input) to an HTTP status. Every candidate
 * failed is 503, or 529-overloaded when every attempt was the provider saying
 * it is overloaded (only the Anthropic dialect has that status).
 */
export function toEdgeError(err: unknown, paths: DialectPaths = OPENAI_PATHS): EdgeError {
  if (err instanceof EdgeError) return err;
  if (isFieldError(err)) {
    const first = err.problems[0];
    const param = first ? callerField(first.field, paths) : undefined;
    const message = err.problems.map((p) => `${callerField(p.field, paths)}: ${p.problem}`).join('; ');
    return new EdgeError(400, 'invalid_request', message, param ? { param } : {});
  }
  if (!isAppError(err)) return new EdgeError(500, 'internal', 'internal error');
  const e = fromAppError(err, paths);
  const requestId = err.details.errorInfo?.metadata.request_id;
  return requestId ? new EdgeError(e.status, e.kind, e.message, { ...e.extra, requestId }) : e;
}

function fromAppError(err: AppError, paths: DialectPaths): EdgeError {
  const retryAfterMs = err.details.retryDelayMs;
  const retry = retryAfterMs !== undefined ? { retryAfterMs } : {};
  const reason = err.details.errorInfo?.reason;
  const code = reason ? { code: reason.toLowerCase() } : {};
  switch (err.code) {
    case status.INVALID_ARGUMENT: {
      const violations = err.details.badRequest ?? [];
      const field = violations[0]?.field;
      // A message made of its violations (invalidArguments) is made again with the caller's paths; any other is kept.
      const spelled = (name: (field: string) => string) => violations.map((v) => `${name(v.field)}: ${v.description}`).join('; ');
      const message = violations.length > 0 && err.message === spelled((f) => f) ? spelled((f) => callerField(f, paths)) : err.message;
      return new EdgeError(400, 'invalid_request', message, { ...(field ? { param: callerField(field, paths) } : {}), ...code });
    }
    case status.FAILED_PRECONDITION:
      return new EdgeError(reason === 'IDEMPOTENCY_KEY_REUSED' ? 409 : 400, reason === 'IDEMPOTENCY_KEY_REUSED' ? 'conflict' : 'invalid_request', err.message, code);
    case status.ABORTED:
      return new EdgeError(409, 'conflict', err.message, { ...retry, ...code });
    case status.UNAUTHENTICATED:
      return new EdgeError(401, 'authentication', err.message);
    case status.PERMISSION_DENIED:
      return new EdgeError(403, 'permission', err.message);
    case status.NOT_FOUND:
      return new EdgeError(404, 'not_found', err.message);
    case status.RESOURCE_EXHAUSTED:
      return new EdgeError(429, 'rate_limit', err.message, { ...retry, ...code });
    case status.DEADLINE_EXCEEDED:
      return new EdgeError(504, 'timeout', err.message, code);
    case status.CANCELLED:
      return new EdgeError(499, 'cancelled', err.message, code);
    case status.UNAVAILABLE: {
      const meta = err.details.errorInfo?.metadata ?? {};
      const attempts = Object.entries(meta).filter(([k]) => /^attempt_\d+$/.test(k)).map(([, v]) => v);
      const overloaded = reason === 'ALL_CANDIDATES_FAILED' && attempts.length > 0 && attempts.every((a) => a.includes('class=OVERLOADED'));
      return new EdgeError(overloaded ? 529 : 503, overloaded ? 'overloaded' : 'unavailable', err.message, { ...retry, ...code, alreadyRetried: attempts.length > 1 });
    }
    default:
      return new EdgeError(500, 'internal', err.message, code);
  }
}

/**
 * retry-after (whole seconds, rounded up) and retry-after-ms, when the error
 * says when to come back; and `x-should-retry: false` (which the official SDKs
 * obey) when the router already retried the call itself: an SDK retry on top
 * would multiply the upstream attempts by its own retry count.
 */
export function retryHeaders(e: EdgeError): Record<string, string> {
  const ms = e.extra.retryAfterMs;
  const noRetry: Record<string, string> = e.extra.alreadyRetried ? { 'x-should-retry': 'false' } : {};
  if (ms === undefined) return noRetry;
  return { 'retry-after': String(Math.max(0, Math.ceil(ms / 1000))), 'retry-after-ms': String(Math.max(0, Math.round(ms))), ...noRetry };
}

/** Headers of an error answer: when to retry, and the router's id of the call when it had one. */
export function errorHeaders(e: EdgeError): Record<string, string> {
  return { ...retryHeaders(e), ...(e.extra.requestId ? { 'x-switchyard-request-id': e.extra.requestId } : {}) };
}
