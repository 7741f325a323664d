import { randomUUID } from 'node:crypto';
import { createServer, STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { DialectPaths } from './field-paths';
import { EdgeError } from './errors';

export interface EdgeRequest {
  req: IncomingMessage;
  res: ServerResponse;
  requestId: string;
  /** Path without the query string. */
  path: string;
  /** Reads the whole body (bounded) and parses it as JSON; a 400/413 EdgeError otherwise. */
  json(): Promise<unknown>;
  /** Aborts when the client goes away before the answer is complete. */
  signal: AbortSignal;
  /** How the router's field paths read in the body this caller sent; set once the body is parsed. */
  fieldPaths?: DialectPaths;
}

export type EdgeRoute = (r: EdgeRequest) => Promise<void>;

export interface EdgeServerOptions {
  host: string;
  port: number;
  maxBodyBytes: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** `METHOD /path` → handler; a function path matcher for parameterised paths. */
  route(method: string, path: string): EdgeRoute | undefined;
  /** Renders an error in the dialect the path speaks (headers not yet sent). */
  fail(r: EdgeRequest, err: unknown): void;
}

export interface EdgeServer {
  port: number;
  /** Stops accepting, lets in-flight requests finish for graceMs, then cuts what is left. */
  close(graceMs: number): Promise<void>;
}

function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  // Refused from its declared length: nothing of an oversized body is buffered.
  if (Number.isFinite(declared) && declared > maxBytes) {
    return Promise.reject(new EdgeError(413, 'too_large', `request body of ${declared} bytes exceeds the limit of ${maxBytes} bytes (HTTP_MAX_BODY_BYTES)`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        req.removeAllListeners('data');
        req.pause();
        reject(new EdgeError(413, 'too_large', `request body exceeds the limit of ${maxBytes} bytes (HTTP_MAX_BODY_BYTES)`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

async function readJson(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\s*(;|$)/i.test(type)) throw new EdgeError(400, 'invalid_request', `content-type must be application/json, got "${type}"`);
  const body = await readBody(req, maxBytes);
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new EdgeError(400, 'invalid_request', `request body is not valid JSON: ${(err as Error).message}`);
  }
}

/** Requests node:http refuses before any handler sees them: status and why. */
const CLIENT_ERRORS: Record<string, [number, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'request headers too large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'request not received in time (HTTP_HEADERS_TIMEOUT_MS / HTTP_REQUEST_TIMEOUT_MS)'],
};

/**
 * node:http answers a request it cannot parse, or one whose headers or body
 * came too slowly, with a bare status line. Answer with a JSON error both
 * SDKs read (OpenAI's `error.message`, Anthropic's `type: "error"` and
 * `error.type`) instead, and close: the connection's framing is unknown.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  // As node:http's own handler: nothing is written over a response already under way.
  const answering = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || answering?.headersSent) {
    socket.destroy();
    return;
  }
  const [status, message] = CLIENT_ERRORS[err.code ?? ''] ?? [400, `malformed HTTP request (${err.code ?? err.message})`];
  const body = JSON.stringify({ type: 'error', error: { type: 'invalid_request_error', message, code: status === 408 ? 'request_timeout' : 'bad_request' } });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

/**
 * The router's HTTP listener (node:http: the edge needs nothing a framework
 * adds, and every framework adds per-request cost). Every response carries
 * x-request-id; slow or stalled clients are cut by the header and request
 * timeouts; a client that leaves aborts its request's signal.
 */
export async function startEdgeServer(opts: EdgeServerOptions): Promise<EdgeServer> {
  const server = createServer(
    {
      headersTimeout: opts.headersTimeoutMs,
      requestTimeout: opts.requestTimeoutMs,
      // Node checks both timeouts only this often (default 30 s): without it a 10 s header timeout could take 40 s to cut a stalled client.
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(Math.min(opts.headersTimeoutMs, opts.requestTimeoutMs) / 4))),
    },
    (req, res) => {
      const requestId = randomUUID();
      res.setHeader('x-request-id', requestId);
      const path = (req.url ?? '/').split('?')[0]!;
      const controller = new AbortController();
      // 'close' before the answer finished: the client went away; cancel its call upstream.
      res.on('close', () => {
        if (!res.writableFinished) controller.abort(new Error('client disconnected'));
      });
      const r: EdgeRequest = { req, res, requestId, path, signal: controller.signal, json: () => readJson(req, opts.maxBodyBytes) };
      // Async, so that nothing thrown while choosing or starting the handler
      // escapes this listener: an uncaught throw here would end the process.
      const run = (async () => {
        // HEAD is GET without the body (node:http drops what is written).
        const method = req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET');
        const handler = opts.route(method, path);
        if (!handler) {
          const served = ['GET', 'POST'].filter((m) => opts.route(m, path));
          if (served.length === 0) throw new EdgeError(404, 'not_found', `no endpoint ${method} ${path}`);
          const allow = [...served, ...(served.includes('GET') ? ['HEAD'] : []), 'OPTIONS'].join(', ');
          res.setHeader('allow', allow);
          if (method === 'OPTIONS') {
            res.writeHead(204);
            res.end();
            return;
          }
          throw new EdgeError(405, 'invalid_request', `${path} takes ${served.join(' or ')}, not ${method}`);
        }
        return handler(r);
      })();
      void run.catch((err: unknown) => {
        if (res.headersSent) {
          res.destroy();
          return;
        }
        // An unread (oversized) body must not be taken for the next request on this connection.
        if (err instanceof EdgeError && err.status === 413) res.setHeader('connection', 'close');
        opts.fail(r, err);
      });
    },
  );
  server.on('clientError', answerClientError);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    async close(graceMs) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const cut = setTimeout(() => server.closeAllConnections(), graceMs);
      await closed;
      clearTimeout(cut);
    },
  };
}

/** Writes a JSON answer with the given status and headers. */
export function sendJson(res: ServerResponse, statusCode: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(statusCode, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
