import { connect, constants, type ClientHttp2Session } from 'node:http2';
import { create, toBinary, type DescMessage, type MessageInitShape } from '@bufbuild/protobuf';
import type { DescMethod } from '@bufbuild/protobuf';
import { decodeStatusDetails, STATUS_DETAILS_KEY, status } from '@switchyard/grpc';

/** How one unary call ended, as the bench counts it. */
export interface GrpcOutcome {
  /** grpc-status (0 = OK); -1 when the stream failed before a status arrived. */
  code: number;
  message: string;
  retryDelayMs?: number;
}

/**
 * A unary gRPC caller for load generation: one HTTP/2 session (as one
 * grpc-js channel has), the request framed once, and per call only the
 * stream, its status and the retry delay read from the trailers. The
 * generator shares the machine's two cores with what it measures, and the
 * grpc-js client's per-call machinery (call stack, interceptors, Metadata,
 * response decode) took several times what this does, while Portkey's
 * callers are a bare node:http POST of a body built once: this is the same
 * for gRPC. The router cannot tell the two apart on the wire.
 */
export function createGrpcCaller<I extends DescMessage>(address: string, method: DescMethod & { input: I }, request: MessageInitShape<I>, metadata: Record<string, string>, deadlineMs: number) {
  const message = toBinary(method.input, create(method.input, request));
  const framed = Buffer.alloc(5 + message.length);
  framed.writeUInt32BE(message.length, 1);
  framed.set(message, 5);
  const headers = {
    [constants.HTTP2_HEADER_METHOD]: 'POST',
    [constants.HTTP2_HEADER_PATH]: `/${method.parent.typeName}/${method.name}`,
    'content-type': 'application/grpc',
    te: 'trailers',
    'grpc-timeout': `${deadlineMs}m`,
    ...metadata,
  };
  let session: ClientHttp2Session | undefined;
  const open = () => {
    if (session && !session.closed && !session.destroyed) return session;
    const s = connect(`http://${address}`);
    s.on('error', () => {});
    s.on('close', () => {
      if (session === s) session = undefined;
    });
    session = s;
    return s;
  };

  function call(): Promise<GrpcOutcome> {
    return new Promise((resolve) => {
      let done = false;
      const finish = (o: GrpcOutcome) => {
        if (done) return;
        done = true;
        resolve(o);
      };
      // A trailers-only answer (every refusal) carries the status in its headers.
      const fromHeaders = (h: Record<string, string | string[] | undefined>): boolean => {
        const code = h['grpc-status'];
        if (code === undefined) return false;
        const details = h[STATUS_DETAILS_KEY];
        const retryDelayMs = typeof details === 'string' ? decodeStatusDetails(Buffer.from(details, 'base64')).details.retryDelayMs : undefined;
        finish({ code: Number(code), message: decodeURIComponent(String(h['grpc-message'] ?? '')), ...(retryDelayMs === undefined ? {} : { retryDelayMs }) });
        return true;
      };
      let stream;
      try {
        stream = open().request(headers, { endStream: false });
      } catch (err) {
        return finish({ code: -1, message: (err as Error).message });
      }
      const timer = setTimeout(() => stream.close(constants.NGHTTP2_CANCEL), deadlineMs);
      stream.on('response', (h) => {
        if (Number(h[constants.HTTP2_HEADER_STATUS]) !== 200) finish({ code: status.UNAVAILABLE, message: `HTTP ${h[constants.HTTP2_HEADER_STATUS]}` });
        else fromHeaders(h);
      });
      stream.on('trailers', (h) => fromHeaders(h));
      stream.on('data', () => {});
      stream.on('error', (err) => finish({ code: -1, message: err.message }));
      stream.on('close', () => {
        clearTimeout(timer);
        finish({ code: -1, message: `stream closed without a status (code ${stream.rstCode})` });
      });
      stream.end(framed);
    });
  }

  return { call, close: () => session?.close() };
}
