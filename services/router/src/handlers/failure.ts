import { AppError, status, type ErrorDetails, type QuotaViolation } from '@switchyard/grpc';
import { ERROR_CLASS_TABLE } from '@switchyard/util';
import type { LoopResult } from '../domain/run-attempts';
import type { RouterContext } from '../router-context';
import type { PreparedCall } from './pipeline';

const ERROR_DOMAIN = 'switchyard.router';

type Failure = Extract<LoopResult<unknown>, { ok: false }>;

/**
 * ErrorInfo metadata listing every attempt (deployment, class, latency,
 * upstream request id, status) and every skipped candidate with its reason, so
 * a caller or an on-call engineer sees the whole story from the status alone.
 */
export function attemptsMetadata(p: PreparedCall, f: Pick<Failure, 'attempts' | 'skipped'>): Record<string, string> {
  const meta: Record<string, string> = { request_id: p.requestId, route: p.call.routeName, attempts: String(f.attempts.length) };
  f.attempts.forEach((a, i) => {
    meta[`attempt_${i + 1}`] = [
      `deployment=${a.deployment}`,
      `class=${a.errorClass ?? 'OK'}`,
      `latency_ms=${a.latencyMs}`,
      `upstream_request_id=${a.upstreamRequestId ?? ''}`,
      `http_status=${a.httpStatus ?? 0}`,
      ...(a.retryAfterMs !== undefined ? [`retry_after_ms=${a.retryAfterMs}`] : []),
    ].join(' ');
  });
  for (const s of f.skipped) meta[`skipped_${s.name}`] = s.reason;
  return meta;
}

function summary(f: Failure): string {
  const parts = f.attempts.map((a) => `${a.deployment}: ${a.errorClass ?? 'OK'}${a.httpStatus ? ` (${a.httpStatus})` : ''}`);
  for (const s of f.skipped) parts.push(`${s.name}: skipped (${s.reason})`);
  return parts.join('; ') || 'no candidates';
}

/**
 * Earliest instant something may succeed again, as a delay; undefined when
 * nothing says. A quota skip whose instant has passed (quota handed back when
 * it came too late) says "now": 0.
 */
function retryHint(ctx: RouterContext, f: Failure): number | undefined {
  const now = ctx.clock.now();
  const delays = [
    ...f.skipped.filter((s) => s.retryAt > now || (s.quota && s.retryAt > 0)).map((s) => Math.max(0, s.retryAt - now)),
    ...f.attempts.filter((a) => a.retryAfterMs !== undefined).map((a) => a.retryAfterMs!),
  ];
  return delays.length > 0 ? Math.min(...delays) : undefined;
}

/**
 * Step 8 of the call, when no stale answer can save it: the one mapping from
 * "every candidate failed" to a gRPC status a caller can act on.
 */
export function failureError(ctx: RouterContext, p: PreparedCall, f: Failure): AppError {
  // stopped_because: why the attempt loop ended (e.g. the retry budget was spent and the call failed fast).
  const errorInfo = (reason: string) => ({ reason, domain: ERROR_DOMAIN, metadata: { ...attemptsMetadata(p, f), stopped_because: f.reason } });
  if (f.cancelled) return new AppError(status.CANCELLED, 'call cancelled by the caller', { errorInfo: errorInfo('CANCELLED') });
  if (f.deadlineExceeded) {
    return new AppError(status.DEADLINE_EXCEEDED, `deadline exceeded after ${f.attempts.length} attempt(s): ${summary(f)}`, { errorInfo: errorInfo('DEADLINE_EXCEEDED') });
  }
  const last = f.last;
  const lastClass = last?.classification.errorClass;
  if (last && lastClass === 'INVALID_REQUEST') {
    const description = `rejected by deployment ${last.candidate.name}: ${last.classification.message}`;
    return new AppError(status.INVALID_ARGUMENT, `provider rejected the request: ${description}`, {
      badRequest: [{ field: 'messages', description }],
      errorInfo: errorInfo('UPSTREAM_INVALID_REQUEST'),
    });
  }
  if (last && lastClass === 'CONTENT_FILTER') {
    const description = `refused by the content filter of deployment ${last.candidate.name}: ${last.classification.message}`;
    return new AppError(status.INVALID_ARGUMENT, description, {
      badRequest: [{ field: 'messages', description }],
      errorInfo: errorInfo('CONTENT_FILTERED'),
    });
  }
  if (last && lastClass === 'CONTEXT_LENGTH') {
    const tokens = Math.max(...f.attempts.filter((a) => a.errorClass === 'CONTEXT_LENGTH').map((a) => p.inputTokens.get(a.deployment) ?? 0));
    const largest = Math.max(...p.call.route.candidates.map((c) => ctx.gateway.deployments[c.deployment]?.contextWindow ?? 0));
    return new AppError(status.FAILED_PRECONDITION, `prompt has ${tokens} tokens; largest context window among candidates is ${largest}`, {
      preconditionFailure: [{ type: 'CONTEXT_LENGTH', subject: `route:${p.call.routeName}`, description: `prompt of ${tokens} tokens exceeds every candidate's context window` }],
      errorInfo: errorInfo('CONTEXT_LENGTH_EXCEEDED'),
    });
  }

  const retryAfterMs = retryHint(ctx, f);
  const quotaOnly =
    (f.attempts.length > 0 || f.skipped.length > 0) &&
    f.attempts.every((a) => a.errorClass !== undefined && ERROR_CLASS_TABLE[a.errorClass].quota) &&
    f.skipped.every((s) => s.quota);
  if (quotaOnly) {
    const violations: QuotaViolation[] = [
      ...f.attempts.map((a) => ({ subject: `deployment:${a.deployment}`, description: a.errorClass === 'QUOTA_EXHAUSTED' ? 'provider quota exhausted' : 'rate limited by the provider' })),
      ...f.skipped.map((s) => ({ subject: `deployment:${s.name}`, description: s.reason })),
    ];
    const details: ErrorDetails = { quotaFailure: violations, errorInfo: errorInfo('QUOTA_EXHAUSTED') };
    if (retryAfterMs !== undefined) details.retryDelayMs = retryAfterMs;
    return new AppError(status.RESOURCE_EXHAUSTED, `no quota left on any candidate of route ${p.call.routeName}: ${summary(f)}`, details);
  }
  // A loop that stopped early (the retry budget spent, …) says so: a candidate it never tried did not fail.
  const stopped = f.reason === 'every candidate failed' ? '' : ` (stopped: ${f.reason})`;
  return new AppError(status.UNAVAILABLE, `every candidate of route ${p.call.routeName} failed: ${summary(f)}${stopped}`, {
    retryDelayMs: retryAfterMs ?? ctx.gateway.defaults.retry.baseMs,
    errorInfo: errorInfo('ALL_CANDIDATES_FAILED'),
  });
}
