import { Metadata, status, type ServerErrorResponse } from '@grpc/grpc-js';
import { isFieldError, type FieldError } from '@switchyard/util';
import { invalidArguments, isAppError, type AppError } from './app-error';
import { encodeStatusDetails, STATUS_DETAILS_KEY } from './status-details';
import type { GrpcLogger } from './types';

/** Message sent for every error that is not an AppError: internals stay in the logs. */
export const INTERNAL_ERROR_MESSAGE = 'internal error';

/**
 * The one place a thrown value becomes a gRPC status. A call whose signal
 * aborted (cancel, deadline) is CANCELLED whatever the handler threw: nobody
 * reads it, and an abort is not worth an error log. A FieldError is
 * INVALID_ARGUMENT with BadRequest naming each field. AppError keeps its code,
 * message and details (as a google.rpc.Status trailer); anything else is
 * logged and answered as INTERNAL with a generic message.
 */
export function toServerError(err: unknown, path: string, logger: GrpcLogger, aborted = false): ServerErrorResponse {
  if (aborted) return abortedStatus(path);
  if (isFieldError(err)) err = fieldErrorAsAppError(err);
  const metadata = new Metadata();
  if (isAppError(err)) {
    metadata.set(STATUS_DETAILS_KEY, Buffer.from(encodeStatusDetails(err.code, err.message, err.details)));
    return Object.assign(new Error(err.message), { code: err.code, details: err.message, metadata });
  }
  logger.error({ err, path }, 'unhandled error in gRPC handler');
  metadata.set(STATUS_DETAILS_KEY, Buffer.from(encodeStatusDetails(status.INTERNAL, INTERNAL_ERROR_MESSAGE, {})));
  return Object.assign(new Error(INTERNAL_ERROR_MESSAGE), { code: status.INTERNAL, details: INTERNAL_ERROR_MESSAGE, metadata });
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
