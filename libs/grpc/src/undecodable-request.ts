import { fromBinary, type DescMessage } from '@bufbuild/protobuf';
import { invalidArgument } from './app-error';

/**
 * Stands in for a request body that is not a valid message of its type
 * (truncated, garbage, invalid UTF-8 in a string field). grpc-js answers a
 * failed decode with INTERNAL; passing this through instead lets the handler
 * chain answer INVALID_ARGUMENT, after the caller's credentials are checked.
 */
export class UndecodableRequest {
  constructor(
    readonly typeName: string,
    readonly problem: string,
  ) {}
}

/** The decoded request, or an UndecodableRequest saying why it could not be decoded. */
export function decodeRequest(schema: DescMessage, bytes: Uint8Array): unknown {
  try {
    return fromBinary(schema, bytes);
  } catch (err) {
    return new UndecodableRequest(schema.typeName, err instanceof Error ? err.message : String(err));
  }
}

/** Wraps a handler so that an UndecodableRequest is refused as INVALID_ARGUMENT before the handler sees it. */
export function rejectUndecodable<H extends (request: unknown, ...rest: never[]) => unknown>(handler: H | undefined): H | undefined {
  if (typeof handler !== 'function') return handler;
  return ((request: unknown, ...rest: never[]) => {
    if (request instanceof UndecodableRequest) {
      throw invalidArgument('request', `not a valid ${request.typeName} message (${request.problem})`);
    }
    return handler(request, ...rest);
  }) as H;
}
