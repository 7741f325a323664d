import { Metadata, status, type ServerErrorResponse } from '@grpc/grpc-js';
import { isAppError } from './app-error';
import { encodeStatusDetails, STATUS_DETAILS_KEY } from './status-details';
import type { GrpcLogger } from './types';

/** Message sent for every error that is not an AppError: internals stay in the logs. */
export const INTERNAL_ERROR_MESSAGE = 'internal error';

/**
 * The one place a thrown value becomes a gRPC status. AppError keeps its code,
 * message and details (as a google.rpc.Status trailer); anything else is logged
 * and answered as INTERNAL with a generic message.
 */
export function toServerError(err: unknown, path: string, logger: GrpcLogger): ServerErrorResponse {
  const metadata = new Metadata();
  if (isAppError(err)) {
    metadata.set(STATUS_DETAILS_KEY, Buffer.from(encodeStatusDetails(err.code, err.message, err.details)));
    return Object.assign(new Error(err.message), { code: err.code, details: err.message, metadata });
  }
  logger.error({ err, path }, 'unhandled error in gRPC handler');
  metadata.set(STATUS_DETAILS_KEY, Buffer.from(encodeStatusDetails(status.INTERNAL, INTERNAL_ERROR_MESSAGE, {})));
  return Object.assign(new Error(INTERNAL_ERROR_MESSAGE), { code: status.INTERNAL, details: INTERNAL_ERROR_MESSAGE, metadata });
}
