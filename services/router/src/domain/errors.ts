import { FieldError } from '@switchyard/util';

/**
 * Domain errors of the router. Transport-free on purpose: the one error
 * mapping of @switchyard/grpc turns them into a gRPC status (with google.rpc
 * details), so the domain can be unit-tested without a server.
 */

/** Bad caller input; `field` is the proto field path, e.g. `messages[2].role`. INVALID_ARGUMENT at the boundary. */
export class InvalidRequestError extends FieldError {
  override readonly name = 'InvalidRequestError';
}

export function isInvalidRequestError(err: unknown): err is InvalidRequestError {
  return err instanceof InvalidRequestError;
}
