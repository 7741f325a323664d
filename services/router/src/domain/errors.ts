/**
 * Domain errors of the router. Transport-free on purpose: the handlers map
 * them to gRPC status (with google.rpc details) in one place, so the domain
 * can be unit-tested without a server.
 */

/** Bad caller input; `field` is the proto field path, e.g. `messages[2].role`. */
export class InvalidRequestError extends Error {
  override readonly name = 'InvalidRequestError';
  constructor(
    readonly field: string,
    readonly problem: string,
  ) {
    super(`${field}: ${problem}`);
  }
}

export function isInvalidRequestError(err: unknown): err is InvalidRequestError {
  return err instanceof InvalidRequestError;
}
