import { status } from '@grpc/grpc-js';

/** One invalid request field (google.rpc.BadRequest.FieldViolation). */
export interface FieldViolation {
  field: string;
  description: string;
}

/** One failed quota check (google.rpc.QuotaFailure.Violation). */
export interface QuotaViolation {
  subject: string;
  description: string;
}

/** One failed precondition (google.rpc.PreconditionFailure.Violation). */
export interface PreconditionViolation {
  type: string;
  subject: string;
  description: string;
}

/** Machine-readable cause (google.rpc.ErrorInfo). */
export interface ErrorInfoDetail {
  /** UPPER_SNAKE_CASE cause, e.g. "BUDGET_EXCEEDED". */
  reason: string;
  /** Logical grouping, e.g. "switchyard.budget". */
  domain: string;
  metadata: Record<string, string>;
}

/** The resource an error is about (google.rpc.ResourceInfo). */
export interface ResourceInfoDetail {
  resourceType: string;
  resourceName: string;
  owner?: string;
  description?: string;
}

/**
 * What a caller can act on, carried in the `grpc-status-details-bin` trailer as
 * google.rpc error details. Every field is optional; absent means "not sent".
 */
export interface ErrorDetails {
  badRequest?: FieldViolation[];
  quotaFailure?: QuotaViolation[];
  preconditionFailure?: PreconditionViolation[];
  /** google.rpc.RetryInfo, in milliseconds. */
  retryDelayMs?: number;
  errorInfo?: ErrorInfoDetail;
  resourceInfo?: ResourceInfoDetail;
}

/** Options shared by the AppError factories. */
export interface AppErrorOptions {
  cause?: unknown;
  errorInfo?: ErrorInfoDetail;
}

/**
 * An error meant for the caller: its code, message and details cross the gRPC
 * boundary as they are. Anything else a handler throws becomes INTERNAL with a
 * generic message, so internals never leak by accident.
 */
export class AppError extends Error {
  override readonly name = 'AppError';

  constructor(
    readonly code: status,
    message: string,
    readonly details: ErrorDetails = {},
    options: { cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
  }
}

/** Type guard that also works across module copies (checks the brand, not the prototype chain only). */
export function isAppError(err: unknown): err is AppError {
  return err instanceof AppError || (err instanceof Error && err.name === 'AppError' && typeof (err as AppError).code === 'number');
}

function withInfo(details: ErrorDetails, options?: AppErrorOptions): ErrorDetails {
  return options?.errorInfo ? { ...details, errorInfo: options.errorInfo } : details;
}

/** INVALID_ARGUMENT naming the offending field; the message reads "<field>: <description>". */
export function invalidArgument(field: string, description: string, options?: AppErrorOptions): AppError {
  return new AppError(status.INVALID_ARGUMENT, `${field}: ${description}`, withInfo({ badRequest: [{ field, description }] }, options), options);
}

/** INVALID_ARGUMENT listing several bad fields at once. */
export function invalidArguments(violations: FieldViolation[], options?: AppErrorOptions): AppError {
  if (violations.length === 0) throw new Error('invalidArguments: violations must not be empty');
  const message = violations.map((v) => `${v.field}: ${v.description}`).join('; ');
  return new AppError(status.INVALID_ARGUMENT, message, withInfo({ badRequest: violations }, options), options);
}

/** UNAUTHENTICATED: missing or unknown credentials. */
export function unauthenticated(message: string, options?: AppErrorOptions): AppError {
  return new AppError(status.UNAUTHENTICATED, message, withInfo({}, options), options);
}

/** PERMISSION_DENIED: authenticated, but not allowed. */
export function permissionDenied(message: string, options?: AppErrorOptions): AppError {
  return new AppError(status.PERMISSION_DENIED, message, withInfo({}, options), options);
}

/** NOT_FOUND for a named resource; the message reads `<resourceType> "<resourceName>" not found`. */
export function notFound(resourceType: string, resourceName: string, options?: AppErrorOptions): AppError {
  return new AppError(
    status.NOT_FOUND,
    `${resourceType} "${resourceName}" not found`,
    withInfo({ resourceInfo: { resourceType, resourceName } }, options),
    options,
  );
}

/**
 * RESOURCE_EXHAUSTED (quota, rate limit, budget): QuotaFailure lists what ran
 * out, RetryInfo says when trying again can succeed.
 */
export function resourceExhausted(args: {
  message?: string;
  retryAfterMs?: number;
  violations: QuotaViolation[];
  errorInfo?: ErrorInfoDetail;
  cause?: unknown;
}): AppError {
  const message = args.message ?? (args.violations.map((v) => `${v.subject}: ${v.description}`).join('; ') || 'resource exhausted');
  const details: ErrorDetails = { quotaFailure: args.violations };
  if (args.retryAfterMs !== undefined) details.retryDelayMs = args.retryAfterMs;
  return new AppError(status.RESOURCE_EXHAUSTED, message, withInfo(details, args), args);
}

/** UNAVAILABLE: transient; retryAfterMs becomes RetryInfo. */
export function unavailable(message: string, retryAfterMs?: number, options?: AppErrorOptions): AppError {
  const details: ErrorDetails = retryAfterMs === undefined ? {} : { retryDelayMs: retryAfterMs };
  return new AppError(status.UNAVAILABLE, message, withInfo(details, options), options);
}

/** FAILED_PRECONDITION: the system is not in a state where the call can run. */
export function failedPrecondition(
  message: string,
  options?: AppErrorOptions & { violations?: PreconditionViolation[] },
): AppError {
  const details: ErrorDetails = options?.violations ? { preconditionFailure: options.violations } : {};
  return new AppError(status.FAILED_PRECONDITION, message, withInfo(details, options), options);
}

/** DEADLINE_EXCEEDED: the work could not finish within the caller's deadline. */
export function deadlineExceeded(message: string, options?: AppErrorOptions): AppError {
  return new AppError(status.DEADLINE_EXCEEDED, message, withInfo({}, options), options);
}

/**
 * INTERNAL with a message chosen for the caller. (Unexpected errors need no
 * factory: throw them as they are and the server answers a generic INTERNAL.)
 */
export function internal(message: string, options?: AppErrorOptions): AppError {
  return new AppError(status.INTERNAL, message, withInfo({}, options), options);
}
