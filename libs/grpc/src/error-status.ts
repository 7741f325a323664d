import { Metadata, status, type ServerErrorResponse } from '@grpc/grpc-js';
import { isFieldError, type FieldError } from '@switchyard/util';
import { invalidArguments, isAppError, type AppError, type ErrorDetails } from './app-error';
import { encodeBoundedStatus, STATUS_DETAILS_KEY, type BoundedStatus } from './status-details';
import type { GrpcLogger } from './types';

/** Message sent for every error that is not an AppError: internals stay in the logs. */
export const INTERNAL_ERROR_MESSAGE = 'internal error';

/** The status as sent: message and google.rpc.Status cut to STATUS_BOUNDS, so the trailers always fit. */
function statusResponse(code: status, message: string, details: ErrorDetails, bounded = encodeBoundedStatus(code, message, details)): ServerErrorResponse {
  const metadata = new Metadata();
  metadata.set(STATUS_DETAILS_KEY, Buffer.from(bounded.bytes));
  // An Error without the stack `new Error` would capture: it is only ever sent, as code, message and trailer.
  const err = Object.create(Error.prototype) as Error;
  return Object.assign(err, { message: bounded.message, code, details: bounded.message, metadata });
}

/**
 * The encoded status of each AppError answered: one thrown again and again
 * (the load shedder's refusal, built once per bound) is encoded once, not
 * once per refused call. An AppError's code, message and details are fixed
 * once it is thrown.
 */
const encodedStatus = new WeakMap<AppError, BoundedStatus>();

function boundedStatusOf(err: AppError): BoundedStatus {
  let bounded = encodedStatus.get(err);
  if (!bounded) encodedStatus.set(err, (bounded = encodeBoundedStatus(err.code, err.message, err.details)));
  return bounded;
}

function appErrorStatus(err: AppError): ServerErrorResponse {
  return statusResponse(err.code, err.message, err.details, boundedStatusOf(err));
}

/**
 * A gRPC trailers-only response carrying `err` as HTTP/2 headers, as grpc-js
 * would send it (the message percent-encoded as it encodes it, the status
 * details base64): for a stream answered before grpc-js sees it. A fresh
 * object each time (Node takes ownership of what it is given).
 */
export function trailersOnlyHeaders(err: AppError): Record<string, string | number> {
  const bounded = boundedStatusOf(err);
  let details = detailsBase64.get(bounded);
  if (details === undefined) detailsBase64.set(bounded, (details = Buffer.from(bounded.bytes).toString('base64')));
  return {
    ':status': 200,
    'content-type': 'application/grpc',
    'grpc-status': err.code,
    'grpc-message': encodeURI(bounded.message),
    [STATUS_DETAILS_KEY]: details,
  };
}
const detailsBase64 = new WeakMap<BoundedStatus, string>();

/**
 * The one place a thrown value becomes a gRPC status. A call whose signal
 * aborted (cancel, deadline) is CANCELLED whatever the handler threw: nobody
 * reads it, and an abort is not worth an error log. A FieldError is
 * INVALID_ARGUMENT with BadRequest naming each field. AppError keeps its code,
 * message and details (as a google.rpc.Status trailer), each cut to a bound
 * that says the original length (caller input echoed in them must not make
 * the status undeliverable); anything else is logged and answered as INTERNAL
 * with a generic message.
 */
export function toServerError(err: unknown, path: string, logger: GrpcLogger, aborted = false): ServerErrorResponse {
  if (aborted) return abortedStatus(path);
  if (isFieldError(err)) err = fieldErrorAsAppError(err);
  if (isAppError(err)) {
    try {
      return appErrorStatus(err);
    } catch (encodeErr) {
      // Details that cannot be encoded must not cost the caller its status.
      logger.error({ err: encodeErr, path }, 'could not encode error details; sending the status without them');
      return statusResponse(err.code, err.message, {});
    }
  }
  logger.error({ err, path }, 'unhandled error in gRPC handler');
  return statusResponse(status.INTERNAL, INTERNAL_ERROR_MESSAGE, {});
}

function abortedStatus(path: string): ServerErrorResponse {
  return Object.assign(new Error(`call aborted: ${path}`), { code: status.CANCELLED, details: 'call aborted' });
}

/** Bad input thrown by a domain or a library, in the caller's terms: every bad field with its problem. */
function fieldErrorAsAppError(err: FieldError): AppError {
  return invalidArguments(
    err.problems.map((p) => ({ field: p.field, description: p.problem })),
    { cause: err },
  );
}
