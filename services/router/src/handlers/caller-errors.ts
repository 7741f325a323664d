import { AppError, status, type ErrorDetails, type QuotaViolation } from '@switchyard/grpc';
import { ERROR_CLASS_TABLE } from '@switchyard/util';
import type { BudgetDenial } from '../adapters/budget-peer';
import type { LoopResult } from '../domain/run-attempts';

/**
 * Every error the router itself answers a caller with (beyond bad input and
 * auth, which libs/grpc maps): budget exceeded or unavailable, an idempotency
 * key in progress or reused, every candidate failed. One module, one domain.
 */
export const ROUTER_ERROR_DOMAIN = 'switchyard.router';

/** Who the error is about: the caller's tenant and this call's id (ErrorInfo metadata). */
export interface CallIdentity {
  tenant: string;
  requestId: string;
}

/** The budget refused the call: RESOURCE_EXHAUSTED with QuotaFailure, or UNAVAILABLE when a hard-capped tenant's budget cannot be checked. */
export function budgetError(denial: BudgetDenial, who: CallIdentity): AppError {
  const metadata = { tenant: who.tenant, request_id: who.requestId };
  switch (denial.kind) {
    case 'store-unavailable':
      return new AppError(status.UNAVAILABLE, 'budget service cannot reach its store and the tenant has hard caps (fail closed)', {
        retryDelayMs: 1000,
        errorInfo: { reason: 'BUDGET_UNAVAILABLE', domain: ROUTER_ERROR_DOMAIN, metadata },
      });
    case 'unreachable':
      return new AppError(status.UNAVAILABLE, `budget service unavailable (${denial.cause}); tenant "${who.tenant}" has hard caps, so the call is refused`, {
        retryDelayMs: 1000,
        errorInfo: { reason: 'BUDGET_UNAVAILABLE', domain: ROUTER_ERROR_DOMAIN, metadata },
      });
    case 'exceeded':
      return new AppError(status.RESOURCE_EXHAUSTED, `budget exceeded: ${denial.subject}: ${denial.description}`, {
        quotaFailure: [{ subject: denial.subject, description: denial.description }],
        ...(denial.retryAfterMs !== undefined ? { retryDelayMs: denial.retryAfterMs } : {}),
        errorInfo: {
          reason: 'BUDGET_EXCEEDED',
          domain: ROUTER_ERROR_DOMAIN,
          metadata: {
            ...metadata,
            limit_micros: String(denial.limitMicros),
            spent_micros: String(denial.spentMicros),
            reserved_micros: String(denial.reservedMicros),
            requested_micros: String(denial.requestedMicros),
          },
        },
      });
  }
}

/** A duplicate of a call that is still running: ABORTED, retry with the same key. */
export function idempotencyInProgress(requestId: string): AppError {
  return new AppError(status.ABORTED, `idempotency_key: a call with this key is still in progress; retry with the same key`, {
    retryDelayMs: 1000,
    errorInfo: { reason: 'IDEMPOTENCY_IN_PROGRESS', domain: ROUTER_ERROR_DOMAIN, metadata: { request_id: requestId } },
  });
}

/** An idempotency key already used with a different request: FAILED_PRECONDITION naming the key. */
export function idempotencyKeyReused(key: string, requestId: string): AppError {
  const description = `idempotency_key "${key}" was already used with a different request (other route, messages or parameters); a new request needs a new key`;
  return new AppError(status.FAILED_PRECONDITION, description, {
    preconditionFailure: [{ type: 'IDEMPOTENCY_KEY_REUSED', subject: `idempotency_key:${key}`, description }],
    errorInfo: { reason: 'IDEMPOTENCY_KEY_REUSED', domain: ROUTER_ERROR_DOMAIN, metadata: { request_id: requestId, idempotency_key: key } },
  });
}

/**
 * No candidate of the route can serve the call (it uses tools, images or
 * JSON-schema output none of them declares): FAILED_PRECONDITION naming the
 * missing capability per deployment, before anything is reserved.
 */
export function missingCapabilityError(routeName: string, lacking: readonly { name: string; missing: string; reason: string }[], requestId: string): AppError {
  const missing = [...new Set(lacking.map((l) => l.missing))];
  const description = `no candidate of route ${routeName} can serve this call: missing capability ${missing.join(', ')} (${lacking.map((l) => `${l.name}: ${l.reason}`).join('; ')})`;
  return new AppError(status.FAILED_PRECONDITION, description, {
    preconditionFailure: lacking.map((l) => ({ type: 'MISSING_CAPABILITY', subject: `deployment:${l.name}`, description: `missing capability ${l.missing}: ${l.reason}` })),
    errorInfo: { reason: 'MISSING_CAPABILITY', domain: ROUTER_ERROR_DOMAIN, metadata: { request_id: requestId, route: routeName, missing: missing.join(',') } },
  });
}

/**
 * How a prompt too long for the window is said: in the words both providers
 * use ("prompt is too long: N tokens > M maximum", Anthropic; "maximum
 * context length", OpenAI), which client libraries match to raise their
 * context-overflow error (LangChain's ContextOverflowError, and the trimming
 * built on it) — the HTTP dialects pass the message through.
 */
function promptTooLong(tokens: number, window: number): string {
  return `prompt is too long: ${tokens} tokens > ${window} maximum context length`;
}

/** Route `contextOverflow: fail`: the prompt does not fit the preferred candidate's window, and no larger one is tried. */
export function contextOverflowError(routeName: string, deployment: string, tokens: number, window: number, requestId: string): AppError {
  const description = `prompt of ${tokens} tokens exceeds the context window of ${window} tokens of deployment ${deployment} (route ${routeName} has contextOverflow: fail)`;
  return new AppError(status.FAILED_PRECONDITION, `${promptTooLong(tokens, window)}: ${description}`, {
    preconditionFailure: [{ type: 'CONTEXT_LENGTH', subject: `route:${routeName}`, description }],
    errorInfo: { reason: 'CONTEXT_LENGTH_EXCEEDED', domain: ROUTER_ERROR_DOMAIN, metadata: { request_id: requestId, route: routeName, deployment } },
  });
}

type Failure = Extract<LoopResult<unknown>, { ok: false }>;

/** What the failure mapping needs to know about the call besides the attempt loop's result. */
export interface FailedCall {
  requestId: string;
  routeName: string;
  /** Estimated prompt tokens per candidate. */
  inputTokens: ReadonlyMap<string, number>;
  /** Largest context window among the route's candidates. */
  largestContextWindow: number;
  now: number;
  /** Retry hint when nothing else says when to come back (the retry base delay). */
  defaultRetryMs: number;
}

/**
 * ErrorInfo metadata listing every attempt (deployment, class, latency,
 * upstream request id, status) and every skipped candidate with its reason, so
 * a caller or an on-call engineer sees the whole story from the status alone.
 */
export function attemptsMetadata(call: Pick<FailedCall, 'requestId' | 'routeName'>, f: Pick<Failure, 'attempts' | 'skipped'>): Record<string, string> {
  const meta: Record<string, string> = { request_id: call.requestId, route: call.routeName, attempts: String(f.attempts.length) };
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
function retryHint(now: number, f: Failure): number | undefined {
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
export function failureError(f: Failure, call: FailedCall): AppError {
  // stopped_because: why the attempt loop ended (e.g. the retry budget was spent and the call failed fast).
  const errorInfo = (reason: string) => ({ reason, domain: ROUTER_ERROR_DOMAIN, metadata: { ...attemptsMetadata(call, f), stopped_because: f.reason } });
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
  // Too long for every candidate: rejected by the provider, or skipped before sending because the window is known to be too small.
  const contextSkips = f.skipped.filter((s) => s.promptTokens !== undefined);
  const tooLongForAll = lastClass === 'CONTEXT_LENGTH' || (!last && contextSkips.length > 0 && contextSkips.length === f.skipped.length);
  if (tooLongForAll) {
    const tokens = Math.max(
      ...f.attempts.filter((a) => a.errorClass === 'CONTEXT_LENGTH').map((a) => call.inputTokens.get(a.deployment) ?? 0),
      ...contextSkips.map((s) => s.promptTokens!),
    );
    const largest = call.largestContextWindow;
    return new AppError(status.FAILED_PRECONDITION, `${promptTooLong(tokens, largest)} (the largest context window among the route's candidates)`, {
      preconditionFailure: [{ type: 'CONTEXT_LENGTH', subject: `route:${call.routeName}`, description: `prompt of ${tokens} tokens exceeds every candidate's context window` }],
      errorInfo: errorInfo('CONTEXT_LENGTH_EXCEEDED'),
    });
  }

  const retryAfterMs = retryHint(call.now, f);
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
    return new AppError(status.RESOURCE_EXHAUSTED, `no quota left on any candidate of route ${call.routeName}: ${summary(f)}`, details);
  }
  // A loop that stopped early (the retry budget spent, …) says so: a candidate it never tried did not fail.
  const stopped = f.reason === 'every candidate failed' ? '' : ` (stopped: ${f.reason})`;
  return new AppError(status.UNAVAILABLE, `every candidate of route ${call.routeName} failed: ${summary(f)}${stopped}`, {
    retryDelayMs: retryAfterMs ?? call.defaultRetryMs,
    errorInfo: errorInfo('ALL_CANDIDATES_FAILED'),
  });
}
