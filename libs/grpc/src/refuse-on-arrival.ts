import type { Http2Server, IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { Server } from '@grpc/grpc-js';
import type { AppError } from './app-error';
import { trailersOnlyHeaders } from './error-status';

/**
 * Decides, as a stream arrives and before grpc-js reads anything of it,
 * whether to answer it at once: the AppError to answer with, or undefined to
 * let grpc-js serve it. Called with the method's path
 * (`/package.Service/Method`).
 */
export type ArrivalCheck = (path: string) => AppError | undefined;

/**
 * Answers a refused stream as HTTP/2 itself, the moment it arrives: one
 * trailers-only response (HTTP 200, grpc-status, grpc-message,
 * grpc-status-details-bin), encoded once per AppError. grpc-js never sees
 * the stream, so none of its per-call machinery (call stack, Metadata,
 * request decode, interceptors, our handler's context, the instrumentation's
 * wrapper) runs for it. Measured with a lean HTTP/2 caller against the built
 * router: a load-shedding refusal cost the router ~100 µs of CPU through
 * grpc-js and our handler wrapper, against ~24 µs for a bare HTTP/2 answer —
 * and an overloaded router spends most of its time refusing.
 *
 * grpc-js creates its HTTP/2 servers inside bindAsync, through its
 * `createHttp2Server` (public in its JavaScript, absent from its typings):
 * wrapping it is the one place a stream can be seen before grpc-js's own
 * 'stream' listener. Node emits a session's streams through the server's
 * `emit`, so the wrapper answers a refused stream there and does not pass it
 * on. Must be installed before bindAsync.
 */
export function refuseOnArrival(server: Server, check: ArrivalCheck): void {
  const target = server as unknown as { createHttp2Server?: (credentials: unknown) => Http2Server };
  const create = target.createHttp2Server;
  if (typeof create !== 'function') throw new Error('refuseOnArrival: this grpc-js has no createHttp2Server (needs @grpc/grpc-js 1.10+)');
  target.createHttp2Server = function (this: Server, credentials: unknown) {
    const http2Server = create.call(this, credentials);
    const emit = http2Server.emit;
    http2Server.emit = function (this: Http2Server, event: string | symbol, ...args: unknown[]) {
      if (event === 'stream') {
        const [stream, headers] = args as [ServerHttp2Stream, IncomingHttpHeaders];
        const refusal = check(headers[':path'] ?? '');
        if (refusal) {
          answer(stream, refusal);
          return true;
        }
      }
      return emit.call(this, event, ...args);
    } as Http2Server['emit'];
    return http2Server;
  };
}

function answer(stream: ServerHttp2Stream, refusal: AppError): void {
  stream.on('error', () => {}); // a caller gone already: nothing to tell it
  if (stream.destroyed || stream.headersSent) return;
  try {
    stream.respond(trailersOnlyHeaders(refusal), { endStream: true });
  } catch {
    stream.destroy();
  }
}
